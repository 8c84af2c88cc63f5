//! Our object as it is, `xdp_hello.bpf.o`, in the loaders users have:
//! bpftool, xdp-loader (libxdp) and aya (what bpfman loads programs with)
//! each load it, attach it to a veth, and the attached program passes a
//! packet under BPF_PROG_TEST_RUN; afterwards nothing is left attached or
//! loaded. Root only: ignored as anyone else; `make test` runs them.
//!
//! The tools run in a private mount namespace with a bpffs (and, for
//! libxdp, a /run) of their own, as one shell session per test: load,
//! attach, wait for the test's checks, detach. No loader sets `.rodata`, so
//! each runs the program with `CONFIG` as compiled: no rules, default
//! allow, a notice for every packet.

use std::io::{BufRead, BufReader, Write};
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use aya::maps::RingBuf;
use aya::programs::{Xdp, XdpMode};
use aya::Ebpf;
use libbpf_rs::{libbpf_sys, MapCore, MapHandle};
use xdp_hello::abi::{Notice, IPPROTO_UDP, XDP_PASS};
use xdp_hello::loader::Mode;
use xdp_hello::selftest::attach::eventually;
use xdp_hello::selftest::command::{wait_within, COMMAND_TIMEOUT};
use xdp_hello::selftest::packets;
use xdp_hello::selftest::veth::{Side, TestNet, XdpProg};
use xdp_hello::stats::Counters;

mod common;

#[allow(dead_code)]
mod support;
use support::{nothing_left, prog_name_and_type, BpfObject};

/// What the tests marked `needs root` need it for.
const NEEDS_ROOT: &str = "network namespaces, veth, bpf(), mounts";

/// The linked object build.rs made, the one the skeleton was generated from.
const OBJECT: &str = env!("XDP_HELLO_OBJECT");

/// The program's name in the object (its function, section `xdp`).
const PROGRAM: &str = "xdp_hello";

/// How long a session may take to load and attach: the verifier takes
/// tens of seconds under software emulation (the smoke test's VMs).
const SESSION_TIMEOUT: Duration = Duration::from_secs(120);

/// What a session prints once the program is attached and the test may look.
const READY: &str = "loaders-test: attached";

#[test]
#[ignore = "needs root: network namespaces, veth, bpf(), mounts"]
fn bpftool_loads_attaches_and_runs_the_object() {
    common::require_root(NEEDS_ROOT);
    require_tool("bpftool", "bpftool");
    let net = TestNet::new().unwrap();
    let veth = net.veth(Side::A);
    for (attach_type, mode) in [("xdpdrv", Mode::Native), ("xdpgeneric", Mode::Skb)] {
        // loadall pins the program (its maps stay unpinned, held by it);
        // `net attach` attaches it over netlink, so it outlives the pin.
        let script = format!(
            "{FRAME_FILE_SETUP}
             mkdir /sys/fs/bpf/loaders
             bpftool prog loadall {OBJECT} /sys/fs/bpf/loaders
             bpftool net attach {attach_type} pinned /sys/fs/bpf/loaders/{PROGRAM} dev {veth}
             bpftool -j prog run pinned /sys/fs/bpf/loaders/{PROGRAM} data_in $FRAME repeat 1
             echo
             {WAIT}
             bpftool net detach {attach_type} dev {veth}",
            FRAME_FILE_SETUP = frame_file_setup(),
            WAIT = wait_for_test(),
        );
        let mut session = Session::start(&net, &script).unwrap();
        let printed = session.until_ready().unwrap();
        let attached = one_program(&net, mode, PROGRAM).unwrap();
        let objects = program_and_maps(attached.id).unwrap();
        let run: serde_json::Value = serde_json::from_str(printed.trim())
            .unwrap_or_else(|e| panic!("bpftool prog run printed {printed:?}: {e}"));
        assert_eq!(
            run["retval"], XDP_PASS,
            "bpftool prog run ({attach_type}): {run}"
        );
        session.finish().unwrap();
        all_gone(&net, &objects).unwrap();
    }
}

#[test]
#[ignore = "needs root: network namespaces, veth, bpf(), mounts"]
fn xdp_loader_loads_attaches_and_runs_the_object() {
    common::require_root(NEEDS_ROOT);
    require_tool("xdp-loader", "xdp-tools");
    require_tool("bpftool", "bpftool");
    let net = TestNet::new().unwrap();
    let veth = net.veth(Side::A);
    for (flag, mode) in [("native", Mode::Native), ("skb", Mode::Skb)] {
        // libxdp keeps its lock and pins under /run and /sys/fs/bpf: both
        // private. It attaches its dispatcher and ours as an extension
        // (freplace) of it, pinned in the bpffs (6.1, 6.12, 7.3 and 5.10
        // here), or, where its check of the dispatcher fails (6.18 here:
        // EPERM), ours alone.
        let script = format!(
            "{FRAME_FILE_SETUP}
             xdp-loader load -m {flag} {veth} {OBJECT}
             for pin in /sys/fs/bpf/xdp/dispatch-*/prog*-prog; do
                 if [ -e \"$pin\" ]; then bpftool -j prog show pinned \"$pin\"; echo; fi
             done
             {WAIT}
             xdp-loader unload --all {veth}",
            FRAME_FILE_SETUP = frame_file_setup(),
            WAIT = wait_for_test(),
        );
        let mut session = Session::start(&net, &script).unwrap();
        let printed = session.until_ready().unwrap();
        let components: Vec<serde_json::Value> = printed
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let (attached, ours) = match &components[..] {
            [] => {
                let attached = one_program(&net, mode, PROGRAM).unwrap();
                (attached.id, attached.id)
            }
            [component] => {
                assert_eq!(
                    (&component["name"], &component["type"]),
                    (&PROGRAM.into(), &"ext".into()),
                    "the dispatcher's component: {component}"
                );
                let attached = one_program(&net, mode, "xdp_dispatcher").unwrap();
                let ours = component["id"].as_u64().unwrap() as u32;
                (attached.id, ours)
            }
            _ => panic!("one program loaded, libxdp pinned more: {components:?}"),
        };
        let mut objects = program_and_maps(attached).unwrap();
        if ours != attached {
            objects.extend(program_and_maps(ours).unwrap());
        }
        // Through the dispatcher, a pass could be its own: our program's
        // counter says it ran (the veth's own traffic may add to it).
        let passed_before = counters_of(ours).unwrap().passed;
        let run = bpftool_prog_run(&net, attached).unwrap();
        assert_eq!(run["retval"], XDP_PASS, "bpftool prog run ({flag}): {run}");
        let passed = counters_of(ours).unwrap().passed - passed_before;
        assert!(passed >= 1, "the packet did not pass through ours ({flag})");
        session.finish().unwrap();
        all_gone(&net, &objects).unwrap();
    }
}

#[test]
#[ignore = "needs root: network namespaces, veth, bpf()"]
fn aya_loads_attaches_and_runs_the_object() {
    common::require_root(NEEDS_ROOT);
    let net = TestNet::new().unwrap();
    for (aya_mode, mode) in [(XdpMode::Driver, Mode::Native), (XdpMode::Skb, Mode::Skb)] {
        let mut ebpf =
            Ebpf::load_file(OBJECT).unwrap_or_else(|e| panic!("aya refuses {OBJECT}: {e} ({e:?})"));
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .unwrap_or_else(|| panic!("aya finds no program {PROGRAM} in {OBJECT}"))
            .try_into()
            .unwrap();
        program
            .load()
            .unwrap_or_else(|e| panic!("aya: load: {e} ({e:?})"));
        // The interface is looked up by name: in A's namespace. The link
        // then holds it wherever the thread goes.
        net.within(Side::A, || Ok(program.attach(net.veth(Side::A), aya_mode)?))
            .unwrap();
        let attached = one_program(&net, mode, PROGRAM).unwrap();
        let objects = program_and_maps(attached.id).unwrap();
        let frame = packets::udp64();
        let retval = test_run(program.fd().unwrap().as_fd(), &frame).unwrap();
        assert_eq!(
            retval,
            u32::from(XDP_PASS),
            "test_run through aya's fd ({mode})"
        );
        // The ring buffer aya made carries the frame's notice, as compiled
        // (CONFIG: a notice for every packet). The veth's own traffic (IPv6
        // neighbour discovery, MLD) leaves notices of its own beside it.
        let events = ebpf.map_mut("events").expect("aya has the map events");
        let mut ring = RingBuf::try_from(events).unwrap();
        let mut notices = Vec::new();
        while let Some(record) = ring.next() {
            notices.push(notice_of(&record));
        }
        let port = |at: usize| u16::from_be_bytes([frame[at], frame[at + 1]]);
        let want = (
            frame.len() as u32,
            4,
            IPPROTO_UDP,
            port(34),
            port(36),
            XDP_PASS,
        );
        let of_frame = notices
            .iter()
            .filter(|n| (n.packet_len, n.ip_version, n.l4_proto) == (want.0, want.1, want.2))
            .map(|n| {
                (
                    n.packet_len,
                    n.ip_version,
                    n.l4_proto,
                    n.src_port,
                    n.dst_port,
                    n.verdict,
                )
            })
            .collect::<Vec<_>>();
        assert_eq!(
            of_frame,
            [want],
            "the frame's notice (length, IP version, protocol, ports, verdict)"
        );
        // The ring's mappings hold the map, and the Ebpf the link and every
        // other fd: the kernel frees them all once both are gone.
        drop(ring);
        drop(ebpf);
        all_gone(&net, &objects).unwrap();
    }
}

/// Panics, saying what to do, unless `tool` (from Debian's `package`) is on
/// PATH.
fn require_tool(tool: &str, package: &str) {
    let found = Command::new(tool)
        .arg("help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(found, "{tool} is missing: `make setup` installs {package}");
}

/// A shell session in A's network namespace and a mount namespace of its
/// own with a fresh bpffs; it prints [`READY`], then waits for a line (or
/// the end) of its stdin before it goes on to detach.
struct Session {
    child: Child,
    go_on: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Session {
    fn start(net: &TestNet, script: &str) -> Result<Session> {
        let script = format!("set -e\nmount -t bpf bpf /sys/fs/bpf\n{script}\n");
        // `ip netns exec` gives a new mount namespace already; `unshare`
        // keeps the mounts private wherever this runs.
        let mut child = Command::new("ip")
            .args(["netns", "exec", net.ns(Side::A)])
            .args(["unshare", "--mount", "--propagation", "private"])
            .args(["sh", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the loader's shell session")?;
        let go_on = child.stdin.take();
        let stdout = child.stdout.take().context("the session's stdout")?;
        let (send, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Session {
            child,
            go_on,
            lines,
        })
    }

    /// What the session printed before [`READY`].
    fn until_ready(&mut self) -> Result<String> {
        let deadline = Instant::now() + SESSION_TIMEOUT;
        let mut printed = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == READY => return Ok(printed),
                Ok(line) => {
                    printed.push_str(&line);
                    printed.push('\n');
                }
                Err(_) => {
                    let status = self.child.try_wait()?;
                    bail!("the session never attached (exit: {status:?}); it printed {printed:?}")
                }
            }
        }
    }

    /// Lets the session detach, and waits for it to succeed.
    fn finish(mut self) -> Result<()> {
        if let Some(mut go_on) = self.go_on.take() {
            go_on.write_all(b"\n")?;
        }
        let status = wait_within(&mut self.child, COMMAND_TIMEOUT)?;
        ensure!(
            status.is_some_and(|s| s.success()),
            "the session's detach failed: {status:?}"
        );
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Its stdin closes here: a session a failed test left waiting
        // detaches and ends; one that hangs is killed. (Removing the
        // namespace removes the veth and whatever sits on it either way.)
        drop(self.go_on.take());
        if !matches!(wait_within(&mut self.child, COMMAND_TIMEOUT), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Shell lines that mount a private tmpfs on /run (libxdp's lock and
/// state live there) and write the test frame, a 64-byte IPv4/UDP frame, to
/// `$FRAME` in it: nothing is left on the host's disks.
fn frame_file_setup() -> String {
    let octal: String = packets::udp64()
        .iter()
        .map(|byte| format!("\\{byte:03o}"))
        .collect();
    format!(
        "mount -t tmpfs tmpfs /run
         FRAME=/run/udp64.bin
         printf '{octal}' > $FRAME"
    )
}

/// Shell lines that say [`READY`] and wait for the test (EOF counts too).
fn wait_for_test() -> String {
    format!("echo '{READY}'\n read -r _ || true")
}

/// `bpftool -j prog run id ID` with the test frame, from inside A's
/// namespace; its JSON (`retval`, `duration`).
fn bpftool_prog_run(net: &TestNet, id: u32) -> Result<serde_json::Value> {
    let script = format!(
        "set -e
         {FRAME_FILE_SETUP}
         bpftool -j prog run id {id} data_in $FRAME repeat 1",
        FRAME_FILE_SETUP = frame_file_setup(),
    );
    let out = net.exec(
        Side::A,
        "unshare",
        &["--mount", "--propagation", "private", "sh", "-c", &script],
    )?;
    ensure!(out.status.success(), "bpftool prog run id {id}: {out:?}");
    serde_json::from_slice(&out.stdout).context("bpftool prog run's JSON")
}

/// The one program on A's veth, in `mode`, which must be named `name`.
fn one_program(net: &TestNet, mode: Mode, name: &str) -> Result<XdpProg> {
    let on_a = net.xdp(Side::A)?;
    let [prog] = on_a[..] else {
        bail!("want one program on {}, found {on_a:?}", net.veth(Side::A));
    };
    ensure!(
        prog.mode == mode,
        "attached in {} mode, not {mode}",
        prog.mode
    );
    let found = prog_name_and_type(prog.id).map(|(name, _)| name);
    ensure!(
        found.as_deref() == Some(name),
        "program {} is {found:?}, not {name}",
        prog.id
    );
    Ok(prog)
}

/// Nothing on A's veth and none of `objects` left in the kernel. A bpf_link
/// detaches when the last copy of its fd closes, and a child that another
/// test is starting holds copies until its exec: allowed two seconds, as
/// freeing the objects is.
fn all_gone(net: &TestNet, objects: &[BpfObject]) -> Result<()> {
    eventually(Duration::from_secs(2), || {
        net.xdp(Side::A).is_ok_and(|on_a| on_a.is_empty())
    });
    nothing_left(net, objects)
}

/// Program `id` and the maps it uses, as kernel objects. The program must
/// have come with the object's BTF: a loader that could not read it would
/// have loaded it without (as aya does with BTF it cannot parse).
fn program_and_maps(id: u32) -> Result<Vec<BpfObject>> {
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    ensure!(fd >= 0, "program {id} is gone");
    // SAFETY: a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let info = |map_ids: &mut [u32]| -> Result<libbpf_sys::bpf_prog_info> {
        let mut info: libbpf_sys::bpf_prog_info = unsafe { zeroed() };
        info.nr_map_ids = map_ids.len() as u32;
        info.map_ids = map_ids.as_mut_ptr() as u64;
        let mut len = size_of::<libbpf_sys::bpf_prog_info>() as u32;
        let rc =
            unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
        ensure!(rc == 0, "bpf_prog_get_info_by_fd({id}): {rc}");
        Ok(info)
    };
    let mut map_ids = vec![0u32; info(&mut [])?.nr_map_ids as usize];
    let btf_id = info(&mut map_ids)?.btf_id;
    ensure!(btf_id != 0, "program {id} was loaded without BTF");
    ensure!(!map_ids.is_empty(), "program {id} uses no maps");
    Ok(std::iter::once(BpfObject::Prog(id))
        .chain(map_ids.into_iter().map(BpfObject::Map))
        .collect())
}

/// The counters of program `id` (its map `counters`), summed over CPUs.
fn counters_of(id: u32) -> Result<Counters> {
    for object in program_and_maps(id)? {
        if let BpfObject::Map(map_id) = object {
            let map = MapHandle::from_map_id(map_id)?;
            if map.name() == "counters" {
                return Counters::read(&map);
            }
        }
    }
    bail!("program {id} has no map counters")
}

/// A ring buffer record as a notice; it must be one.
fn notice_of(record: &[u8]) -> Notice {
    let mut notice = Notice::ZERO;
    assert_eq!(
        record.len(),
        size_of::<Notice>(),
        "a record that is no notice"
    );
    plain::copy_from_bytes(&mut notice, record).unwrap();
    notice
}

/// Runs `frame` once through program `prog` (BPF_PROG_TEST_RUN); its
/// return value.
fn test_run(prog: BorrowedFd<'_>, frame: &[u8]) -> Result<u32> {
    let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { zeroed() };
    opts.sz = size_of::<libbpf_sys::bpf_test_run_opts>() as _;
    opts.data_in = frame.as_ptr().cast();
    opts.data_size_in = frame.len() as u32;
    opts.repeat = 1;
    let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
    ensure!(
        rc == 0,
        "BPF_PROG_TEST_RUN: {}",
        std::io::Error::from_raw_os_error(-rc)
    );
    Ok(opts.retval)
}
