//! A private network to attach to: two network namespaces joined by a veth
//! pair, with IPv4 and IPv6 addresses on both ends, all removed on drop. With
//! it, the tools to use it: run commands inside, watch an xdp-hello process
//! attached to side A, send traffic from side B, and ask the kernel which XDP
//! program sits on an interface.
//!
//! The integration tests and `xdp-hello selftest` both use it, so it knows
//! nothing of a test harness, and the binary to run is always a parameter.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::loader::Mode;

/// Addresses of the two ends; every `TestNet` has its own namespaces, so
/// they can be the same in all of them.
pub const A_V4: Ipv4Addr = Ipv4Addr::new(10, 211, 0, 1);
pub const B_V4: Ipv4Addr = Ipv4Addr::new(10, 211, 0, 2);
pub const A_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x211, 0, 0, 0, 0, 0, 1);
pub const B_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x211, 0, 0, 0, 0, 0, 2);

/// Longest any helper command may take before it is killed: a hung `ip` or a
/// binary that should have refused but runs on must not hang the caller.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long xdp-hello may take to load, attach and say so.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long xdp-hello may take to exit after a signal.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

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
/// it exits; [`Observer`]s get SIGTERM when this process ends.
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

    /// Starts `binary` in namespace A, attached to A's veth in `mode`, with
    /// `extra` arguments; returns once it says it is attached.
    pub fn observe(&self, binary: &Path, mode: Mode, extra: &[&str]) -> Result<Observer> {
        Observer::spawn(binary, self.ns(Side::A), self.veth(Side::A), mode, extra)
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

    /// The XDP programs on `side`'s veth, as `ip -d link` shows them.
    pub fn xdp_by_ip_link(&self, side: Side) -> Result<Vec<XdpProg>> {
        let text = self.ip(side, &["-d", "link", "show", "dev", self.veth(side)])?;
        Ok(parse_ip_link_xdp(&text))
    }

    /// The XDP programs on `side`'s veth, as `bpftool net` shows them.
    pub fn xdp_by_bpftool(&self, side: Side) -> Result<Vec<XdpProg>> {
        let out = self.exec(side, "bpftool", &["net", "show", "dev", self.veth(side)])?;
        if !out.status.success() {
            bail!(
                "bpftool net show failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(parse_bpftool_net_xdp(&String::from_utf8_lossy(&out.stdout)))
    }
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
    let path = format!("/run/netns/{ns}");
    thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = File::open(&path).with_context(|| format!("opening {path}"))?;
                // SAFETY: changes only this thread's network namespace, and
                // the thread ends with the job.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(io::Error::last_os_error())
                        .with_context(|| format!("entering network namespace {ns}"));
                }
                job()
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow!("the thread in namespace {ns} panicked")))
    })
}

/// How an XDP program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// Driver mode (`xdp` in `ip link`, `driver` in `bpftool net`).
    Native,
    /// skb mode (`xdpgeneric`, `generic`).
    Generic,
    /// Offloaded to the NIC (`xdpoffload`, `offload`).
    Offload,
}

impl XdpMode {
    /// What xdp-hello's `--mode` should lead to (`auto` may be either).
    pub fn of(mode: Mode) -> Option<XdpMode> {
        match mode {
            Mode::Native => Some(XdpMode::Native),
            Mode::Skb => Some(XdpMode::Generic),
            Mode::Offload => Some(XdpMode::Offload),
            Mode::Auto => None,
        }
    }
}

/// An XDP program attached to an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XdpProg {
    pub mode: XdpMode,
    pub id: u32,
}

/// The XDP programs in `ip -d link show dev X` output: the mode is a word
/// among the flags of the first line (`xdp`, `xdpgeneric`, `xdpoffload`, or
/// `xdpmulti`), the ids follow on `prog/xdp… id N` lines.
pub fn parse_ip_link_xdp(text: &str) -> Vec<XdpProg> {
    let mut lines = text.lines();
    let single_mode = lines.next().and_then(|first| {
        first.split_whitespace().find_map(|word| match word {
            "xdp" => Some(XdpMode::Native),
            "xdpgeneric" => Some(XdpMode::Generic),
            "xdpoffload" => Some(XdpMode::Offload),
            _ => None,
        })
    });
    lines
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let mode = match *words.first()? {
                "prog/xdp" => single_mode?,
                "prog/xdpdrv" => XdpMode::Native,
                "prog/xdpgeneric" => XdpMode::Generic,
                "prog/xdpoffload" => XdpMode::Offload,
                _ => return None,
            };
            match words.get(1..3)? {
                ["id", id] => Some(XdpProg {
                    mode,
                    id: id.parse().ok()?,
                }),
                _ => None,
            }
        })
        .collect()
}

/// The XDP programs in `bpftool net show` output: `NAME(INDEX) MODE id N`
/// lines in the `xdp:` section.
pub fn parse_bpftool_net_xdp(text: &str) -> Vec<XdpProg> {
    text.lines()
        .skip_while(|line| line.trim() != "xdp:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let mode = match *words.get(1)? {
                "driver" => XdpMode::Native,
                "generic" => XdpMode::Generic,
                "offload" => XdpMode::Offload,
                _ => return None,
            };
            match words.get(2..4)? {
                ["id", id] => Some(XdpProg {
                    mode,
                    id: id.parse().ok()?,
                }),
                _ => None,
            }
        })
        .collect()
}

/// A BPF program loaded in the kernel, as `bpftool prog list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfProg {
    pub id: u32,
    /// `xdp`, `kprobe`, …
    pub kind: String,
    /// Empty for programs without a name.
    pub name: String,
}

/// Every BPF program loaded (the list is machine-wide, not per namespace).
pub fn bpf_programs() -> Result<Vec<BpfProg>> {
    let out = run_ok(Command::new("bpftool").args(["prog", "list"]))?;
    Ok(parse_bpftool_prog_list(&String::from_utf8_lossy(
        &out.stdout,
    )))
}

/// `ID: KIND  name NAME  tag …` lines; indented lines carry details.
pub fn parse_bpftool_prog_list(text: &str) -> Vec<BpfProg> {
    text.lines()
        .filter(|line| !line.starts_with(char::is_whitespace))
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let id = words.first()?.strip_suffix(':')?.parse().ok()?;
            let name = match words.get(2..4) {
                Some(["name", name]) => name.to_string(),
                _ => String::new(),
            };
            Some(BpfProg {
                id,
                kind: words.get(1)?.to_string(),
                name,
            })
        })
        .collect()
}

/// A running xdp-hello: its stdout and stderr are collected line by line as
/// they come; dropping it kills the process.
pub struct Observer {
    child: Child,
    stdout: Arc<Lines>,
    stderr: Arc<Lines>,
    readers: Vec<JoinHandle<()>>,
}

/// How an observed xdp-hello ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Finished {
    /// The closing summary, if there is one on stderr.
    pub fn summary(&self) -> Option<Summary> {
        self.stderr.iter().find_map(|line| Summary::parse(line))
    }
}

impl Observer {
    /// Starts `binary -i IFACE -m MODE EXTRA…` inside namespace `ns` (through
    /// `ip netns exec`, so its /sys shows the namespace's interfaces) and
    /// waits until it says it is attached. If it exits first, the error
    /// carries what it said. It gets SIGTERM if the thread that calls this
    /// ends first, the whole process included, however it ends.
    pub fn spawn(
        binary: &Path,
        ns: &str,
        iface: &str,
        mode: Mode,
        extra: &[&str],
    ) -> Result<Observer> {
        let mut observer = Observer::start(
            binary,
            ns,
            iface,
            mode,
            extra,
            Stdio::piped(),
            Stdio::piped(),
        )?;
        observer.wait_attached(ns, iface)?;
        Ok(observer)
    }

    /// Starts it as [`Observer::spawn`] does, with stdout and stderr where
    /// the caller says (`Stdio::piped()`: collected, as `spawn` does), and
    /// returns at once: for output that cannot be written, and for signals
    /// that come before the attach.
    pub fn start(
        binary: &Path,
        ns: &str,
        iface: &str,
        mode: Mode,
        extra: &[&str],
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<Observer> {
        // `ip netns exec` execs the binary: the child's pid is xdp-hello's,
        // so signals reach it directly.
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns])
            .arg(binary)
            .args(["-i", iface, "-m", &mode.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: runs in the forked child before exec, and calls only
        // prctl(2) and getppid(2), both async-signal-safe; no allocation.
        unsafe {
            command.pre_exec(move || {
                // SIGTERM, which xdp-hello handles by detaching, when this
                // process dies however it dies (even SIGKILL), so nothing
                // stays attached in namespaces no one will remove. It
                // survives both execs, `ip` and xdp-hello being neither
                // set-uid nor capability-marked. The kernel sends it when the
                // *thread* that spawned exits: an Observer must not outlive
                // the thread that made it.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent died between fork and prctl: no signal is coming.
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = Arc::new(Lines::default());
        let stderr = Arc::new(Lines::default());
        let readers = vec![
            collect_lines(child.stdout.take(), stdout.clone()),
            collect_lines(child.stderr.take(), stderr.clone()),
        ];
        Ok(Observer {
            child,
            stdout,
            stderr,
            readers,
        })
    }

    /// Waits until it says (on collected stderr) that it is attached to
    /// `iface` in `ns`; kills it if it does not.
    pub fn wait_attached(&mut self, ns: &str, iface: &str) -> Result<()> {
        let banner = self
            .stderr
            .wait_for(|line| line.contains(" attached to "), ATTACH_TIMEOUT);
        if banner.is_none() {
            let status = self.kill_and_wait();
            bail!(
                "xdp-hello did not attach to {iface} in {ns} ({}): {}",
                status.map_or("still running after 10 s".into(), |s| s.to_string()),
                self.stderr.snapshot().join(" | ")
            );
        }
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The stdout lines so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.snapshot()
    }

    /// The stderr lines so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.snapshot()
    }

    /// Waits up to `timeout` until `count` stdout lines match `what`; returns
    /// how many matched in the end.
    pub fn wait_for_lines(
        &self,
        count: usize,
        what: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> usize {
        self.stdout.wait_until(
            |lines| lines.iter().filter(|l| what(l)).count() >= count,
            timeout,
        );
        self.stdout().iter().filter(|l| what(l)).count()
    }

    /// Sends `signal` (SIGINT, SIGTERM, SIGKILL, …), waits for the exit and
    /// returns the status with everything the process wrote.
    pub fn stop(self, signal: libc::c_int) -> Result<Finished> {
        // SAFETY: a plain kill(2) on our own child, not yet reaped.
        if unsafe { libc::kill(self.child.id() as libc::pid_t, signal) } != 0 {
            return Err(io::Error::last_os_error()).context("signalling xdp-hello");
        }
        self.exit_within(EXIT_TIMEOUT)
            .with_context(|| format!("after signal {signal}"))
    }

    /// Waits up to `timeout` for it to exit by itself (it is killed if it
    /// does not) and returns the status with everything it wrote.
    pub fn exit_within(mut self, timeout: Duration) -> Result<Finished> {
        let status = match wait_within(&mut self.child, timeout)? {
            Some(status) => status,
            None => {
                self.kill_and_wait();
                bail!("xdp-hello did not exit within {timeout:?}");
            }
        };
        // The pipes close with the process: the readers have everything.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Ok(Finished {
            status,
            stdout: self.stdout.snapshot(),
            stderr: self.stderr.snapshot(),
        })
    }

    fn kill_and_wait(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        // A process left running would keep its namespace alive after
        // `ip netns del`, with the program attached.
        self.kill_and_wait();
    }
}

/// The counts of xdp-hello's closing line: `xdp-hello: detached from X.
/// packets: 3 passed, 0 dropped, 0 aborted; notices: 3 shown, 0 lost (ring full)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: u64,
    pub dropped: u64,
    pub aborted: u64,
    pub shown: u64,
    pub lost: u64,
}

impl Summary {
    pub fn parse(line: &str) -> Option<Summary> {
        let (_, counts) = line.split_once("packets:")?;
        let words: Vec<&str> = counts
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
            .filter(|word| !word.is_empty())
            .collect();
        // Each count is the number just before its word.
        let count = |name: &str| -> Option<u64> {
            words
                .windows(2)
                .find(|pair| pair[1] == name)
                .and_then(|pair| pair[0].parse().ok())
        };
        Some(Summary {
            passed: count("passed")?,
            dropped: count("dropped")?,
            aborted: count("aborted")?,
            shown: count("shown")?,
            lost: count("lost")?,
        })
    }
}

/// Lines of a pipe, collected by a reader thread while others wait on them.
#[derive(Default)]
struct Lines {
    state: Mutex<LinesState>,
    changed: Condvar,
}

#[derive(Default)]
struct LinesState {
    lines: Vec<String>,
    closed: bool,
}

impl Lines {
    fn push(&self, line: String) {
        self.state.lock().unwrap().lines.push(line);
        self.changed.notify_all();
    }

    fn close(&self) {
        self.state.lock().unwrap().closed = true;
        self.changed.notify_all();
    }

    fn snapshot(&self) -> Vec<String> {
        self.state.lock().unwrap().lines.clone()
    }

    /// Waits until `done` holds for the lines, the pipe closes, or `timeout`
    /// passes; returns whether `done` held.
    fn wait_until(&self, done: impl Fn(&[String]) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap();
        loop {
            if done(&state.lines) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if state.closed || left.is_zero() {
                return false;
            }
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// The first line matching `what`, waiting for it as `wait_until` does.
    fn wait_for(&self, what: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        self.wait_until(|lines| lines.iter().any(|l| what(l)), timeout);
        self.snapshot().into_iter().find(|l| what(l))
    }
}

fn collect_lines(pipe: Option<impl Read + Send + 'static>, into: Arc<Lines>) -> JoinHandle<()> {
    thread::spawn(move || {
        if let Some(pipe) = pipe {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line);
                into.push(text.trim_end_matches(['\n', '\r']).to_string());
                line.clear();
            }
        }
        into.close();
    })
}

/// Runs `command` to the end, killing it after `timeout`; its output is read
/// while it runs, so a chatty command cannot block on a full pipe.
pub fn output_within(command: &mut Command, timeout: Duration) -> Result<Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let Some(status) = wait_within(&mut child, timeout)? else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("{command:?} did not finish within {timeout:?}");
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// `output_within` for commands that must succeed.
fn run_ok(command: &mut Command) -> Result<Output> {
    let out = output_within(command, COMMAND_TIMEOUT)?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

fn read_all(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// The exit status of `child` if it exits within `timeout`.
fn wait_within(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().context("waiting for a child")? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ip_link_xdp() {
        let native = "6: tva@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 xdp qdisc noqueue state UP\n    \
                      link/ether 76:a8:6c:5e:96:5a brd ff:ff:ff:ff:ff:ff link-netns b\n    \
                      prog/xdp id 885 name xdp_hello tag 38138ee71a02b9e0 jited\n";
        assert_eq!(
            parse_ip_link_xdp(native),
            [XdpProg {
                mode: XdpMode::Native,
                id: 885
            }]
        );
        let generic = native.replace(" xdp ", " xdpgeneric ");
        assert_eq!(parse_ip_link_xdp(&generic)[0].mode, XdpMode::Generic);
        let none = "6: tva@if5: <BROADCAST,UP> mtu 1500 qdisc noqueue state UP\n    link/ether x\n";
        assert!(parse_ip_link_xdp(none).is_empty());
    }

    #[test]
    fn reads_bpftool_net_xdp() {
        let text = "xdp:\ntva(6) generic id 886\n\ntc:\n\nflow_dissector:\n";
        assert_eq!(
            parse_bpftool_net_xdp(text),
            [XdpProg {
                mode: XdpMode::Generic,
                id: 886
            }]
        );
        assert!(parse_bpftool_net_xdp("xdp:\n\ntc:\n").is_empty());
    }

    #[test]
    fn reads_bpftool_prog_list() {
        let text = "885: xdp  name xdp_hello  tag 38138ee71a02b9e0  gpl\n\
                    \tloaded_at 2026-11-29T08:57:46+0000  uid 0\n\
                    12: cgroup_skb  tag 6deef7357e7b4530  gpl\n";
        let progs = parse_bpftool_prog_list(text);
        assert_eq!(progs.len(), 2);
        assert_eq!((progs[0].id, &*progs[0].kind), (885, "xdp"));
        assert_eq!(progs[0].name, "xdp_hello");
        assert_eq!(progs[1].name, "");
    }

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

    #[test]
    fn reads_summary() {
        let line = "xdp-hello: detached from tva. packets: 10 passed, 1 dropped, 0 aborted; \
                    notices: 8 shown, 2 lost (ring full)";
        assert_eq!(
            Summary::parse(line),
            Some(Summary {
                passed: 10,
                dropped: 1,
                aborted: 0,
                shown: 8,
                lost: 2
            })
        );
        assert_eq!(Summary::parse("xdp-hello: attached"), None);
    }
}
