//! The program wakes the ring's reader only as what waits in the ring
//! passes a multiple of 1/8 of its size (src/bpf/src/wakeup.rs), not for
//! every notice: seen from an epoll on the ring, as the reader's libbpf
//! sees it, through BPF_PROG_TEST_RUN. Needs root: ignored otherwise.

use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use libbpf_rs::ProgramInput;
use xdp_hello::abi::Notice;
use xdp_hello::loader;
use xdp_hello::selftest::packets::cases;
use xdp_hello::selftest::test_run::{CONFIG, RING_BYTES};

mod common;

/// Bytes a notice takes in the ring: its 8-byte header, 8-byte aligned.
const RECORD: usize = (size_of::<Notice>() + 8).div_ceil(8) * 8;
/// Notices that stay below the first mark, 1/8 of the ring.
const BELOW_MARK: usize = RING_BYTES as usize / 8 / RECORD;

/// An epoll that watches the ring for readable records.
struct RingWatch(OwnedFd);

impl RingWatch {
    fn new(ring: &impl AsFd) -> RingWatch {
        // SAFETY: no pointers; a fresh descriptor or -1.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(
            epoll >= 0,
            "epoll_create1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a fresh descriptor that nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        let fd = ring.as_fd().as_raw_fd();
        // SAFETY: both descriptors are open; `event` lives across the call.
        let added =
            unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
        assert_eq!(added, 0, "epoll_ctl: {}", std::io::Error::last_os_error());
        RingWatch(epoll)
    }

    /// Whether the ring's reader was woken within `timeout_ms`.
    fn woken(&self, timeout_ms: i32) -> bool {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: room for one event, which lives across the call.
        let ready = unsafe { libc::epoll_wait(self.0.as_raw_fd(), &mut event, 1, timeout_ms) };
        assert!(
            ready >= 0,
            "epoll_wait: {}",
            std::io::Error::last_os_error()
        );
        ready == 1
    }
}

#[test]
#[ignore = "needs root: loading XDP programs"]
fn the_reader_is_woken_only_at_fill_marks() {
    common::require_root("loading XDP programs");
    let mut object = MaybeUninit::uninit();
    let skel = loader::load(&mut object, RING_BYTES, CONFIG).expect("loading the XDP program");
    let frame = cases().into_iter().next().expect("a crafted frame").frame;
    let run = |repeat: usize| {
        let input = ProgramInput {
            data_in: Some(&frame),
            repeat: repeat as u32,
            ..Default::default()
        };
        skel.progs
            .xdp_hello
            .test_run(input)
            .expect("BPF_PROG_TEST_RUN");
    };
    let watch = RingWatch::new(&skel.maps.events);

    // One notice into an empty ring: a default submit would wake the reader.
    run(1);
    assert!(!watch.woken(50), "woken by the first notice");
    // Up to just below the mark: still nothing.
    run(BELOW_MARK - 1);
    assert!(!watch.woken(50), "woken below the mark");
    // Past it: woken.
    run(2);
    assert!(watch.woken(1000), "not woken past the mark");
}
