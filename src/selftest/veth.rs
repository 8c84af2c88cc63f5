//! A private network to attach to: two network namespaces joined by a veth
//! pair, with IPv4 and IPv6 addresses on both ends, all removed on drop (and
//! on a signal, or by the next run after a SIGKILL). With it: run commands
//! inside, send traffic from side B, and ask the kernel which XDP program
//! sits on an interface.
//!
//! `xdp-hello selftest` attaches over it; the integration tests use it too
//! (their process-driving harness is in tests/support).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;

use anyhow::{anyhow, bail, Context, Result};

use crate::loader::Mode;
use crate::occupants;
use crate::selftest::command::{output_within, run_ok, COMMAND_TIMEOUT};

/// Addresses of the two ends; every `TestNet` has its own namespaces, so
/// they can be the same in all of them.
pub const A_V4: Ipv4Addr = Ipv4Addr::new(10, 211, 0, 1);
pub const B_V4: Ipv4Addr = Ipv4Addr::new(10, 211, 0, 2);
pub const A_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x211, 0, 0, 0, 0, 0, 1);
pub const B_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x211, 0, 0, 0, 0, 0, 2);

/// Where `ip netns` keeps the names of namespaces (iproute2's NETNS_RUN_DIR).
const NETNS_DIR: &str = "/run/netns";

/// Held while namespaces are being named, so that a removal on a signal
/// cannot slip between the making of one and its being known; `true` once
/// [`remove_namespaces_of_this_process`] has run: no more are made then.
static NAMESPACES_CLOSED: Mutex<bool> = Mutex::new(false);

fn namespaces_closed() -> MutexGuard<'static, bool> {
    // A panic elsewhere while holding it leaves the flag as valid as before.
    NAMESPACES_CLOSED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How the names of this process's namespaces begin: `xdp-hello-PID-`.
fn namespace_prefix() -> String {
    format!("xdp-hello-{}-", std::process::id())
}

/// The pid in a namespace name made by [`TestNet::new`]
/// (`xdp-hello-PID-N-a`), or None for any other name.
fn namespace_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("xdp-hello-")?;
    let (pid, rest) = rest.split_once('-')?;
    let (n, side) = rest.split_once('-')?;
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(n) && matches!(side, "a" | "b"))
        .then(|| pid.parse().ok())
        .flatten()
}

/// Whether process `pid` has ended: no such process, or a zombie (killed,
/// not yet reaped). A pid taken again by another process counts as running:
/// its namespaces stay, which errs on the side of keeping them.
fn process_gone(pid: u32) -> bool {
    let Ok(pid_t) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 sends nothing; it only checks that the pid exists.
    if unsafe { libc::kill(pid_t, 0) } != 0 {
        return io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    // `PID (COMM) STATE …`: the state follows the last `)`.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// Removes the namespaces that runs which ended without cleaning up (killed
/// with SIGKILL, so no handler ran) left behind: those named by
/// [`TestNet::new`] for a process that is gone. Namespaces of runs still
/// going, this one's included, stay. Returns the names removed.
pub fn remove_stale_namespaces() -> Vec<String> {
    let mut stale: Vec<String> = std::fs::read_dir(NETNS_DIR)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .filter(|name| namespace_owner(name).is_some_and(process_gone))
                .collect()
        })
        .unwrap_or_default();
    stale.sort();
    stale.retain(|ns| {
        output_within(
            Command::new("ip").args(["netns", "del", ns]),
            COMMAND_TIMEOUT,
        )
        .is_ok_and(|out| out.status.success())
    });
    stale
}

/// Removes every namespace this process made (those whose names begin with
/// `xdp-hello-PID-`), whoever owns its `TestNet`, and makes any later
/// `TestNet::new` fail: it is meant for a process about to exit on a signal,
/// when no destructor will run. Waits for a `TestNet` being made at that
/// moment to have named its namespaces, so none is missed. Idempotent: a
/// namespace already gone, or removed by its `TestNet` meanwhile, is no
/// error. Returns the names it removed.
///
/// A process still running inside a namespace keeps it alive, unnamed, until
/// it exits.
pub fn remove_namespaces_of_this_process() -> Vec<String> {
    let mut closed = namespaces_closed();
    *closed = true;
    let prefix = namespace_prefix();
    let mut names: Vec<String> = std::fs::read_dir(NETNS_DIR)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .filter(|name| name.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.retain(|ns| {
        output_within(
            Command::new("ip").args(["netns", "del", ns]),
            COMMAND_TIMEOUT,
        )
        .is_ok_and(|out| out.status.success())
    });
    names
}

/// One end of the veth pair, and the namespace it lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Where xdp-hello is attached.
    A,
    /// Where traffic comes from.
    B,
}

/// Two namespaces and a veth pair between them; removed on drop, also when
/// setting up fails halfway or the caller panics.
pub struct TestNet {
    ns: [String; 2],
    veth: [String; 2],
}

impl TestNet {
    /// Creates the namespaces and the pair, addresses them and brings them up.
    /// Names carry the process id and a counter, so concurrent users (threads
    /// of one test binary, or several processes) never collide.
    pub fn new() -> Result<TestNet> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let prefix = namespace_prefix();
        let net = TestNet {
            ns: [format!("{prefix}{n}-a"), format!("{prefix}{n}-b")],
            // At most 15 bytes (IFNAMSIZ - 1): pids fit in 6 hex digits.
            veth: [format!("xh{pid:x}-{n}a"), format!("xh{pid:x}-{n}b")],
        };
        // On failure `net` drops here and removes whatever was made.
        net.set_up()
            .with_context(|| format!("setting up namespaces {} and {}", net.ns[0], net.ns[1]))?;
        Ok(net)
    }

    fn set_up(&self) -> Result<()> {
        let [ns_a, ns_b] = &self.ns;
        let [veth_a, veth_b] = &self.veth;
        {
            // Named under the lock, so a removal on a signal never lists
            // them while an `ip netns add` is still under way. What follows
            // lives inside the namespaces and goes with them.
            let closed = namespaces_closed();
            if *closed {
                bail!("this process is removing its namespaces: it is about to exit");
            }
            run_ok(Command::new("ip").args(["netns", "add", ns_a]))?;
            run_ok(Command::new("ip").args(["netns", "add", ns_b]))?;
        }
        // Both ends are born inside their namespaces: nothing ever shows in
        // the host's own namespace, where names could clash.
        run_ok(Command::new("ip").args([
            "link", "add", veth_a, "netns", ns_a, "type", "veth", "peer", "name", veth_b, "netns",
            ns_b,
        ]))?;
        for (side, v4, v6) in [(Side::A, A_V4, A_V6), (Side::B, B_V4, B_V6)] {
            let dev = self.veth(side);
            self.ip(side, &["addr", "add", &format!("{v4}/24"), "dev", dev])?;
            // nodad: usable at once, instead of "tentative" for a second or two.
            self.ip(
                side,
                &["addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"],
            )?;
            self.ip(side, &["link", "set", "dev", dev, "up"])?;
            self.ip(side, &["link", "set", "dev", "lo", "up"])?;
        }
        Ok(())
    }

    /// The namespace of `side`.
    pub fn ns(&self, side: Side) -> &str {
        &self.ns[side as usize]
    }

    /// The veth end of `side`.
    pub fn veth(&self, side: Side) -> &str {
        &self.veth[side as usize]
    }

    /// `ip -n NS ARGS…`, which must succeed; returns its stdout.
    pub fn ip(&self, side: Side, args: &[&str]) -> Result<String> {
        let out = run_ok(Command::new("ip").args(["-n", self.ns(side)]).args(args))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `ip netns exec NS PROGRAM ARGS…`, whatever its exit status (checking
    /// it is the caller's business); killed after a timeout.
    pub fn exec(&self, side: Side, program: impl AsRef<OsStr>, args: &[&str]) -> Result<Output> {
        output_within(
            Command::new("ip")
                .args(["netns", "exec", self.ns(side)])
                .arg(program)
                .args(args),
            COMMAND_TIMEOUT,
        )
    }

    /// `count` echo requests from B to `to` (an address of A), which must all
    /// be answered.
    pub fn ping(&self, to: IpAddr, count: u32) -> Result<()> {
        let out = self.exec(
            Side::B,
            "ping",
            &[
                "-n",
                "-q",
                "-c",
                &count.to_string(),
                "-i",
                "0.05",
                "-w",
                "5",
                &to.to_string(),
            ],
        )?;
        if !out.status.success() {
            bail!(
                "ping {to} from {} failed ({}): {}",
                self.ns(Side::B),
                out.status,
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
        Ok(())
    }

    /// Sends each of `payloads` as a UDP datagram from B's address of `to`'s
    /// family, port `from_port`, to `to`. Nobody needs to listen.
    pub fn send_udp(&self, from_port: u16, to: SocketAddr, payloads: &[&[u8]]) -> Result<()> {
        let from: IpAddr = match to {
            SocketAddr::V4(_) => B_V4.into(),
            SocketAddr::V6(_) => B_V6.into(),
        };
        in_netns(self.ns(Side::B), || {
            let socket = UdpSocket::bind((from, from_port))
                .with_context(|| format!("binding {from} port {from_port}"))?;
            for payload in payloads {
                socket
                    .send_to(payload, to)
                    .with_context(|| format!("sending to {to}"))?;
            }
            Ok(())
        })
    }

    /// The XDP programs on `side`'s veth, as the kernel reports them.
    pub fn xdp(&self, side: Side) -> Result<Vec<XdpProg>> {
        xdp_programs(self.ns(side), self.veth(side))
    }

    /// Runs `job` on this thread inside `side`'s namespace, then returns the
    /// thread to the namespace it was in: for work that cannot move to a
    /// thread of its own, as [`in_netns`] does (a loaded skeleton).
    pub fn within<T>(&self, side: Side, job: impl FnOnce() -> Result<T>) -> Result<T> {
        let home = File::open("/proc/thread-self/ns/net").context("opening this thread's netns")?;
        let path = format!("{NETNS_DIR}/{}", self.ns(side));
        let there = File::open(&path).with_context(|| format!("opening {path}"))?;
        enter(&there).with_context(|| format!("entering network namespace {}", self.ns(side)))?;
        let done = job();
        // Staying in a namespace about to be deleted would strand the thread.
        enter(&home).expect("returning to this thread's network namespace");
        done
    }
}

/// Moves this thread into the network namespace of `ns`.
fn enter(ns: &File) -> io::Result<()> {
    // SAFETY: changes only this thread's network namespace.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Drop for TestNet {
    fn drop(&mut self) {
        // Deleting a namespace destroys the veth end inside it, and with it
        // the peer. Errors are ignored: a namespace may never have been made.
        for ns in &self.ns {
            let _ = output_within(
                Command::new("ip").args(["netns", "del", ns]),
                COMMAND_TIMEOUT,
            );
        }
    }
}

/// Runs `job` on a thread of its own that has joined network namespace `ns`,
/// so the sockets it opens live there; the rest of the process stays put.
pub fn in_netns<T: Send>(ns: &str, job: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let path = format!("{NETNS_DIR}/{ns}");
    thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = File::open(&path).with_context(|| format!("opening {path}"))?;
                // The thread ends with the job: nothing else runs there.
                enter(&file).with_context(|| format!("entering network namespace {ns}"))?;
                job()
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow!("the thread in namespace {ns} panicked")))
    })
}

/// An XDP program attached to an interface, and in which mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XdpProg {
    pub mode: Mode,
    pub id: u32,
}

/// The XDP programs on `iface` in namespace `ns`, one a mode, as the kernel
/// reports them (bpf_xdp_query); empty if the interface is gone.
pub fn xdp_programs(ns: &str, iface: &str) -> Result<Vec<XdpProg>> {
    let iface = iface.to_owned();
    in_netns(ns, move || {
        let Ok(ifindex) = crate::iface::index_of(&iface) else {
            return Ok(Vec::new());
        };
        Ok(occupants::programs(ifindex)
            .into_iter()
            .map(|(id, mode)| XdpProg { mode, id })
            .collect())
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn namespace_names_give_their_owner() {
        assert_eq!(namespace_owner("xdp-hello-4242-0-a"), Some(4242));
        assert_eq!(namespace_owner("xdp-hello-7-12-b"), Some(7));
        for other in [
            "xdp-hello-4242-0-c",
            "xdp-hello-x-0-a",
            "xdp-hello-4242-a",
            "xdp-hello--0-a",
            "xdp-hello-99999999999-0-a",
            "blue",
        ] {
            assert_eq!(namespace_owner(other), None, "{other}");
        }
        let ours = format!("{}0-a", namespace_prefix());
        assert_eq!(namespace_owner(&ours), Some(std::process::id()));
    }

    #[test]
    fn a_running_process_is_not_gone_and_a_reaped_one_is() {
        assert!(!process_gone(std::process::id()));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Exited but not reaped: a zombie, gone all the same.
        let zombie = (0..200).any(|_| {
            thread::sleep(Duration::from_millis(5));
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| stat.contains(") Z"))
        });
        assert!(zombie, "the child never became a zombie");
        assert!(process_gone(pid));
        child.wait().unwrap();
        assert!(process_gone(pid));
    }
}
