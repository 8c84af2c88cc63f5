//! BPF_PROG_TEST_RUN on a program someone else loaded, found by its kernel
//! id: the attached xdp-hello and xdp-filter are timed the same way, with
//! no loader of ours in between.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{bail, Context, Result};
use libbpf_rs::libbpf_sys;

/// A loaded program, held open by descriptor.
pub struct Prog {
    fd: OwnedFd,
    pub id: u32,
}

impl Prog {
    pub fn by_id(id: u32) -> Result<Prog> {
        // SAFETY: no pointers; returns a fresh descriptor or a negative errno.
        let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(-fd))
                .with_context(|| format!("opening BPF program {id}; is it still loaded?"));
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Prog { fd, id })
    }

    /// ns per run of `frame`, averaged by the kernel over `repeat` runs, and
    /// the XDP verdict.
    pub fn time(&self, frame: &[u8], repeat: u32) -> Result<(f64, u32)> {
        let mut opts = libbpf_sys::bpf_test_run_opts {
            sz: size_of::<libbpf_sys::bpf_test_run_opts>() as _,
            data_in: frame.as_ptr().cast(),
            data_size_in: frame.len() as u32,
            repeat: repeat as i32,
            ..Default::default()
        };
        // SAFETY: `opts` points at `frame`, which outlives the call; no output buffers.
        let ret = unsafe { libbpf_sys::bpf_prog_test_run_opts(self.fd.as_raw_fd(), &mut opts) };
        if ret != 0 {
            return Err(io::Error::from_raw_os_error(-ret))
                .with_context(|| format!("BPF_PROG_TEST_RUN on program {}", self.id));
        }
        Ok((f64::from(opts.duration), opts.retval))
    }

    /// Instructions after the verifier (xlated) and bytes of machine code (jited).
    pub fn size(&self) -> Result<(u32, u32)> {
        // SAFETY: bpf_prog_info is plain data; all zeros is a valid request.
        let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: `info` is `len` bytes long and lives across the call.
        let ret = unsafe {
            libbpf_sys::bpf_prog_get_info_by_fd(self.fd.as_raw_fd(), &mut info, &mut len)
        };
        if ret != 0 {
            bail!("reading the info of program {}: errno {}", self.id, -ret);
        }
        Ok((info.xlated_prog_len / 8, info.jited_prog_len))
    }
}
