//! How a message echoes the user's input: quoted, cut short, with invisible
//! characters escaped.

/// How much of the user's input a message echoes, in characters.
const SHOWN_CHARS: usize = 80;

/// `text` as a message echoes it: in quotes, cut to about 80 characters,
/// with NUL, control and other invisible characters escaped (`\0`, `\u{1b}`,
/// `\u{200b}`), so that what the user sees is what the file holds.
pub fn quote(text: &str) -> String {
    let mut shown = String::from("'");
    let mut chars = 0;
    for c in text.chars() {
        if chars >= SHOWN_CHARS {
            shown.push('…');
            break;
        }
        let before = shown.len();
        match c {
            '\'' | '"' | ' ' => shown.push(c),
            c if c.is_whitespace() && !c.is_ascii() => shown.extend(c.escape_unicode()),
            c => shown.extend(c.escape_debug()),
        }
        chars += shown[before..].chars().count();
    }
    shown.push('\'');
    shown
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::policy::{parse_flags, parse_lines};

    #[test]
    fn echoed_input_is_cut_short() {
        let huge = "A".repeat(10_000_000);
        let text = format!("deny src {huge}\n");
        let err = parse_lines(&text, Path::new("fw.rules")).unwrap_err().0;
        assert!(
            err.len() < 400,
            "a {}-byte message: {}…",
            err.len(),
            &err[..200]
        );
        assert!(
            err.contains(&format!("'deny src {}…'", "A".repeat(71))),
            "{err}"
        );
        // A short rule is shown whole.
        let err = parse_lines("deny src x\n", Path::new("fw.rules"))
            .unwrap_err()
            .0;
        assert!(err.contains("bad rule 'deny src x'"), "{err}");
        let err = parse_flags(&[format!("deny tcp dport {huge}")])
            .unwrap_err()
            .0;
        assert!(err.len() < 400, "a {}-byte message", err.len());
    }
}
