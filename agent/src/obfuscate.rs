//! Opt-in networking obfuscation (agent config `"obfuscation": ["networking"]`), the
//! counterpart of the Insights Operator's `dataReporting.obfuscation: [networking]`
//! (openshift/insights-operator `pkg/anonymization/network_anonymizer.go`).
//!
//! The archive writer passes every record (data and name) through one [`Obfuscator`] per
//! archive, so no host function and no module can bypass it. It replaces:
//! - the cluster base domain (`dnses.config.openshift.io/cluster` `spec.baseDomain`) with
//!   `<CLUSTER_BASE_DOMAIN>`, as IO does;
//! - every IPv4 and IPv6 address with a stand-in, the same one for the same address within the
//!   archive: the n-th distinct IPv4 address becomes `240.0.0.n` counted on through the
//!   reserved 240.0.0.0/4 (IO keeps an address inside the cluster networks in its network and
//!   sends any other as `0.0.0.0`; the host does not read the network configuration, so it
//!   gives every address a distinct stand-in nobody routes), and the n-th IPv6 address
//!   `2001:db8::n` (documentation prefix; IO leaves IPv6 alone).
//!
//! Like IO, a network in CIDR form (`10.128.0.0/14`) is kept: it describes the cluster's
//! layout, not a host. Loopback and unspecified addresses (`127.0.0.0/8`, `0.0.0.0`, `::1`,
//! `::`) are kept too. The translation table holds at most [`MAX_TRANSLATIONS`] addresses;
//! further new ones become `0.0.0.0` or `::`, so memory stays bounded whatever the records hold.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

/// What the cluster base domain becomes (IO's `ClusterBaseDomainPlaceholder`).
pub const BASE_DOMAIN_PLACEHOLDER: &str = "<CLUSTER_BASE_DOMAIN>";

/// Most distinct addresses given their own stand-in in one archive.
pub const MAX_TRANSLATIONS: usize = 1 << 16;

#[derive(Debug, Default)]
struct Table {
    v4: HashMap<Ipv4Addr, Ipv4Addr>,
    v6: HashMap<Ipv6Addr, Ipv6Addr>,
}

impl Table {
    fn v4(&mut self, ip: Ipv4Addr) -> Ipv4Addr {
        if ip.is_loopback() || ip.is_unspecified() {
            return ip;
        }
        let n = self.v4.len() as u32 + 1;
        if let Some(sub) = self.v4.get(&ip) {
            return *sub;
        }
        if self.v4.len() >= MAX_TRANSLATIONS {
            return Ipv4Addr::UNSPECIFIED;
        }
        let sub = Ipv4Addr::from(u32::from(Ipv4Addr::new(240, 0, 0, 0)) + n);
        self.v4.insert(ip, sub);
        sub
    }

    fn v6(&mut self, ip: Ipv6Addr) -> Ipv6Addr {
        if ip.is_loopback() || ip.is_unspecified() {
            return ip;
        }
        if let Some(v4) = ip.to_ipv4_mapped() {
            return self.v4(v4).to_ipv6_mapped();
        }
        let n = self.v6.len() as u128 + 1;
        if let Some(sub) = self.v6.get(&ip) {
            return *sub;
        }
        if self.v6.len() >= MAX_TRANSLATIONS {
            return Ipv6Addr::UNSPECIFIED;
        }
        let sub = Ipv6Addr::from(u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)) + n);
        self.v6.insert(ip, sub);
        sub
    }
}

/// One archive's obfuscation: the base domain (if known) and the address translations so far.
#[derive(Debug)]
pub struct Obfuscator {
    base_domain: Option<String>,
    table: Mutex<Table>,
}

impl Obfuscator {
    /// An obfuscator replacing `base_domain` (when given and plausible: at least one `.`, only
    /// letters, digits, `-` and `.`) and every address.
    pub fn new(base_domain: Option<&str>) -> Self {
        let base_domain = base_domain.map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase()).filter(|d| plausible_domain(d));
        Obfuscator { base_domain, table: Mutex::default() }
    }

    /// The base domain being replaced, if any.
    pub fn base_domain(&self) -> Option<&str> {
        self.base_domain.as_deref()
    }

    /// `data` with the base domain and every address replaced.
    pub fn bytes(&self, data: &[u8]) -> Vec<u8> {
        let data = match &self.base_domain {
            Some(d) => replace_all(data, d.as_bytes(), BASE_DOMAIN_PLACEHOLDER.as_bytes()),
            None => data.to_vec(),
        };
        let mut table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        addresses(&data, &mut table)
    }

    /// A record name with the same replacements (IO replaces the base domain in names too).
    pub fn name(&self, name: &str) -> String {
        String::from_utf8(self.bytes(name.as_bytes())).unwrap_or_else(|_| name.to_owned())
    }
}

fn plausible_domain(d: &str) -> bool {
    d.len() >= 3 && d.contains('.') && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn replace_all(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

fn is_hex_or_colon(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':'
}

/// Whether an address ending at `end` is followed by a prefix length (`/14`): a network.
fn cidr_follows(data: &[u8], end: usize) -> bool {
    data.get(end) == Some(&b'/') && data.get(end + 1).is_some_and(u8::is_ascii_digit)
}

/// Every address in `data` replaced through `table`.
fn addresses(data: &[u8], table: &mut Table) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        let prev = if i == 0 { None } else { Some(data[i - 1]) };
        let boundary = prev.is_none_or(|p| !(p.is_ascii_alphanumeric() || p == b':' || p == b'.' || p == b'_'));
        if boundary && is_hex_or_colon(data[i]) && let Some((end, ip)) = ipv6_at(data, i) {
            out.extend_from_slice(table.v6(ip).to_string().as_bytes());
            i = end;
            continue;
        }
        let v4_start = prev.is_none_or(|p| !(p.is_ascii_digit() || p == b'.')) && data[i].is_ascii_digit();
        if v4_start && let Some((end, ip)) = ipv4_at(data, i) {
            out.extend_from_slice(table.v4(ip).to_string().as_bytes());
            i = end;
            continue;
        }
        out.push(data[i]);
        i += 1;
    }
    out
}

/// An IPv4 address starting at `i` (dotted quad, each part 0–255, not followed by more
/// digits, another `.part` or a prefix length).
fn ipv4_at(data: &[u8], i: usize) -> Option<(usize, Ipv4Addr)> {
    let mut parts = [0u8; 4];
    let mut pos = i;
    for (n, part) in parts.iter_mut().enumerate() {
        if n > 0 {
            if data.get(pos) != Some(&b'.') {
                return None;
            }
            pos += 1;
        }
        let start = pos;
        while pos < data.len() && data[pos].is_ascii_digit() && pos - start < 4 {
            pos += 1;
        }
        let digits = &data[start..pos];
        if digits.is_empty() || digits.len() > 3 {
            return None;
        }
        *part = std::str::from_utf8(digits).ok()?.parse::<u16>().ok().filter(|v| *v <= 255)? as u8;
    }
    let next_is_part = data.get(pos) == Some(&b'.') && data.get(pos + 1).is_some_and(u8::is_ascii_digit);
    if data.get(pos).is_some_and(u8::is_ascii_digit) || next_is_part || cidr_follows(data, pos) {
        return None;
    }
    Some((pos, Ipv4Addr::from(parts)))
}

/// An IPv6 address starting at `i`: the longest run of hex digits, `:` and `.` holding at
/// least two `:` that parses, followed by no letter, digit or prefix length.
fn ipv6_at(data: &[u8], i: usize) -> Option<(usize, Ipv6Addr)> {
    let mut end = i;
    while end < data.len() && (is_hex_or_colon(data[end]) || data[end] == b'.') && end - i < 64 {
        end += 1;
    }
    let mut run = &data[i..end];
    while run.last().is_some_and(|b| *b == b'.' || (*b == b':' && !run.ends_with(b"::"))) {
        run = &run[..run.len() - 1];
    }
    if run.iter().filter(|b| **b == b':').count() < 2 || run.len() < 3 {
        return None;
    }
    let end = i + run.len();
    if data.get(end).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') || cidr_follows(data, end) {
        return None;
    }
    let ip: Ipv6Addr = std::str::from_utf8(run).ok()?.parse().ok()?;
    Some((end, ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ob(text: &str, o: &Obfuscator) -> String {
        String::from_utf8(o.bytes(text.as_bytes())).unwrap()
    }

    #[test]
    fn addresses_get_consistent_stand_ins() {
        let o = Obfuscator::new(None);
        let out = ob(r#"{"a":"10.0.0.1","b":"10.0.0.2","c":"10.0.0.1:6443","d":"https://[fd00::1]:443","e":"fd00::1"}"#, &o);
        assert_eq!(out, r#"{"a":"240.0.0.1","b":"240.0.0.2","c":"240.0.0.1:6443","d":"https://[2001:db8::1]:443","e":"2001:db8::1"}"#);
        // Same table across records of the archive.
        assert_eq!(ob("ip 10.0.0.2.", &o), "ip 240.0.0.2.");
    }

    #[test]
    fn networks_versions_and_loopback_stay() {
        let o = Obfuscator::new(None);
        for kept in ["10.128.0.0/14", "fd01::/48", "127.0.0.1", "0.0.0.0", "::1", "v1.2.3.4.5", "1.2.3.4.5", "12:30:00", "aa:bb:cc:dd:ee:ff", "256.1.1.1", "sha256:abcd"] {
            assert_eq!(ob(kept, &o), kept, "{kept}");
        }
        assert_eq!(ob("node-10.0.0.9", &o), "node-240.0.0.1");
        assert_eq!(ob("::ffff:10.0.0.9", &o), "::ffff:240.0.0.1");
    }

    #[test]
    fn the_base_domain_becomes_the_placeholder_in_data_and_names() {
        let o = Obfuscator::new(Some("Corp.Example.com."));
        assert_eq!(o.base_domain(), Some("corp.example.com"));
        assert_eq!(ob(r#"{"domain":"apps.corp.example.com"}"#, &o), r#"{"domain":"apps.<CLUSTER_BASE_DOMAIN>"}"#);
        assert_eq!(o.name("config/x/api.corp.example.com.json"), "config/x/api.<CLUSTER_BASE_DOMAIN>.json");
        assert!(Obfuscator::new(Some("bad\"domain.com")).base_domain().is_none());
        assert!(Obfuscator::new(Some("local")).base_domain().is_none());
    }

    #[test]
    fn the_table_is_bounded() {
        let o = Obfuscator::new(None);
        let mut t = o.table.lock().unwrap();
        for n in 0..MAX_TRANSLATIONS as u32 {
            t.v4(Ipv4Addr::from(0x0a00_0000 + n));
        }
        assert_eq!(t.v4(Ipv4Addr::new(11, 0, 0, 1)), Ipv4Addr::UNSPECIFIED);
        assert_eq!(t.v4(Ipv4Addr::new(10, 0, 0, 0)), Ipv4Addr::new(240, 0, 0, 1));
    }
}
