//! A run that starts with no rules loads the program without its
//! classifier, which the kernel verifies in a third of the time; its first
//! rules bring the whole program, loaded beside it on the same maps and put
//! on every link in its place before they go in.

use std::os::fd::{AsFd, OwnedFd};

use anyhow::Result;

use crate::instance::Instance;
use crate::loader;
use crate::skel::XdpHelloSkel;
use crate::watch::LinkWatch;

/// Whether the links run a program that judges rules.
pub struct ClassifierSwap {
    /// The skeleton's own program has the classifier.
    loaded_with_it: bool,
    /// The program with it, loaded beside the skeleton's and on the links.
    swapped_in: Option<OwnedFd>,
}

impl ClassifierSwap {
    /// For a skeleton loaded with the classifier (`Config::classifier`) or
    /// without.
    pub fn new(loaded_with_it: bool) -> ClassifierSwap {
        ClassifierSwap {
            loaded_with_it,
            swapped_in: None,
        }
    }

    /// Makes the links of `watches` run a program that judges rules: the
    /// first time, loads it beside `skel`'s and replaces that on each link.
    /// A link that refuses puts every link back on `skel`'s program.
    pub fn ensure(
        &mut self,
        skel: &XdpHelloSkel<'_>,
        watches: &mut [LinkWatch],
        instance: &Instance,
    ) -> Result<()> {
        if self.loaded_with_it || self.swapped_in.is_some() {
            return Ok(());
        }
        let with_it = loader::load_classifier_beside(skel)?;
        let without = skel.progs.xdp_hello.as_fd();
        let mut done = 0;
        let swapped = watches.iter_mut().try_for_each(|watch| {
            watch.replace_program(without, with_it.as_fd())?;
            done += 1;
            anyhow::Ok(())
        });
        if let Err(err) = swapped {
            for watch in &mut watches[..done] {
                // Best effort: the error below is what the user hears.
                let _ = watch.replace_program(with_it.as_fd(), without);
            }
            return Err(err);
        }
        let with_it = self.swapped_in.insert(with_it);
        instance.program_replaced(with_it.as_fd())
    }
}
