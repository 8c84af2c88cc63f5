//! STUB for the lead's branch only: helper B's classify module replaces it.
use ipnet::{Ipv4Net, Ipv6Net};

use crate::abi;
use crate::policy::{Rule, RuleError};

pub struct Compiled {
    pub plan: abi::Plan,
    pub src_v4: Vec<(Ipv4Net, u32)>,
    pub dst_v4: Vec<(Ipv4Net, u32)>,
    pub src_v6: Vec<(Ipv6Net, u32)>,
    pub dst_v6: Vec<(Ipv6Net, u32)>,
    pub sport: Option<Vec<u32>>,
    pub dport: Option<Vec<u32>>,
    pub proto: Option<Vec<u32>>,
    pub icmp: Option<Vec<u32>>,
    pub flags: Option<Vec<u32>>,
    pub ifaces: Vec<(u32, u8)>,
    pub entries: Vec<(abi::ClassKey, u32)>,
    pub shadowed: Vec<(usize, usize)>,
    pub never_matches: Vec<usize>,
}

impl Compiled {
    pub fn new(
        _rules: &[Rule],
        _iface_of: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<Compiled, RuleError> {
        unimplemented!()
    }
}
