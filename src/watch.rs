//! Keeps asking the kernel whether the program is still attached where the
//! user put it: a detach from outside (`bpftool link detach`), the interface
//! deleted, or moved to another network namespace, must not go unnoticed.

use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libbpf_rs::libbpf_sys;

use crate::attach::Attachment;
use crate::occupants::programs;

/// How often the kernel is asked: well within the second the user may wait.
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// The attachment, and what it was when made.
pub struct LinkWatch {
    attachment: Option<Attachment>,
    iface: String,
    ifindex: u32,
    link_id: u32,
    prog_id: u32,
    last_look: Instant,
}

impl LinkWatch {
    /// Watches `attachment` of the program to `iface` (`ifindex` in this
    /// process's network namespace).
    pub fn new(attachment: Attachment, iface: &str, ifindex: u32) -> Result<LinkWatch> {
        let info = link_info(&attachment)?;
        Ok(LinkWatch {
            attachment: Some(attachment),
            iface: iface.to_string(),
            ifindex,
            link_id: info.id,
            prog_id: info.prog_id,
            last_look: Instant::now(),
        })
    }

    /// What happened, if the program no longer sits on the interface; asks
    /// the kernel at most every [`LOOK_EVERY`].
    pub fn lost(&mut self) -> Option<String> {
        let attachment = self.attachment.as_ref()?;
        if self.last_look.elapsed() < LOOK_EVERY {
            return None;
        }
        self.last_look = Instant::now();
        let info = link_info(attachment).ok()?;
        // A link the kernel has let go of reports ifindex 0.
        let link_ifindex = unsafe { info.__bindgen_anon_1.xdp.ifindex };
        let here = interface_here(self.ifindex);
        let (iface, link, prog) = (&self.iface, self.link_id, self.prog_id);
        if link_ifindex == 0 {
            return Some(if here {
                format!(
                    "the program was detached from {iface} from outside (bpf_link id {link}, \
                     e.g. `bpftool link detach`): nothing is filtered or reported there any more"
                )
            } else {
                format!("{iface} was deleted: the program is detached")
            });
        }
        if !here || !programs(self.ifindex).iter().any(|&(id, _)| id == prog) {
            return Some(format!(
                "{iface} was moved to another network namespace: the program is no longer \
                 on an interface of this one"
            ));
        }
        None
    }

    /// Runs `new` on the link in place of `old` (see
    /// [`Attachment::replace_program`]); a detached link has no program to
    /// replace. Fails with the link as it was, or succeeds with all of it
    /// done.
    pub fn replace_program(&mut self, old: BorrowedFd<'_>, new: BorrowedFd<'_>) -> Result<()> {
        let Some(attachment) = &self.attachment else {
            bail!("{} is detached", self.iface);
        };
        let new_id = libbpf_rs::Program::id_from_fd(new).context("reading the program's id")?;
        attachment
            .replace_program(old, new)
            .with_context(|| format!("replacing the program on {}", self.iface))?;
        self.prog_id = new_id;
        Ok(())
    }

    /// The interface, as the user named it.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Detaches the program (if the kernel has not already).
    pub fn detach(&mut self) {
        self.attachment = None;
    }
}

/// The kernel's view of the attachment's bpf_link.
fn link_info(attachment: &Attachment) -> Result<libbpf_sys::bpf_link_info> {
    // Zeroed, padding included: the kernel wants unknown bytes zero.
    let mut info: libbpf_sys::bpf_link_info = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libbpf_sys::bpf_link_info>() as u32;
    let fd = attachment.link().as_raw_fd();
    let err = unsafe { libbpf_sys::bpf_link_get_info_by_fd(fd, &mut info, &mut len) };
    if err != 0 {
        bail!(
            "reading the bpf_link's info failed: {}",
            std::io::Error::from_raw_os_error(-err)
        );
    }
    Ok(info)
}

/// Whether this network namespace has an interface with `ifindex`.
fn interface_here(ifindex: u32) -> bool {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    !unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) }.is_null()
}
