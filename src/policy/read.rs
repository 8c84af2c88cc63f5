//! Where rules are written: `--rule` flags and rules files (one rule a
//! line, `#` comments, UTF-8 with or without a BOM, a size cap).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::parse::without_comment;
use super::{quote, Origin, RuleError, SourcedRule, MAX_RULES_PER_SET};

/// What to do with a rule that does not parse: fail at once (`Err`), or
/// note it and read on (`Ok`).
pub type OnBadRule<'a> = &'a mut dyn FnMut(RuleError) -> Result<(), RuleError>;

/// All rules from the flags, then the file, in that order (the order in
/// which they are tried), and at most [`MAX_RULES_PER_SET`] of them.
pub fn load(flags: &[String], file: Option<&Path>) -> Result<Vec<SourcedRule>, RuleError> {
    load_reading_on(flags, file, &mut Err)
}

/// As [`load`], with `on_bad` deciding whether a bad rule ends the reading
/// (`xdp-hello check` reads on, to name every bad line at once). Files that
/// cannot be read, are not text or are too large always end it.
pub fn load_reading_on(
    flags: &[String],
    file: Option<&Path>,
    on_bad: OnBadRule<'_>,
) -> Result<Vec<SourcedRule>, RuleError> {
    Unparsed::read(flags, file).parse(on_bad)
}

/// A set's rules read but not yet parsed: whether there are any is known
/// at once (start-up loads the program for that while they parse).
pub struct Unparsed {
    flags: Vec<String>,
    file: Option<FileLines>,
}

/// The rule lines of a file, and why it could not be read on, if so.
struct FileLines {
    /// Shared by the origins of its rules.
    path: Arc<Path>,
    /// Its rule lines, one after the other.
    text: String,
    /// Each rule line's number (from 1) and where it is in `text`.
    lines: Vec<(usize, Range<usize>)>,
    unreadable: Option<RuleError>,
}

impl Unparsed {
    /// The `--rule` flags and the rule lines of `file`; what cannot be read
    /// is an error of [`Unparsed::parse`], after the rules before it.
    pub fn read(flags: &[String], file: Option<&Path>) -> Unparsed {
        let file = file.map(FileLines::read);
        Unparsed {
            flags: flags.to_vec(),
            file,
        }
    }

    /// Whether [`Unparsed::parse`] gives any rule, unless it fails: every
    /// flag and rule line is a rule or an error.
    pub fn has_rules(&self) -> bool {
        !self.flags.is_empty() || self.file.as_ref().is_some_and(|f| !f.lines.is_empty())
    }

    /// As [`load_reading_on`].
    pub fn parse(self, on_bad: OnBadRule<'_>) -> Result<Vec<SourcedRule>, RuleError> {
        let Unparsed { flags, file } = self;
        let mut rules = Vec::new();
        for (index, text) in flags.iter().enumerate() {
            match parse_flag(index, text) {
                Ok(rule) => rules.push(rule),
                Err(err) => on_bad(err)?,
            }
        }
        let path = file.as_ref().map(|file| Arc::clone(&file.path));
        if let Some(file) = file {
            rules.extend(file.parse(on_bad)?);
        }
        check_count(rules, &flags, path.as_deref())
    }
}

/// `rules`, unless there are more than a set may hold.
fn check_count(
    rules: Vec<SourcedRule>,
    flags: &[String],
    file: Option<&Path>,
) -> Result<Vec<SourcedRule>, RuleError> {
    if rules.len() > MAX_RULES_PER_SET {
        let from = match file {
            Some(path) if flags.is_empty() => path.display().to_string(),
            Some(path) => format!("{} and --rule", path.display()),
            None => "--rule".to_string(),
        };
        return Err(RuleError(format!(
            "{from}: {} rules, more than the {MAX_RULES_PER_SET} a rule set may hold; \
             merge rules that differ in one field into a list (src 10.0.0.1,10.0.0.2), \
             a wider prefix or a range",
            rules.len()
        )));
    }
    Ok(rules)
}

/// The most a rules file may hold, in bytes: far more than a full set in
/// any spelling, and a stop for `--rules /dev/zero`.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// `MAX_FILE_BYTES` as messages and the README say it.
pub const MAX_FILE_SIZE: &str = "16 MiB";

/// One line of a rules file (from 1); `None` for a blank or comment line.
fn parse_line(
    line: &str,
    path: &Arc<Path>,
    number: usize,
) -> Result<Option<SourcedRule>, RuleError> {
    let content = without_comment(line);
    if content.is_empty() {
        return Ok(None);
    }
    let origin = Origin::File(Arc::clone(path), number);
    let rule = content
        .parse()
        .map_err(|why| RuleError(format!("{origin}: bad rule {}: {why}", quote(content))))?;
    Ok(Some(SourcedRule { rule, origin }))
}

/// Reads the rules of a file: one a line, `#` comments, blank lines, UTF-8
/// (a byte-order mark is fine), at most [`MAX_FILE_SIZE`]. Reads line by
/// line, so `/dev/urandom` fails at its first line and `/dev/zero` at the
/// cap.
pub fn read_file(path: &Path) -> Result<Vec<SourcedRule>, RuleError> {
    FileLines::read(path).parse(&mut Err)
}

impl FileLines {
    /// The rule lines of a rules file (blank and comment lines left out),
    /// up to the first that cannot be read, and why that one could not.
    fn read(path: &Path) -> FileLines {
        let mut file = FileLines {
            path: path.into(),
            text: String::new(),
            lines: Vec::new(),
            unreadable: None,
        };
        file.unreadable = file.read_lines().err();
        file
    }

    /// Reads the rule lines into `self`, numbered from 1 (a byte-order mark
    /// gone), up to the first that cannot be read.
    fn read_lines(&mut self) -> Result<(), RuleError> {
        let path = &self.path;
        let cannot = |err: std::io::Error| {
            RuleError(format!("cannot read rules file {}: {err}", path.display()))
        };
        let file = File::open(path).map_err(cannot)?;
        let mut reader = BufReader::with_capacity(64 << 10, file.take(MAX_FILE_BYTES + 1));
        let (mut bytes, mut total, mut number) = (Vec::new(), 0u64, 0);
        loop {
            bytes.clear();
            let read = match reader.read_until(b'\n', &mut bytes) {
                Ok(0) => return Ok(()),
                Ok(read) => read,
                Err(err) => return Err(cannot(err)),
            };
            total += read as u64;
            if total > MAX_FILE_BYTES {
                return Err(RuleError(format!(
                    "rules file {} is larger than {MAX_FILE_SIZE}, the most a rules file may \
                     hold ({MAX_RULES_PER_SET} rules fit in far less); is it the right file?",
                    path.display()
                )));
            }
            number += 1;
            let line = std::str::from_utf8(&bytes).map_err(|err| {
                RuleError(format!(
                    "{}:{number}: not UTF-8 text (byte {} of the line); a rules file is text, \
                     one rule a line",
                    path.display(),
                    err.valid_up_to() + 1
                ))
            })?;
            let line = if number == 1 {
                line.strip_prefix('\u{feff}').unwrap_or(line)
            } else {
                line
            };
            if !without_comment(line).is_empty() {
                let at = self.text.len();
                self.text.push_str(line);
                self.lines.push((number, at..self.text.len()));
            }
        }
    }

    /// Its rules, bad ones to `on_bad` in line order, then the error of a
    /// line that could not be read.
    fn parse(self, on_bad: OnBadRule<'_>) -> Result<Vec<SourcedRule>, RuleError> {
        let mut rules = Vec::with_capacity(self.lines.len());
        for parsed in self.parse_lines() {
            match parsed {
                Ok(rule) => rules.extend(rule),
                Err(err) => on_bad(err)?,
            }
        }
        match self.unreadable {
            Some(err) => Err(err),
            None => Ok(rules),
        }
    }

    /// Each rule line parsed, in order (`parse_line`); many in two halves
    /// at once.
    fn parse_lines(&self) -> Vec<Result<Option<SourcedRule>, RuleError>> {
        let parse = |part: &[(usize, Range<usize>)]| -> Vec<_> {
            part.iter()
                .map(|(number, at)| parse_line(&self.text[at.clone()], &self.path, *number))
                .collect()
        };
        if self.lines.len() < PARALLEL_LINES {
            return parse(&self.lines);
        }
        let (front, back) = self.lines.split_at(self.lines.len() / 2);
        std::thread::scope(|scope| {
            let other = std::thread::Builder::new()
                .name("xdp-hello-parse".into())
                .spawn_scoped(scope, || parse(back));
            let mut parsed = parse(front);
            // No thread to be had: this one parses the rest too.
            parsed.extend(match other {
                Ok(other) => other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(_) => parse(back),
            });
            parsed
        })
    }
}

/// Files of this many rule lines or more are parsed in two halves at once.
const PARALLEL_LINES: usize = 2048;

/// The rules in `text`, as if read from `path`.
pub fn parse_lines(text: &str, path: &Path) -> Result<Vec<SourcedRule>, RuleError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let path = Arc::from(path);
    let mut rules = Vec::new();
    for (index, line) in text.lines().enumerate() {
        rules.extend(parse_line(line, &path, index + 1)?);
    }
    Ok(rules)
}

/// The rules given with `--rule`.
pub fn parse_flags(texts: &[String]) -> Result<Vec<SourcedRule>, RuleError> {
    texts
        .iter()
        .enumerate()
        .map(|(index, text)| parse_flag(index, text))
        .collect()
}

/// The `index`-th `--rule` (from 0).
fn parse_flag(index: usize, text: &str) -> Result<SourcedRule, RuleError> {
    let origin = Origin::Flag(index + 1);
    let rule = without_comment(text)
        .parse()
        .map_err(|why| RuleError(format!("{origin}: bad rule {}: {why}", quote(text))))?;
    Ok(SourcedRule { rule, origin })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::super::rule;
    use super::*;

    /// A file of the test's own with `bytes` in it, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, bytes: &[u8]) -> TempFile {
            let path = std::env::temp_dir().join(format!(
                "xdp-hello-policy-{}-{name}.rules",
                std::process::id()
            ));
            std::fs::write(&path, bytes).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// `job`'s result, or a failure if it takes more than 10 s (the thread
    /// goes on, but the test has failed).
    fn within_10s<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(job());
        });
        result
            .recv_timeout(Duration::from_secs(10))
            .expect("still at it after 10 s")
    }

    #[test]
    fn invisible_characters_are_escaped_and_a_bom_is_accepted() {
        let rules = parse_lines("\u{feff}deny icmp\n", Path::new("fw.rules")).unwrap();
        assert_eq!(rules[0].rule, rule("deny icmp"));
        let file = TempFile::new("bom", b"\xef\xbb\xbfdeny icmp\r\nallow src 10.0.0.1\r\n");
        let rules = read_file(&file.0).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1].rule, rule("allow src 10.0.0.1"));

        for (text, shown) in [
            ("deny\0src 10.0.0.1", "'deny\\0src 10.0.0.1'"),
            (
                "deny src 10.0.0.\u{1b}[31m1",
                "'deny src 10.0.0.\\u{1b}[31m1'",
            ),
            ("deny src 10.0.\u{200b}0.1", "'deny src 10.0.\\u{200b}0.1'"),
            ("deny src 10.0.0.1\u{202e}", "'deny src 10.0.0.1\\u{202e}'"),
            ("\u{feff}deny icmp", "'\\u{feff}deny icmp'"),
            ("deny\u{a0}src\tx", "'deny\\u{a0}src\\tx'"),
        ] {
            let err = parse_lines(&format!("# one\n{text}\n"), Path::new("fw.rules"))
                .unwrap_err()
                .0;
            assert!(err.contains(shown), "{err:?} should show {shown}");
            assert!(
                !err.chars().any(|c| c.is_control()
                    || matches!(c, '\u{200b}' | '\u{202e}' | '\u{feff}' | '\u{a0}')),
                "raw invisible characters in {err:?}"
            );
        }
    }

    #[test]
    fn rules_files_are_read_up_to_a_cap() {
        let err = within_10s(|| read_file(Path::new("/dev/zero")).unwrap_err().0);
        assert!(err.contains("/dev/zero is larger than 16 MiB"), "{err}");
        let err = within_10s(|| read_file(Path::new("/dev/urandom")).unwrap_err().0);
        assert!(
            err.starts_with("/dev/urandom:") && err.contains("not UTF-8"),
            "{err}"
        );
        assert!(err.len() < 200, "{err}");
    }

    #[test]
    fn invalid_utf8_is_refused_with_its_line_number() {
        let file = TempFile::new("latin1", b"deny icmp\n# caf\xe9\ndeny udp dport 53\n");
        let err = read_file(&file.0).unwrap_err().0;
        assert_eq!(
            err,
            format!(
                "{}:2: not UTF-8 text (byte 6 of the line); a rules file is text, one rule a line",
                file.0.display()
            )
        );
    }

    #[test]
    fn a_set_larger_than_the_limit_is_refused_naming_the_file_and_the_limit() {
        let host = |i: u32| format!("deny src 10.{}.{}.{}\n", i >> 16, (i >> 8) & 255, i & 255);
        let text: String = (0..100_000).map(host).collect();
        let file = TempFile::new("100k", text.as_bytes());
        let err = load(&[], Some(&file.0)).unwrap_err().0;
        assert_eq!(
            err,
            format!(
                "{}: 100000 rules, more than the 65536 a rule set may hold; merge rules \
                 that differ in one field into a list (src 10.0.0.1,10.0.0.2), a wider \
                 prefix or a range",
                file.0.display()
            )
        );
        // Exactly the limit fits, flags counted with the file.
        let text: String = (0..MAX_RULES_PER_SET as u32 - 1).map(host).collect();
        let file = TempFile::new("64k", text.as_bytes());
        assert_eq!(
            load(&["deny icmp".into()], Some(&file.0)).unwrap().len(),
            MAX_RULES_PER_SET
        );
        let err = load(
            &["deny icmp".into(), "deny udp port 53".into()],
            Some(&file.0),
        );
        assert!(err.unwrap_err().0.contains("--rule #2: bad rule"));
        let err = load(
            &["deny icmp".into(), "deny proto gre".into()],
            Some(&file.0),
        );
        assert!(err.unwrap_err().0.contains("and --rule: 65537 rules"));
    }

    #[test]
    fn files_skip_comments_and_blank_lines_and_keep_line_numbers() {
        let text = "# a rules file\n\ndeny src 10.0.0.0/8   # the lab\n  \nallow src 10.1.2.3\n";
        let rules = parse_lines(text, Path::new("fw.rules")).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[0].origin,
            Origin::File(Path::new("fw.rules").into(), 3)
        );
        assert_eq!(
            rules[1].origin,
            Origin::File(Path::new("fw.rules").into(), 5)
        );
        assert_eq!(rules[1].rule, rule("allow src 10.1.2.3"));
        let file = TempFile::new("lines", text.as_bytes());
        assert_eq!(
            read_file(&file.0).unwrap(),
            parse_lines(text, &file.0).unwrap()
        );
    }

    #[test]
    fn flags_come_first_and_overlapping_rules_are_kept_in_order() {
        let file = TempFile::new("order", b"deny tcp dport 22\ndeny tcp dport 22\n");
        let flags = ["allow tcp dport 22 src 10.0.0.0/24".into(), "deny".into()];
        let rules = load(&flags, Some(&file.0)).unwrap();
        let origins: Vec<String> = rules.iter().map(|r| r.origin.to_string()).collect();
        let file_line = |n| format!("{}:{n}", file.0.display());
        assert_eq!(
            origins,
            [
                "--rule #1".into(),
                "--rule #2".into(),
                file_line(1),
                file_line(2)
            ]
        );
        assert_eq!(rules[2].rule, rules[3].rule);
    }

    #[test]
    fn the_policies_in_the_readme_parse() {
        let readme = include_str!("../../README.md");
        let section = readme.split("## Rules").nth(1).unwrap();
        let section = section.split("## Output").next().unwrap();
        let mut policies = 0;
        for block in section.split("```").skip(1).step_by(2) {
            let block = block.strip_prefix('\n').unwrap_or(block);
            if !block.starts_with("allow") && !block.starts_with("deny") && !block.starts_with('#')
            {
                continue;
            }
            let rules = parse_lines(block, Path::new("README.md")).unwrap();
            assert!(!rules.is_empty(), "{block}");
            policies += 1;
        }
        assert_eq!(
            policies, 3,
            "the host policy, and one before and after migrating"
        );
    }

    #[test]
    fn comments_work_on_the_command_line_too() {
        let rules = parse_flags(&["deny tcp dport 22   # ssh".into()]).unwrap();
        assert_eq!(rules[0].rule, rule("deny tcp dport 22"));
    }

    #[test]
    fn a_bad_line_is_named_by_number() {
        let err =
            parse_lines("deny icmp\n\ndeny tcp dport x\n", Path::new("fw.rules")).unwrap_err();
        assert!(
            err.0.starts_with("fw.rules:3: bad rule 'deny tcp dport x'"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_is_a_rule_error() {
        let err = read_file(Path::new("/nonexistent/fw.rules")).unwrap_err();
        assert!(
            err.0
                .contains("cannot read rules file /nonexistent/fw.rules"),
            "{err}"
        );
    }

    #[test]
    fn whether_a_set_has_rules_is_known_before_it_parses() {
        let unparsed = |flags: &[&str], text: &[u8]| {
            let file = TempFile::new("unparsed", text);
            let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
            Unparsed::read(&flags, Some(&file.0))
        };
        let none = unparsed(&[], b"\xef\xbb\xbf# header\n\n   # indented\n\t\n");
        assert!(!none.has_rules());
        assert!(none.parse(&mut Err).unwrap().is_empty());
        let one = unparsed(&[], b"# header\n\ndeny icmp # no pings\n");
        assert!(one.has_rules());
        let rules = one.parse(&mut Err).unwrap();
        assert_eq!(rules.len(), 1);
        assert!(matches!(&rules[0].origin, Origin::File(_, 3)));
        // A bad line is a rule line: it fails the parse, never reads as none.
        let bad = unparsed(&[], b"# header\ndeny tcp dport x\n");
        assert!(bad.has_rules());
        assert!(bad.parse(&mut Err).unwrap_err().0.contains(":2: bad rule"));
        let flag = unparsed(&["deny icmp"], b"# nothing here\n");
        assert!(flag.has_rules());
        assert_eq!(flag.parse(&mut Err).unwrap().len(), 1);
    }

    #[test]
    fn many_rules_after_many_comments_parse_in_order() {
        // Enough rule lines for two halves, then as many comment lines.
        let mut text = String::new();
        for i in 0..3000 {
            text += &format!("deny src 10.{}.{}.0/24\n", i / 256, i % 256);
        }
        for i in 0..3000 {
            text += &format!("# comment {i}\n");
        }
        let file = TempFile::new("halves", text.as_bytes());
        let rules = read_file(&file.0).unwrap();
        assert_eq!(rules.len(), 3000);
        for (i, rule) in rules.iter().enumerate() {
            assert!(matches!(&rule.origin, Origin::File(_, line) if *line == i + 1));
        }
        assert_eq!(rules[2999].rule, rule("deny src 10.11.183.0/24"));
    }
}
