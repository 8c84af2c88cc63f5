//! What the end-to-end tests need beyond xdp_hello::selftest::veth: the
//! built binary driven from outside (observer, attach), the kernel asked
//! directly what is attached and what still exists (no tool's text parsed),
//! pipes the test holds the reading end of, and a raw sender for floods and
//! steady traffic.

pub mod attach;
pub mod notice_line;
pub mod observer;

use std::fs::File;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libbpf_rs::libbpf_sys;
use xdp_hello::selftest::veth::{self, in_netns, Side, TestNet, A_V4, B_V4};

/// The ids of the XDP programs on `iface` in namespace `ns`, any mode, as
/// the kernel reports them (bpf_xdp_query). Empty if the interface is gone.
pub fn xdp_programs(ns: &str, iface: &str) -> Result<Vec<u32>> {
    Ok(veth::xdp_programs(ns, iface)?
        .into_iter()
        .map(|prog| prog.id)
        .collect())
}

/// The ids of the XDP programs on side `side`'s veth.
pub fn xdp_on(net: &TestNet, side: Side) -> Result<Vec<u32>> {
    xdp_programs(net.ns(side), net.veth(side))
}

/// Every bpf_link of program `prog_id` (links are machine-wide).
pub fn links_of(prog_id: u32) -> Vec<u32> {
    xdp_hello::occupants::links()
        .filter(|info| info.prog_id == prog_id)
        .map(|info| info.id)
        .collect()
}

/// The kernel's info on program `prog_id`, if it is loaded.
pub fn prog_info(prog_id: u32) -> Option<libbpf_sys::bpf_prog_info> {
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(prog_id) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libbpf_sys::bpf_prog_info>() as u32;
    if unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) } != 0 {
        return None;
    }
    Some(info)
}

/// The name and type (BPF_PROG_TYPE_…) of program `prog_id`, if it is loaded.
pub fn prog_name_and_type(prog_id: u32) -> Option<(String, u32)> {
    let info = prog_info(prog_id)?;
    let name: Vec<u8> = info
        .name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Some((String::from_utf8_lossy(&name).into_owned(), info.type_))
}

/// Whether program `prog_id` is still loaded.
pub fn prog_loaded(prog_id: u32) -> bool {
    BpfObject::Prog(prog_id).exists()
}

/// A BPF object by its kernel id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BpfObject {
    Prog(u32),
    Map(u32),
    Link(u32),
}

impl BpfObject {
    /// Whether the kernel still has it: anything pinned, held or attached.
    pub fn exists(self) -> bool {
        let fd = unsafe {
            match self {
                BpfObject::Prog(id) => libbpf_sys::bpf_prog_get_fd_by_id(id),
                BpfObject::Map(id) => libbpf_sys::bpf_map_get_fd_by_id(id),
                BpfObject::Link(id) => libbpf_sys::bpf_link_get_fd_by_id(id),
            }
        };
        if fd < 0 {
            return false;
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
        true
    }
}

/// The BPF programs, maps and links process `pid` holds, from the kernel's
/// fdinfo of its descriptors (`prog_id:`, `map_id:`, `link_id:` lines).
pub fn bpf_objects_of(pid: u32) -> Vec<BpfObject> {
    let mut found = Vec::new();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return found;
    };
    for fd in fds.flatten() {
        let info = std::fs::read_to_string(fd.path()).unwrap_or_default();
        for line in info.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let Ok(id) = value.trim().parse() else {
                continue;
            };
            match key {
                "prog_id" => found.push(BpfObject::Prog(id)),
                "map_id" => found.push(BpfObject::Map(id)),
                "link_id" => found.push(BpfObject::Link(id)),
                _ => {}
            }
        }
    }
    found.sort_by_key(|o| format!("{o:?}"));
    found.dedup();
    found
}

/// Nothing attached to A's veth, and none of `objects` (what the process
/// held) left in the kernel. A pin keeps its object alive, so this also
/// says nothing of them is pinned — in any bpffs, whoever mounted it.
/// Freeing follows an RCU grace period: allowed two seconds.
pub fn nothing_left(net: &TestNet, objects: &[BpfObject]) -> Result<()> {
    let on_a = xdp_on(net, Side::A)?;
    if !on_a.is_empty() {
        bail!("still attached to {}: programs {on_a:?}", net.veth(Side::A));
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left: Vec<BpfObject> = objects.iter().copied().filter(|o| o.exists()).collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("still in the kernel: {left:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A pipe: (reading end, writing end), both close-on-exec (the writing end
/// reaches the child through Stdio, which dups it).
pub fn pipe() -> Result<(File, File)> {
    let mut fds = [0; 2];
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: two fresh descriptors that nothing else owns.
    unsafe { Ok((File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1]))) }
}

/// 64-byte UDP frames from B to A, sent raw on B's veth (AF_PACKET,
/// bypassing the qdisc) by a thread of their own until stopped.
pub struct Sender {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<u64>>>,
}

impl Sender {
    /// Sends as fast as one thread can (`per_second` None) or at about
    /// `per_second` frames a second.
    pub fn start(net: &TestNet, per_second: Option<u64>) -> Sender {
        let stop = Arc::new(AtomicBool::new(false));
        let (ns, veth) = (net.ns(Side::B).to_string(), net.veth(Side::B).to_string());
        let flag = stop.clone();
        let thread = thread::spawn(move || in_netns(&ns, || send(&veth, per_second, &flag)));
        Sender {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and returns how many frames went out.
    pub fn stop(mut self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(sent)) => sent,
            _ => bail!("the sender thread panicked"),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn udp_frame() -> Vec<u8> {
    let payload = [0x5a; 18]; // 14 + 20 + 8 + 18 = 60 bytes, no padding needed
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xb], [0xff; 6])
        .ipv4(B_V4.octets(), A_V4.octets(), 64)
        .udp(40000, 9)
        .write(&mut frame, &payload)
        .expect("a UDP frame");
    frame
}

fn send(veth: &str, per_second: Option<u64>, stop: &AtomicBool) -> Result<u64> {
    let name = std::ffi::CString::new(veth)?;
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        bail!("no interface {veth}");
    }
    // Protocol 0: a socket that sends and never receives.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error()).context("AF_PACKET socket");
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let on: libc::c_int = 1;
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            &on as *const _ as *const libc::c_void,
            size_of::<libc::c_int>() as u32,
        );
    }
    let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_ifindex = ifindex as i32;
    address.sll_halen = 6;
    let bound = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            &address as *const _ as *const libc::sockaddr,
            size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if bound != 0 {
        return Err(io::Error::last_os_error()).context("binding the AF_PACKET socket");
    }
    let frame = udp_frame();
    let started = Instant::now();
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if let Some(rate) = per_second {
            // Steady: no more than the rate allows by now.
            let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
            if sent >= due {
                thread::sleep(Duration::from_millis(1));
                continue;
            }
        }
        let n = unsafe {
            libc::send(
                socket.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
            )
        };
        if n == frame.len() as isize {
            sent += 1;
        } else if n < 0 {
            let err = io::Error::last_os_error();
            // The veth's ring is full for a moment: go on.
            if err.raw_os_error() != Some(libc::ENOBUFS) {
                return Err(err).context("sending a frame");
            }
        }
    }
    Ok(sent)
}

/// stderr of a run that must have failed, checked to be a single line with
/// nothing on stdout.
pub fn refusal(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "should have failed; stderr: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "want a one-line error: {stderr}");
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
    stderr
}
