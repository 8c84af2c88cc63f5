//! A rules file of a test's own: written whole at once, removed on drop.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct RulesFile(PathBuf);

impl RulesFile {
    /// A fresh path in the temporary folder, unique to this process and call.
    pub fn new(name: &str) -> RulesFile {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let file = format!("xdp-hello-{}-{n}-{name}.rules", std::process::id());
        RulesFile(std::env::temp_dir().join(file))
    }

    /// Replaces the content at once (write, then rename), so a reload never
    /// reads half a file.
    pub fn write(&self, text: &str) {
        let part = self.0.with_extension("part");
        fs::write(&part, text).unwrap();
        fs::rename(&part, &self.0).unwrap();
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for RulesFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
