//! Watches `--rules FILE` and asks for a reload, as SIGHUP does, once each
//! change has settled: inotify on the file's folder, so that an editor's
//! rename and Kubernetes' swap of a ConfigMap's `..data` symlink are seen.

use std::fs::File;
use std::hash::Hasher;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use rustc_hash::FxHasher;

use crate::logging::say;
use crate::policy::MAX_FILE_BYTES;

/// How long the folder must be quiet before the file is looked at: an
/// editor's save, `cp`, or the kubelet's swap is a burst of events within a
/// few milliseconds, and must make one reload, of the finished file.
const QUIET: Duration = Duration::from_millis(150);

/// The longest a stream of events may put the look off: in a busy folder
/// (/tmp) the quiet may never come.
const AT_MOST: Duration = Duration::from_secs(1);

/// What, in a watched folder, may mean another file under the path: a write
/// in place, a file renamed over it or removed, a symlink swapped.
const CHANGES: WatchMask = WatchMask::MODIFY
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::ATTRIB)
    .union(WatchMask::CREATE)
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::ONLYDIR);

/// What each watched file was when its rules were last read: when its
/// watch started, then just before each reload (SIGHUP's or the watch's)
/// read it. A change a reload has read needs no reload of its own.
static LAST_READ: Mutex<Vec<(PathBuf, Option<Fingerprint>)>> = Mutex::new(Vec::new());

/// A reload is about to read `file`: what it holds now is what the rules
/// will be (or fail to be) made of.
pub fn reading(file: &Path) {
    let mut last_read = LAST_READ
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, last)) = last_read.iter_mut().find(|(path, _)| path == file) {
        *last = Fingerprint::of(file);
    }
}

/// Whether `file` is not what it was when last read; if so, it is taken to
/// be read now (the reload asked for will read it).
fn changed_since_read(file: &Path) -> bool {
    let now = Fingerprint::of(file);
    let mut last_read = LAST_READ
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match last_read.iter_mut().find(|(path, _)| path == file) {
        Some((_, last)) if *last != now => {
            *last = now;
            true
        }
        _ => false,
    }
}

/// The watch of one rules file; dropping it stops the watch at once.
pub struct RulesWatch {
    /// An eventfd: written to end the thread's wait.
    stop: OwnedFd,
    thread: Option<JoinHandle<()>>,
    file: PathBuf,
}

impl RulesWatch {
    /// Watches `file` (when there is one) and sets `reload` after each
    /// change. Where it cannot watch, it says so and returns `None`: SIGHUP
    /// still reloads.
    pub fn start(file: Option<&Path>, reload: Arc<AtomicBool>) -> Option<RulesWatch> {
        PendingWatch::begin(file, reload).confirm()
    }

    fn try_start(file: &Path, reload: Arc<AtomicBool>) -> io::Result<RulesWatch> {
        // SAFETY: eventfd(2) takes no pointers; a descriptor it returns is ours.
        let stop = match unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) } {
            -1 => return Err(io::Error::last_os_error()),
            fd => unsafe { OwnedFd::from_raw_fd(fd) },
        };
        let stop_fd = stop.as_raw_fd();
        let watcher = Watcher::new(file, reload)?;
        let thread = thread::Builder::new()
            .name("rules-watch".into())
            .spawn(move || watcher.run(stop_fd))?;
        Ok(RulesWatch {
            stop,
            thread: Some(thread),
            file: file.to_path_buf(),
        })
    }
}

/// A watch begun before the rules are read, so that no change between goes
/// unseen, with its warning held until the rules are known good: a file
/// that cannot be read is the rules' error, said alone.
pub struct PendingWatch(Option<(PathBuf, io::Result<RulesWatch>)>);

impl PendingWatch {
    /// As [`RulesWatch::start`], saying nothing yet.
    pub fn begin(file: Option<&Path>, reload: Arc<AtomicBool>) -> PendingWatch {
        PendingWatch(file.map(|file| (file.to_path_buf(), RulesWatch::try_start(file, reload))))
    }

    /// The watch; where it could not begin, says why and that SIGHUP still
    /// reloads.
    pub fn confirm(self) -> Option<RulesWatch> {
        match self.0? {
            (_, Ok(watch)) => Some(watch),
            (file, Err(err)) => {
                say(format_args!(
                    "warning: not watching {} for changes ({err}); SIGHUP reloads it",
                    file.display()
                ));
                None
            }
        }
    }
}

impl Drop for RulesWatch {
    fn drop(&mut self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to our own eventfd.
        unsafe { libc::write(self.stop.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let mut last_read = LAST_READ
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        last_read.retain(|(path, _)| *path != self.file);
    }
}

/// The thread's side: the inotify instance and what the file was.
struct Watcher {
    file: PathBuf,
    inotify: Inotify,
    /// The folder of the path as given: renames and symlink swaps happen here.
    folder: WatchDescriptor,
    /// The folder of the file the path resolves to, where that is another
    /// (a symlink to elsewhere): writes in place happen there.
    target_folder: Option<(PathBuf, WatchDescriptor)>,
    reload: Arc<AtomicBool>,
}

impl Watcher {
    fn new(file: &Path, reload: Arc<AtomicBool>) -> io::Result<Watcher> {
        let inotify = Inotify::init()?;
        let folder = inotify.watches().add(folder_of(file), CHANGES)?;
        let mut watcher = Watcher {
            file: file.to_path_buf(),
            inotify,
            folder,
            target_folder: None,
            reload,
        };
        // Taken before the rules are read, with the folder watched already:
        // a change in between is an event, and then differs from this.
        let last = Fingerprint::of(file);
        let mut last_read = LAST_READ
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        last_read.retain(|(path, _)| path != file);
        last_read.push((file.to_path_buf(), last));
        drop(last_read);
        watcher.follow_target();
        Ok(watcher)
    }

    /// Waits for changes until `stop` is written to; after each burst of
    /// events has settled, asks for a reload if the file is not what it was.
    fn run(mut self, stop: RawFd) {
        let mut buffer = [0u8; 4096];
        // When the burst being waited out began, and its latest event.
        let mut burst: Option<(Instant, Instant)> = None;
        loop {
            let timeout = burst.map(|(first, latest)| (latest + QUIET).min(first + AT_MOST));
            let (inotify_ready, stopped) = wait(self.inotify.as_raw_fd(), stop, timeout);
            if stopped {
                return;
            }
            let now = Instant::now();
            if inotify_ready {
                match self.read_events(&mut buffer) {
                    Ok(true) => burst = Some((burst.map_or(now, |(first, _)| first), now)),
                    Ok(false) => {}
                    Err(why) => {
                        say(format_args!(
                            "warning: no longer watching {} for changes ({why}); SIGHUP \
                             reloads it",
                            self.file.display()
                        ));
                        return;
                    }
                }
            }
            if let Some((first, latest)) = burst {
                if now >= latest + QUIET || now >= first + AT_MOST {
                    burst = None;
                    self.look();
                }
            }
        }
    }

    /// Reads one bufferful of pending events; returns whether there were
    /// any. One read a wake-up, so that a folder written to without pause
    /// cannot keep the loop from seeing the stop. An error is why the watch
    /// cannot go on (the folder itself went away).
    fn read_events(&mut self, buffer: &mut [u8]) -> Result<bool, String> {
        let events = match self.inotify.read_events(buffer) {
            Ok(events) => events,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(err) => return Err(format!("reading inotify events: {err}")),
        };
        let mut any = false;
        for event in events {
            any = true;
            if event.wd == self.folder && event.mask.contains(EventMask::IGNORED) {
                return Err(format!(
                    "its folder {} went away",
                    folder_of(&self.file).display()
                ));
            }
        }
        Ok(any)
    }

    /// Asks for a reload if the file is not what it was when last read:
    /// another file, or the same one written to, or gone (the reload then
    /// says why it fails).
    fn look(&mut self) {
        self.follow_target();
        if changed_since_read(&self.file) {
            log::debug!("{} changed: reloading", self.file.display());
            self.reload.store(true, Ordering::Relaxed);
        }
    }

    /// Watches the folder of the file the path resolves to now, where that
    /// is not the folder of the path.
    fn follow_target(&mut self) {
        let target = std::fs::canonicalize(&self.file)
            .ok()
            .map(|target| folder_of(&target).to_path_buf());
        if target == self.target_folder.as_ref().map(|(path, _)| path.clone()) {
            return;
        }
        if let Some((_, old)) = self.target_folder.take() {
            // Already gone where the folder was removed (a ConfigMap's old
            // timestamped folder): nothing to undo then.
            let _ = self.inotify.watches().remove(old);
        }
        let Some(target) = target else { return };
        match self.inotify.watches().add(&target, CHANGES) {
            // The same folder (no symlink, or one within it) has one watch.
            Ok(wd) if wd == self.folder => {}
            Ok(wd) => self.target_folder = Some((target, wd)),
            Err(err) => log::debug!("not watching {}: {err}", target.display()),
        }
    }
}

/// Waits until the inotify instance or the stop eventfd can be read, or
/// until `deadline`; returns (events to read, asked to stop).
fn wait(inotify: RawFd, stop: RawFd, deadline: Option<Instant>) -> (bool, bool) {
    let mut fds = [inotify, stop].map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    let timeout_ms = match deadline {
        None => -1,
        // Rounded up, so the deadline has passed when poll returns.
        Some(deadline) => deadline
            .saturating_duration_since(Instant::now())
            .as_micros()
            .div_ceil(1000)
            .min(i32::MAX as u128) as i32,
    };
    // SAFETY: two live pollfd entries. EINTR (a signal landing on this
    // thread) and errors return with nothing ready: the caller looks again.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    let ready = |fd: &libc::pollfd| fd.revents != 0;
    (ready(&fds[0]), ready(&fds[1]))
}

/// The folder `path` is in, `.` for a bare file name.
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// What the file the path resolves to is: which file, when last written,
/// how long, and what it holds. `None`: there is none, or it cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    size: u64,
    content: u64,
}

impl Fingerprint {
    fn of(path: &Path) -> Option<Fingerprint> {
        let meta = std::fs::metadata(path).ok()?;
        // Only a regular file is read: opening a FIFO would block the
        // watch, and with it Ctrl-C.
        let content = if meta.is_file() {
            content_hash(File::open(path).ok()?.take(MAX_FILE_BYTES + 1)).ok()?
        } else {
            0
        };
        Some(Fingerprint {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            size: meta.size(),
            content,
        })
    }
}

/// A hash of what `reader` gives, read a block at a time: start-up takes
/// it of a 10,000-rule file before loading, so it must cost little.
fn content_hash(mut reader: impl Read) -> io::Result<u64> {
    let mut hasher = FxHasher::default();
    let mut block = [0u8; 64 << 10];
    loop {
        match reader.read(&mut block) {
            Ok(0) => return Ok(hasher.finish()),
            Ok(read) => hasher.write(&block[..read]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    /// A folder of the test's own, removed on drop.
    struct Folder(PathBuf);

    impl Folder {
        fn new(name: &str) -> Folder {
            let path = std::env::temp_dir().join(format!(
                "xdp-hello-{}-rules-watch-{name}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir(&path).unwrap();
            Folder(path)
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A watch of `fw.rules`, holding "deny icmp", in a folder of its own:
    /// the folder, the file, the flag it sets, the watch.
    fn watched(name: &str) -> (Folder, PathBuf, Arc<AtomicBool>, RulesWatch) {
        let folder = Folder::new(name);
        let file = folder.0.join("fw.rules");
        fs::write(&file, "deny icmp\n").unwrap();
        let reload = Arc::new(AtomicBool::new(false));
        let watch = RulesWatch::start(Some(&file), reload.clone()).unwrap();
        (folder, file, reload, watch)
    }

    /// Waits up to two seconds for a reload to be asked for, and takes it.
    fn asked(reload: &AtomicBool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if reload.swap(false, Ordering::Relaxed) {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Whether a reload is asked for within well past the quiet time.
    fn asked_soon(reload: &AtomicBool) -> bool {
        thread::sleep(QUIET * 3);
        reload.swap(false, Ordering::Relaxed)
    }

    #[test]
    fn a_burst_of_writes_asks_for_one_reload() {
        let (_folder, file, reload, _watch) = watched("burst");
        for port in 1..=5 {
            fs::write(&file, format!("deny udp dport {port}\n")).unwrap();
            thread::sleep(Duration::from_millis(20));
        }
        assert!(asked(&reload));
        assert!(!asked_soon(&reload), "a second reload for one burst");
    }

    #[test]
    fn a_change_a_reload_has_read_asks_for_nothing() {
        let (_folder, file, reload, _watch) = watched("read");
        fs::write(&file, "deny udp dport 9\n").unwrap();
        // SIGHUP's reload, before the watch's quiet is over.
        reading(&file);
        assert!(!asked_soon(&reload), "a second reload for one change");
    }

    #[test]
    fn other_files_in_the_folder_ask_for_nothing() {
        let (folder, _file, reload, _watch) = watched("others");
        fs::write(folder.0.join("other"), "x").unwrap();
        fs::rename(folder.0.join("other"), folder.0.join("other2")).unwrap();
        assert!(!asked_soon(&reload));
    }

    #[test]
    fn a_symlink_elsewhere_is_followed_for_writes_in_place() {
        let (links, targets) = (Folder::new("links"), Folder::new("targets"));
        let (link, target) = (links.0.join("fw.rules"), targets.0.join("real.rules"));
        fs::write(&target, "deny icmp\n").unwrap();
        symlink(&target, &link).unwrap();
        let reload = Arc::new(AtomicBool::new(false));
        let _watch = RulesWatch::start(Some(&link), reload.clone()).unwrap();
        fs::write(&target, "deny udp dport 9\n").unwrap();
        assert!(asked(&reload));
    }

    #[test]
    fn a_file_gone_then_back_asks_for_a_reload_each_time() {
        let (_folder, file, reload, _watch) = watched("gone");
        fs::remove_file(&file).unwrap();
        assert!(asked(&reload));
        fs::write(&file, "deny icmp\n").unwrap();
        assert!(asked(&reload));
    }

    #[test]
    fn dropping_the_watch_stops_it_at_once() {
        let (_folder, file, _reload, watch) = watched("drop");
        // A burst being waited out, and then a watch with nothing to do.
        fs::write(&file, "deny udp dport 9\n").unwrap();
        let started = Instant::now();
        drop(watch);
        assert!(started.elapsed() < Duration::from_millis(100));
    }
}
