//! Opens the skeleton, sizes the ring buffer, sets the load-time settings
//! and loads the program into the kernel, explaining a refusal in terms of
//! what the user can do about it.

use std::ffi::OsString;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;

use anyhow::{anyhow, bail, Context, Result};
use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, OpenMapMut, OpenObject};

use crate::abi::Config;
use crate::skel::{OpenXdpHelloMaps, XdpHelloSkel, XdpHelloSkelBuilder};
use crate::{kernel, privileges};

// Where the tests and the selftest look for it.
pub use crate::attach::Mode;

/// Opens and loads the XDP object with a ring buffer of `ring_bytes` and the
/// load-time settings `config`.
pub fn load(
    object: &mut MaybeUninit<OpenObject>,
    ring_bytes: u32,
    config: Config,
) -> Result<XdpHelloSkel<'_>> {
    privileges::check()?;
    require_ring_buffer()?;
    let mut open = XdpHelloSkelBuilder::default()
        .open(object)
        .context("opening the embedded BPF object failed")?;
    open.maps
        .events
        .set_max_entries(ring_bytes)
        .context("sizing the ring buffer failed")?;
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .context("the BPF object has no .rodata")?;
    rodata.CONFIG.default_verdict = config.default_verdict;
    rodata.CONFIG.notice_mode = config.notice_mode;
    rodata.CONFIG.dry_run = config.dry_run;
    rodata.CONFIG.sample_every = config.sample_every;
    rodata.CONFIG.notice_cost_ns = config.notice_cost_ns;
    rodata.CONFIG.bucket_ns = config.bucket_ns;
    rodata.CONFIG.iface_count = config.iface_count;
    rodata.CONFIG.ifindexes = config.ifindexes;
    rodata.CONFIG.snaplen = config.snaplen;
    rodata.CONFIG.classifier = config.classifier;
    if config.classifier == 0 {
        // Nothing reads them: one slot each instead of tens of MiB.
        for map in classifier_maps(&mut open.maps) {
            map.set_max_entries(1)
                .context("sizing the classifier's maps failed")?;
        }
    }
    open.load().map_err(|err| explain_load_error(&err))
}

/// The classifier's large maps, which a program without it (`Config::
/// classifier` 0) never reads. The small ones it shares, the plans and the
/// rule counters among them.
fn classifier_maps<'a, 'obj>(
    maps: &'a mut OpenXdpHelloMaps<'obj>,
) -> [&'a mut OpenMapMut<'obj>; 6] {
    [
        &mut maps.address_buckets,
        &mut maps.v4_ranges,
        &mut maps.v6_ranges,
        &mut maps.class_rules,
        &mut maps.port_classes,
        &mut maps.icmp_classes,
    ]
}

/// Loads the program again, with its classifier, beside `skel`'s loaded
/// without (a run that started with no rules, `Config::classifier` 0): the
/// classifier's large maps are its own, full size, every other map is
/// `skel`'s, and the settings' `.rodata` is new. Its object lives for the
/// rest of the run, as the first one does: a run makes this at most once.
pub fn load_classifier_beside(skel: &XdpHelloSkel<'_>) -> Result<XdpHelloSkel<'static>> {
    let mut config = skel
        .maps
        .rodata_data
        .context("the BPF object has no .rodata")?
        .CONFIG;
    config.classifier = 1;
    let object = Box::leak(Box::new(MaybeUninit::uninit()));
    let mut open = XdpHelloSkelBuilder::default()
        .open(object)
        .context("opening the embedded BPF object failed")?;
    open.maps
        .rodata_data
        .as_deref_mut()
        .context("the BPF object has no .rodata")?
        .CONFIG = config;
    let mut own: Vec<OsString> = classifier_maps(&mut open.maps)
        .iter()
        .map(|map| map.name().to_os_string())
        .collect();
    own.push(open.maps.rodata.name().to_os_string());
    for mut map in open.open_object_mut().maps_mut() {
        if own.iter().any(|name| name == map.name()) {
            continue;
        }
        let shared = skel
            .object()
            .maps()
            .find(|loaded| loaded.name() == map.name())
            .with_context(|| format!("the loaded object has no map {:?}", map.name()))?;
        map.reuse_fd(shared.as_fd())
            .with_context(|| format!("sharing the map {:?}", map.name()))?;
    }
    open.load().map_err(|err| explain_load_error(&err))
}

/// EPERM is a missing privilege; EACCES is how the verifier says no.
fn explain_load_error(err: &libbpf_rs::Error) -> anyhow::Error {
    match errno(err) {
        Some(libc::EPERM) => privileges::denied(),
        Some(libc::EACCES) => {
            let hint = privileges::verifier_hint()
                .map(|hint| format!("; {hint}"))
                .unwrap_or_default();
            anyhow!(
                "the kernel's verifier rejected the XDP program (EACCES): run with -v to see \
                 its log{hint}"
            )
        }
        _ => anyhow!(
            "loading the XDP program failed: {err} (run with -v to see libbpf's and the verifier's log)"
        ),
    }
}

/// The errno `err` was made from. libbpf-rs 0.27 keeps the `io::Error` it
/// wraps private and its kind() folds EPERM and EACCES into
/// PermissionDenied alike, so the number is read where std puts it: the
/// end of an OS error's text, "... (os error N)".
fn errno(err: &libbpf_rs::Error) -> Option<i32> {
    let text = format!("{err:#}");
    let (_, number) = text.strip_suffix(')')?.rsplit_once("(os error ")?;
    number.parse().ok()
}

/// BPF ring buffers came with Linux 5.8; say so instead of failing obscurely.
fn require_ring_buffer() -> Result<()> {
    match kernel::has_map_type(libbpf_sys::BPF_MAP_TYPE_RINGBUF) {
        Ok(true) => Ok(()),
        Ok(false) => bail!(
            "kernel {} has no BPF ring buffer (BPF_MAP_TYPE_RINGBUF needs Linux 5.8 or newer)",
            kernel::release()
        ),
        Err(err) if err.raw_os_error() == Some(libc::EPERM) => Err(privileges::denied()),
        Err(err) => Err(err).context("probing for BPF ring buffers"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_and_eacces_are_told_apart() {
        let eacces = libbpf_rs::Error::from_raw_os_error(libc::EACCES);
        let eperm = libbpf_rs::Error::from_raw_os_error(libc::EPERM);
        // The distinction kind() does not make.
        assert_eq!(eacces.kind(), eperm.kind());
        assert_eq!(errno(&eacces), Some(libc::EACCES));
        assert_eq!(errno(&eperm), Some(libc::EPERM));
        let verifier = explain_load_error(&eacces).to_string();
        assert!(
            verifier.starts_with("the kernel's verifier rejected"),
            "{verifier}"
        );
        assert!(verifier.contains("-v"), "{verifier}");
        let other = explain_load_error(&libbpf_rs::Error::from_raw_os_error(libc::EINVAL));
        assert!(other
            .to_string()
            .starts_with("loading the XDP program failed"));
    }
}
