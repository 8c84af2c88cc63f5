//! A notice as `-j` writes it (a JSON object a line): the fields the
//! end-to-end tests look at.

#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub proto: String,
    pub src: String,
    pub dst: String,
    pub dport: Option<u16>,
    pub verdict: String,
    /// The deciding rule's id; None for the default.
    pub rule: Option<u32>,
    /// Set in a dry run: the verdict was not enforced.
    pub dry_run: bool,
    /// An ICMP or ICMPv6 echo request.
    pub echo_request: bool,
}

impl Line {
    /// The notice on `line`; `None` for anything that is not one.
    pub fn parse(line: &str) -> Option<Line> {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_string();
        let number = |key: &str| value[key].as_u64();
        let proto = text("proto");
        let echo_request = matches!(
            (proto.as_str(), number("icmp_type")),
            ("ICMP", Some(8)) | ("ICMPv6", Some(128))
        );
        Some(Line {
            src: text("src"),
            dst: text("dst"),
            dport: number("dport").and_then(|port| port.try_into().ok()),
            verdict: text("verdict"),
            rule: number("rule").and_then(|id| id.try_into().ok()),
            dry_run: value["dry_run"].as_bool().unwrap_or(false),
            echo_request,
            proto,
        })
    }
}
