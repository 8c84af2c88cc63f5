//! A run that starts with no rules loads the program without its
//! classifier, which the kernel verifies in a third of the time, and with
//! the classifier's large maps one slot each; its first rules bring the
//! whole program and those maps at full size, loaded beside it on the other
//! maps and put on every link in its place before they go in.

use std::os::fd::AsFd;

use anyhow::Result;

use crate::firewall::RuleMaps;
use crate::instance::Instance;
use crate::loader;
use crate::skel::XdpHelloSkel;
use crate::watch::LinkWatch;

/// Whether the links run a program that judges rules.
pub struct ClassifierSwap {
    /// The skeleton's own program has the classifier.
    loaded_with_it: bool,
    /// The program with it, loaded beside the skeleton's and on the links.
    swapped_in: Option<&'static XdpHelloSkel<'static>>,
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

    /// Whether the links run the classifier, and rules can go in.
    pub fn in_place(&self) -> bool {
        self.loaded_with_it || self.swapped_in.is_some()
    }

    /// Makes the links of `watches` run a program that judges rules: the
    /// first time, loads it beside `skel`'s, replaces that on each link and
    /// points `maps` at its rule maps. A link that refuses puts every link
    /// back on `skel`'s program.
    pub fn ensure(
        &mut self,
        skel: &XdpHelloSkel<'_>,
        watches: &mut [LinkWatch],
        instance: &Instance,
        maps: &mut RuleMaps<'_>,
    ) -> Result<()> {
        if self.in_place() {
            return Ok(());
        }
        let with_it = loader::load_classifier_beside(skel)?;
        let (without, new) = (
            skel.progs.xdp_hello.as_fd(),
            with_it.progs.xdp_hello.as_fd(),
        );
        let mut done = 0;
        let swapped = watches.iter_mut().try_for_each(|watch| {
            watch.replace_program(without, new)?;
            done += 1;
            anyhow::Ok(())
        });
        if let Err(err) = swapped {
            // Until rules go in, both programs judge every frame alike: a
            // link left on the new one filters as before, but the next
            // swap will be refused there, and the user must hear why.
            let stuck: Vec<&str> = watches[..done]
                .iter_mut()
                .filter_map(|watch| {
                    watch
                        .replace_program(new, without)
                        .err()
                        .map(|_| watch.iface())
                })
                .collect();
            if stuck.is_empty() {
                return Err(err);
            }
            return Err(err.context(format!(
                "{} could not be put back and stays on the program with the classifier, which \
                 no later swap can replace (restart xdp-hello to load rules)",
                stuck.join(", ")
            )));
        }
        // On the links for the rest of the run, its maps in the firewall's
        // hands: the one object a run keeps beside its first.
        let with_it: &'static XdpHelloSkel<'static> = Box::leak(Box::new(with_it));
        self.swapped_in = Some(with_it);
        *maps = RuleMaps::of(&with_it.maps);
        instance.program_replaced(with_it.progs.xdp_hello.as_fd())
    }
}
