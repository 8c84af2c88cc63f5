//! A systemd unit file read the way systemd reads the few settings the tests
//! look at: [Service] assignments, ExecStart's words, `%` specifiers and
//! `${VAR}` from Environment=.

use std::collections::BTreeSet;

pub struct Unit {
    /// Every assignment of [Service], in order (a key may come back).
    service: Vec<(String, String)>,
}

impl Unit {
    pub fn read(path: &str) -> Unit {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        Unit::parse(&text)
    }

    pub fn parse(text: &str) -> Unit {
        let mut service = Vec::new();
        let mut section = String::new();
        let mut pending = String::new();
        for line in text.lines() {
            let line = line.trim();
            if pending.is_empty() && (line.is_empty() || line.starts_with(['#', ';'])) {
                continue;
            }
            // A trailing backslash continues the line.
            if let Some(part) = line.strip_suffix('\\') {
                pending.push_str(part);
                pending.push(' ');
                continue;
            }
            pending.push_str(line);
            let line = std::mem::take(&mut pending);
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_string();
            } else if section == "Service" {
                let (key, value) = line
                    .split_once('=')
                    .unwrap_or_else(|| panic!("not KEY=VALUE in [Service]: {line}"));
                service.push((key.trim().to_string(), value.trim().to_string()));
            }
        }
        Unit { service }
    }

    /// The value of `key`'s last assignment.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values(key).last().copied()
    }

    /// The values of every assignment of `key`, in order.
    pub fn values(&self, key: &str) -> Vec<&str> {
        self.service
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether boolean `key` is set to true (systemd's spellings of it).
    pub fn yes(&self, key: &str) -> bool {
        matches!(self.value(key), Some("yes" | "true" | "on" | "1"))
    }

    /// The capabilities `key` lists, as setpriv names them: `CAP_BPF` is
    /// `bpf`. Assignments add up, as systemd's do.
    pub fn capabilities(&self, key: &str) -> BTreeSet<String> {
        self.values(key)
            .into_iter()
            .flat_map(str::split_whitespace)
            .map(|cap| {
                assert!(!cap.starts_with('~'), "{key}: a deny list ({cap})");
                cap.strip_prefix("CAP_")
                    .unwrap_or_else(|| panic!("{key}: not a capability: {cap}"))
                    .to_ascii_lowercase()
            })
            .collect()
    }

    /// ExecStart's words for instance `instance`, specifiers and variables
    /// resolved. Only what this unit uses is understood: plain words,
    /// `%i`, `%I`, `%%` and whole-word `${VAR}`.
    pub fn exec_start(&self, instance: &str) -> Vec<String> {
        let commands = self.values("ExecStart");
        assert_eq!(commands.len(), 1, "one ExecStart: {commands:?}");
        let command = commands[0];
        assert!(
            !command.contains(['"', '\'', ';']),
            "quotes or `;` in ExecStart, which this reader does not take: {command}"
        );
        let environment = self.environment();
        command
            .split_whitespace()
            .map(|word| {
                let word = specifiers(word, instance);
                match word.strip_prefix("${").and_then(|w| w.strip_suffix('}')) {
                    Some(name) => environment
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| panic!("${{{name}}} is not in Environment=")),
                    None => word,
                }
            })
            .collect()
    }

    /// The system calls SystemCallFilter= lets through, its groups (`@…`)
    /// expanded by `systemd-analyze syscall-filter`: the first assignment
    /// says whether it is an allow list; in one, each later entry adds
    /// (plain) or removes (`~`) in turn. `None`: no filter.
    pub fn allowed_syscalls(&self) -> Option<BTreeSet<String>> {
        let filters = self.values("SystemCallFilter");
        assert!(
            !filters.first()?.starts_with('~'),
            "a deny list: this reader takes allow lists only"
        );
        // What systemd permits in any allow list (systemd.exec(5)).
        let mut allowed: BTreeSet<String> = [
            "execve",
            "exit",
            "exit_group",
            "getrlimit",
            "rt_sigreturn",
            "sigreturn",
        ]
        .map(String::from)
        .into();
        for filter in filters {
            let (remove, names) = match filter.strip_prefix('~') {
                Some(names) => (true, names),
                None => (false, filter),
            };
            for call in names.split_whitespace().flat_map(expand_syscalls) {
                if remove {
                    allowed.remove(&call);
                } else {
                    allowed.insert(call);
                }
            }
        }
        Some(allowed)
    }

    /// The address families RestrictAddressFamilies= allows (an allow list).
    pub fn address_families(&self) -> BTreeSet<String> {
        let families = self.values("RestrictAddressFamilies");
        assert!(
            families.iter().all(|f| !f.starts_with('~')),
            "a deny list: this reader takes allow lists only"
        );
        families
            .into_iter()
            .flat_map(str::split_whitespace)
            .map(String::from)
            .collect()
    }

    /// Environment='s VAR=value pairs (a later one wins).
    fn environment(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for assignment in self
            .values("Environment")
            .iter()
            .flat_map(|v| v.split_whitespace())
        {
            let (name, value) = assignment
                .split_once('=')
                .unwrap_or_else(|| panic!("Environment: not VAR=value: {assignment}"));
            pairs.retain(|(k, _)| k != name);
            pairs.push((name.to_string(), value.to_string()));
        }
        pairs
    }
}

/// A system call's name as itself, a group (`@system-service`) as the
/// calls in it, its groups expanded in turn.
fn expand_syscalls(name: &str) -> Vec<String> {
    if !name.starts_with('@') {
        return vec![name.to_string()];
    }
    let out = std::process::Command::new("systemd-analyze")
        .args(["syscall-filter", name])
        .output()
        .expect("running systemd-analyze syscall-filter (package systemd)");
    assert!(
        out.status.success(),
        "systemd-analyze syscall-filter {name}"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1) // the group's own name
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .flat_map(expand_syscalls)
        .collect()
}

/// `word` with %i / %I (the instance; an interface name needs no
/// escaping) and %% resolved.
fn specifiers(word: &str, instance: &str) -> String {
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('i' | 'I') => out.push_str(instance),
            Some('%') => out.push('%'),
            other => panic!("specifier %{other:?} in {word}: not understood here"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_systemd_reads() {
        let unit = Unit::parse(
            "[Unit]\nDescription=x %i\n[Service]\n# a comment\nEnvironment=A=1 B=2\n\
             Environment=B=3\nExecStart=/bin/x -i %i \\\n  --at ${B} 100%%\n\
             AmbientCapabilities=CAP_BPF\nAmbientCapabilities=CAP_NET_ADMIN\nNoNewPrivileges=yes\n",
        );
        assert_eq!(
            unit.exec_start("eth1"),
            ["/bin/x", "-i", "eth1", "--at", "3", "100%"]
        );
        let caps: Vec<String> = unit
            .capabilities("AmbientCapabilities")
            .into_iter()
            .collect();
        assert_eq!(caps, ["bpf", "net_admin"]);
        assert!(unit.yes("NoNewPrivileges"));
        assert_eq!(unit.value("Description"), None, "[Unit] is not [Service]");
    }
}
