//! The instance's side of `xdp-hello status`: a unix socket in the abstract
//! namespace that answers each connection with one JSON report, to root and
//! to the instance's own user only.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};

use super::socket_name;
use crate::instance::Instance;

/// A peer that does not read its report within this is let go.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// The listening socket. An abstract name belongs to the socket, not to a
/// file: it is gone the moment the process ends, whatever way it ends.
pub struct StatusSocket {
    listener: UnixListener,
}

impl StatusSocket {
    /// Binds `@xdp-hello/IFACE/PID`.
    pub fn bind(iface: &str) -> Result<StatusSocket> {
        let name = socket_name(iface, std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes())
            .with_context(|| format!("naming the status socket @{name}"))?;
        let listener = UnixListener::bind_addr(&addr)
            .with_context(|| format!("binding the status socket @{name}"))?;
        Ok(StatusSocket { listener })
    }

    /// Answers status requests about `instance` until the process ends.
    pub fn serve(self, instance: Arc<Instance>) -> Result<()> {
        thread::Builder::new()
            .name("status".into())
            .spawn(move || {
                for stream in self.listener.incoming().flatten() {
                    answer(stream, &instance);
                }
            })
            .context("starting the status thread")?;
        Ok(())
    }
}

/// One JSON document, then the end of the stream; nothing for a peer that is
/// neither root nor this process's user (the client says so).
fn answer(mut stream: UnixStream, instance: &Instance) {
    if !may_ask(&stream) {
        return;
    }
    let text = match instance.report() {
        Ok(report) => serde_json::to_string(&report).unwrap_or_default(),
        Err(err) => serde_json::json!({ "error": format!("{err:#}") }).to_string(),
    };
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = stream.write_all(text.as_bytes());
}

/// Root, or the user this process runs as (by SO_PEERCRED, which the kernel
/// fills in at connect time and the peer cannot forge).
fn may_ask(stream: &UnixStream) -> bool {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a ucred of `len` bytes.
    let err = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    // SAFETY: geteuid has no preconditions.
    err == 0 && (cred.uid == 0 || cred.uid == unsafe { libc::geteuid() })
}
