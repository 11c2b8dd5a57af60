//! Outbound connections (`../shared/docs/security.md` §11): the one place
//! that decides where the gateway may connect on a caller's or an
//! integration's behalf (direct PostgreSQL URIs, the D1 REST API, and every
//! later outbound client: S3 endpoints, webhooks, sinks, provider APIs).
//!
//! - A host is resolved **once** ([`OutboundPolicy::resolve`]): an IP
//!   literal (including the legacy IPv4 spellings `2130706433`,
//!   `0177.0.0.1`, `0x7f.1` that `inet_aton` and URL parsers accept) is
//!   parsed here, a name goes through `tokio::net::lookup_host`.
//! - Every resolved address is classified ([`classify`]); only public
//!   unicast addresses pass, unless `ATHENA_OUTBOUND_ALLOW` lists them.
//!   Loopback, private (RFC 1918, `fc00::/7`), link-local (`169.254/16`,
//!   `fe80::/10`), shared/CGNAT (`100.64/10`), unspecified (`0/8`, `::`),
//!   multicast, broadcast, documentation, other reserved ranges and
//!   cloud-metadata addresses are refused, also when written as IPv4-mapped,
//!   IPv4-compatible, NAT64 or 6to4 IPv6.
//! - The caller connects to exactly the checked addresses
//!   ([`OutboundPolicy::connect`], or the hyper [`Connector`]): the name is
//!   never resolved again between the check and the connection, so DNS
//!   rebinding cannot move a checked connection to another address.
//!
//! `ATHENA_OUTBOUND_ALLOW` ([`parse_allow_list`]) is a comma-separated list
//! of entries, each one of:
//!
//! | entry | opens |
//! |---|---|
//! | `10.0.0.0/8`, `fd00::/8` (CIDR) | every port of those addresses |
//! | `10.1.2.3`, `::1`, `[::1]` (one address) | every port of that address |
//! | `10.1.2.3:5432`, `[::1]:5432` | that address and port only |
//! | `db.internal:5432` | that host name (as the caller writes it, case-insensitive) and port, whatever it resolves to |
//!
//! Cloud-metadata addresses (`169.254.169.254`, `169.254.170.2`,
//! `100.100.100.200`, `fd00:ec2::254`) are opened only by an entry naming
//! that exact address (a CIDR or a host name never opens them).

use crate::http::{ApiError, Code};
use bytes::Bytes;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

/// Longest wait for a name to resolve.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Most addresses kept from one resolution (each is tried in turn).
const MAX_ADDRESSES: usize = 8;

/// What kind of destination an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Globally routable unicast: allowed.
    Public,
    Loopback,
    /// RFC 1918, IPv6 unique local (`fc00::/7`), site-local, local NAT64.
    Private,
    LinkLocal,
    /// `100.64.0.0/10` (carrier-grade NAT).
    Shared,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Instance-metadata services of cloud providers.
    Metadata,
    /// Anything else that is not public unicast (IETF protocol
    /// assignments, benchmarking, `240/4`, Teredo, unassigned IPv6, …).
    Reserved,
}

impl Class {
    pub fn describe(self) -> &'static str {
        match self {
            Class::Public => "a public address",
            Class::Loopback => "a loopback address",
            Class::Private => "a private-network address",
            Class::LinkLocal => "a link-local address",
            Class::Shared => "a shared (carrier-grade NAT) address",
            Class::Unspecified => "the unspecified address",
            Class::Multicast => "a multicast address",
            Class::Broadcast => "the broadcast address",
            Class::Documentation => "a documentation address",
            Class::Metadata => "a cloud-metadata address",
            Class::Reserved => "a reserved address",
        }
    }
}

const METADATA_V4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, OCI, OpenStack
    Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task metadata
    Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
];
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)];

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    u128::from(ip) & mask == u128::from(net) & mask
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    if METADATA_V4.contains(&ip) {
        return Class::Metadata;
    }
    let ranges: &[([u8; 4], u32, Class)] = &[
        ([0, 0, 0, 0], 8, Class::Unspecified),
        ([10, 0, 0, 0], 8, Class::Private),
        ([100, 64, 0, 0], 10, Class::Shared),
        ([127, 0, 0, 0], 8, Class::Loopback),
        ([169, 254, 0, 0], 16, Class::LinkLocal),
        ([172, 16, 0, 0], 12, Class::Private),
        ([192, 0, 0, 0], 24, Class::Reserved),
        ([192, 0, 2, 0], 24, Class::Documentation),
        ([192, 88, 99, 0], 24, Class::Reserved),
        ([192, 168, 0, 0], 16, Class::Private),
        ([198, 18, 0, 0], 15, Class::Reserved),
        ([198, 51, 100, 0], 24, Class::Documentation),
        ([203, 0, 113, 0], 24, Class::Documentation),
        ([224, 0, 0, 0], 4, Class::Multicast),
        ([255, 255, 255, 255], 32, Class::Broadcast),
        ([240, 0, 0, 0], 4, Class::Reserved),
    ];
    ranges
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map_or(Class::Public, |(_, _, class)| *class)
}

/// The class of an IPv4 address embedded in IPv6: its own when not public,
/// else `public` (a translation that really reaches the public address).
fn embedded(v4: Ipv4Addr, public: Class) -> Class {
    match classify_v4(v4) {
        Class::Public => public,
        other => other,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if METADATA_V6.contains(&ip) {
        return Class::Metadata;
    }
    if ip.is_unspecified() {
        return Class::Unspecified;
    }
    if ip.is_loopback() {
        return Class::Loopback;
    }
    let bits = u128::from(ip);
    let low_v4 = Ipv4Addr::from(bits as u32);
    let net = |s: &str| s.parse::<Ipv6Addr>().expect("valid network literal");
    // IPv4-compatible (`::a.b.c.d`, deprecated) and IPv4-translated
    // (`::ffff:0:a.b.c.d`): nothing legitimate lives there.
    if in_v6(ip, Ipv6Addr::UNSPECIFIED, 96) || in_v6(ip, net("::ffff:0:0:0"), 96) {
        return embedded(low_v4, Class::Reserved);
    }
    // NAT64 well-known prefix: the embedded IPv4 address is the destination.
    if in_v6(ip, net("64:ff9b::"), 96) {
        return embedded(low_v4, Class::Public);
    }
    // 6to4: the IPv4 address in bits 16..48 is the relay destination.
    if in_v6(ip, net("2002::"), 16) {
        return embedded(Ipv4Addr::from((bits >> 80) as u32), Class::Public);
    }
    let ranges: &[(&str, u32, Class)] = &[
        ("64:ff9b:1::", 48, Class::Private),
        ("100::", 64, Class::Reserved),
        ("2001:db8::", 32, Class::Documentation),
        ("2001::", 23, Class::Reserved),
        ("3fff::", 20, Class::Documentation),
        ("fc00::", 7, Class::Private),
        ("fe80::", 10, Class::LinkLocal),
        ("fec0::", 10, Class::Private),
        ("ff00::", 8, Class::Multicast),
    ];
    if let Some((_, _, class)) = ranges
        .iter()
        .find(|(n, prefix, _)| in_v6(ip, net(n), *prefix))
    {
        return *class;
    }
    // Only 2000::/3 is allocated global unicast.
    if in_v6(ip, net("2000::"), 3) {
        Class::Public
    } else {
        Class::Reserved
    }
}

/// The class of an address (IPv4-mapped IPv6 as its IPv4 address).
pub fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// `::ffff:a.b.c.d` → `a.b.c.d`; every other address unchanged. The
/// gateway connects to (and allow-lists) the canonical form.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// An IPv4 address in any spelling `inet_aton` (and URL parsers, which
/// follow it) accept: one to four parts, each decimal, octal (`0` prefix)
/// or hexadecimal (`0x` prefix), the last filling the remaining bytes:
/// `2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`.
pub fn legacy_ipv4(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for part in &parts {
        let (digits, radix) =
            if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
                (hex, 16)
            } else if part.len() > 1 && part.starts_with('0') {
                (&part[1..], 8)
            } else {
                (*part, 10)
            };
        if digits.is_empty() && radix != 16 {
            return None;
        }
        let value = if digits.is_empty() {
            0 // `0x` alone is zero for inet_aton
        } else if digits.chars().all(|c| c.is_digit(radix)) {
            u64::from_str_radix(digits, radix).ok()?
        } else {
            return None;
        };
        values.push(value);
    }
    let (last, init) = values.split_last()?;
    if init.iter().any(|v| *v > 255) {
        return None;
    }
    let last_bits = 8 * (4 - init.len() as u32);
    if last_bits < 64 && *last >= 1u64 << last_bits {
        return None;
    }
    let mut n: u64 = *last;
    for (i, v) in init.iter().enumerate() {
        n |= v << (8 * (3 - i as u32));
    }
    Some(Ipv4Addr::from(n as u32))
}

/// A host as written (brackets allowed around IPv6) parsed as an address:
/// strict IPv4/IPv6 first, then the legacy IPv4 spellings.
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>()
        .ok()
        .or_else(|| legacy_ipv4(bare).map(IpAddr::V4))
}

/// A host name as compared with allow-list entries: lowercase, without
/// the trailing root dot.
fn normal_name(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// One `ATHENA_OUTBOUND_ALLOW` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    /// `addr/prefix`, or one address (full prefix): every port.
    Net { addr: IpAddr, prefix: u8 },
    /// `ip:port`, `[ipv6]:port`: that address and port.
    Addr { ip: IpAddr, port: u16 },
    /// `name:port`: that host name, as the caller writes it, and port.
    Name { host: String, port: u16 },
}

impl Allow {
    /// Whether this entry opens `addr` (canonical) reached through `host`.
    fn opens(&self, host: &str, addr: SocketAddr, class: Class) -> bool {
        let ip = addr.ip();
        match self {
            Allow::Net { addr: net, prefix } => {
                let full = if net.is_ipv4() { 32 } else { 128 };
                if class == Class::Metadata && *prefix != full {
                    return false;
                }
                match (net, ip) {
                    (IpAddr::V4(n), IpAddr::V4(a)) => in_v4(a, n.octets(), u32::from(*prefix)),
                    (IpAddr::V6(n), IpAddr::V6(a)) => in_v6(a, *n, u32::from(*prefix)),
                    _ => false,
                }
            }
            Allow::Addr { ip: allowed, port } => *allowed == ip && *port == addr.port(),
            Allow::Name { host: name, port } => {
                class != Class::Metadata && *port == addr.port() && *name == normal_name(host)
            }
        }
    }
}

impl std::fmt::Display for Allow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Allow::Net { addr, prefix } => write!(f, "{addr}/{prefix}"),
            Allow::Addr { ip, port } => write!(f, "{}", SocketAddr::new(*ip, *port)),
            Allow::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

fn parse_port(p: &str, entry: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{entry:?}: {p:?} is not a port number (1-65535)"))
}

/// Parses `ATHENA_OUTBOUND_ALLOW` (see the module documentation). Empty
/// entries are ignored; anything else that is not an entry is an error
/// naming it.
pub fn parse_allow_list(list: &str) -> Result<Vec<Allow>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(parse_entry)
        .collect()
}

fn parse_entry(entry: &str) -> Result<Allow, String> {
    let strict = |s: &str| s.parse::<IpAddr>().ok().map(canonical);
    // CIDR
    if let Some((addr, prefix)) = entry.split_once('/') {
        let addr = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr);
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{entry:?}: {addr:?} is not an IP address"))?;
        if canonical(addr) != addr {
            return Err(format!(
                "{entry:?}: write IPv4 networks in dotted-decimal form"
            ));
        }
        let full = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= full)
            .ok_or_else(|| format!("{entry:?}: the prefix length must be 0-{full}"))?;
        return Ok(Allow::Net { addr, prefix });
    }
    // `[v6]` or `[v6]:port`
    if let Some(rest) = entry.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{entry:?}: missing `]`"))?;
        let ip =
            strict(addr).ok_or_else(|| format!("{entry:?}: {addr:?} is not an IPv6 address"))?;
        return match after {
            "" => Ok(Allow::Net {
                addr: ip,
                prefix: if ip.is_ipv4() { 32 } else { 128 },
            }),
            p => {
                let p = p
                    .strip_prefix(':')
                    .ok_or_else(|| format!("{entry:?}: unexpected text after `]`"))?;
                Ok(Allow::Addr {
                    ip,
                    port: parse_port(p, entry)?,
                })
            }
        };
    }
    // A bare address (IPv6 without brackets has several colons).
    if let Some(ip) = strict(entry) {
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        return Ok(Allow::Net { addr: ip, prefix });
    }
    let (host, port) = entry.rsplit_once(':').ok_or_else(|| {
        format!("{entry:?}: a host name needs a port (name:port); addresses and CIDRs may omit it")
    })?;
    if host.contains(':') {
        return Err(format!(
            "{entry:?}: write an IPv6 address with a port as [address]:port"
        ));
    }
    let port = parse_port(port, entry)?;
    if let Some(ip) = strict(host) {
        return Ok(Allow::Addr { ip, port });
    }
    if legacy_ipv4(host).is_some() {
        return Err(format!(
            "{entry:?}: write the address in dotted-decimal form"
        ));
    }
    let name = normal_name(host);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!("{entry:?}: {host:?} is not a host name"));
    }
    Ok(Allow::Name { host: name, port })
}

/// Why an outbound connection was not made. The text never names an
/// address a host name resolved to (no DNS oracle); it is safe to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundError {
    /// The destination is not a permitted address: nothing was opened.
    Refused {
        /// The class of the (first) refused address.
        class: Class,
        /// The host was an address literal (else a name that resolved to
        /// refused addresses only).
        literal: bool,
    },
    /// The name did not resolve (or to no address).
    Unresolved,
    /// Every checked address refused or failed the connection.
    Unreachable(String),
    /// No connection within the time allowed.
    TimedOut,
    /// The URL is not one this client can use (scheme, missing host).
    BadUrl(String),
}

pub const REFUSED_RANGES: &str = "loopback, private, link-local, shared (CGNAT), unspecified, \
     multicast, broadcast, documentation, reserved and cloud-metadata addresses";

impl std::fmt::Display for OutboundError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutboundError::Refused { class, literal } => {
                if *literal {
                    write!(f, "the destination is {}", class.describe())?;
                } else {
                    f.write_str("the destination's host name resolves only to refused addresses")?;
                }
                write!(
                    f,
                    "; the gateway does not connect to {REFUSED_RANGES} unless ATHENA_OUTBOUND_ALLOW lists them"
                )
            }
            OutboundError::Unresolved => {
                f.write_str("the destination's host name does not resolve")
            }
            OutboundError::Unreachable(why) => write!(f, "the destination is unreachable ({why})"),
            OutboundError::TimedOut => f.write_str("the destination did not answer in time"),
            OutboundError::BadUrl(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for OutboundError {}

impl OutboundError {
    /// The answer for a caller-chosen destination: refused → 403
    /// `forbidden`; unresolved, unreachable or timed out → 503 (`code`)
    /// with `Retry-After`.
    pub fn into_api(self, what: &str, code: Code) -> ApiError {
        match self {
            OutboundError::Refused { .. } => ApiError::forbidden(format!("{what}: {self}")),
            OutboundError::BadUrl(_) => ApiError::invalid_parameter(what, &self),
            _ => ApiError::unavailable(code, format!("{what}: {self}")),
        }
    }

    /// The domain error for a caller-chosen destination: refused → 403;
    /// a malformed URL → 400 naming `what`; unresolved, unreachable or
    /// timed out → 503 with the reason.
    pub fn into_domain(self, what: &str) -> crate::domain::DomainError {
        use crate::domain::DomainError;
        match self {
            OutboundError::Refused { .. } => DomainError::Forbidden(format!("{what}: {self}")),
            OutboundError::BadUrl(_) => DomainError::invalid_field(what, &self),
            _ => DomainError::ServiceUnavailable(format!("{what}: {self}")),
        }
    }

    /// Finds an outbound error in an error's source chain (e.g. inside a
    /// hyper client error).
    pub fn find<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a OutboundError> {
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(found) = err.downcast_ref::<OutboundError>() {
                return Some(found);
            }
            cur = err.source();
        }
        None
    }
}

/// Where the gateway may connect: the classification above plus the
/// configured allow list.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allow: Vec<Allow>,
}

impl OutboundPolicy {
    pub fn new(allow: Vec<Allow>) -> OutboundPolicy {
        OutboundPolicy { allow }
    }

    /// The policy of `ATHENA_OUTBOUND_ALLOW` (`config.outbound_allow`).
    pub fn from_config(config: &crate::config::Config) -> OutboundPolicy {
        OutboundPolicy::new(config.outbound_allow.clone())
    }

    /// The allow-list entries.
    pub fn allowed(&self) -> &[Allow] {
        &self.allow
    }

    /// Checks one address reached through `host` (as the caller wrote it):
    /// the canonical address to connect to, or the class that refused it.
    pub fn check(&self, host: &str, addr: SocketAddr) -> Result<SocketAddr, Class> {
        let addr = SocketAddr::new(canonical(addr.ip()), addr.port());
        let class = classify(addr.ip());
        if class == Class::Public || self.allow.iter().any(|a| a.opens(host, addr, class)) {
            Ok(addr)
        } else {
            Err(class)
        }
    }

    /// A URL the gateway stores for later use (a service route's
    /// `upstream_url`), checked without connecting: it parses, is `http` or
    /// `https`, names a host, carries no credentials (it is shown back), and
    /// an address written as an IP literal must be one the gateway may
    /// connect to. Host names are resolved and checked when connecting.
    pub fn check_stored_url(&self, raw: &str) -> Result<String, String> {
        let url = url::Url::parse(raw.trim()).map_err(|e| format!("not a valid URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("the scheme must be http or https".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials".into());
        }
        let host = url.host_str().ok_or("must name a host")?;
        let port = url.port_or_known_default().unwrap_or(443);
        if let Some(ip) = ip_literal(host) {
            self.check(host, SocketAddr::new(ip, port))
                .map_err(|class| format!("{} is not allowed", class.describe()))?;
        }
        Ok(url.to_string())
    }

    /// Resolves `host` once and returns the addresses the gateway may
    /// connect to (refused ones dropped; none left → `Refused`). Connect to
    /// these, never to `host` again.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, OutboundError> {
        let (candidates, literal) = match ip_literal(host) {
            Some(ip) => (vec![SocketAddr::new(ip, port)], true),
            None => {
                let name = host.trim_end_matches('.');
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    return Err(OutboundError::BadUrl(
                        "the destination is not a valid host name".into(),
                    ));
                }
                let found =
                    tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
                        .await
                        .map_err(|_| OutboundError::TimedOut)?
                        .map_err(|_| OutboundError::Unresolved)?;
                (found.collect::<Vec<_>>(), false)
            }
        };
        let mut allowed: Vec<SocketAddr> = Vec::new();
        let mut refused = None;
        for addr in candidates {
            match self.check(host, addr) {
                Ok(a) if !allowed.contains(&a) => allowed.push(a),
                Ok(_) => {}
                Err(class) => {
                    tracing::debug!(%host, port, class = class.describe(), "outbound address refused");
                    refused.get_or_insert(class);
                }
            }
        }
        allowed.truncate(MAX_ADDRESSES);
        match (allowed.is_empty(), refused) {
            (false, _) => Ok(allowed),
            (true, Some(class)) => Err(OutboundError::Refused { class, literal }),
            (true, None) => Err(OutboundError::Unresolved),
        }
    }

    /// Resolves and checks `host`, then connects to the first checked
    /// address that answers, each attempt within `timeout`. Returns the
    /// stream and the address it is connected to.
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<(TcpStream, SocketAddr), OutboundError> {
        let addrs = self.resolve(host, port).await?;
        connect_to(&addrs, timeout).await
    }

    /// A hyper-util connector whose every connection goes through this
    /// policy (`http://` only; no redirects are followed by hyper-util's
    /// client).
    pub fn connector(self: &Arc<Self>, connect_timeout: Duration) -> Connector {
        Connector {
            policy: self.clone(),
            connect_timeout,
            https: false,
        }
    }

    /// A connector for `http://` and `https://` destinations, to be
    /// wrapped in a TLS connector (hyper-rustls) that encrypts the
    /// `https://` ones: the TCP connection is still made here, to the
    /// checked address.
    pub fn tls_connector(self: &Arc<Self>, connect_timeout: Duration) -> Connector {
        Connector {
            https: true,
            ..self.connector(connect_timeout)
        }
    }

    /// `tls_connector` inside hyper-rustls (ring, webpki roots): the client
    /// connector of every outbound HTTP(S) client (S3, the auth service).
    pub fn https_connector(
        self: &Arc<Self>,
        connect_timeout: Duration,
    ) -> hyper_rustls::HttpsConnector<Connector> {
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .expect("the ring provider supports the default TLS versions")
            .https_or_http()
            .enable_http1()
            .wrap_connector(self.tls_connector(connect_timeout))
    }
}

/// Connects to the first of `addrs` (already checked) that answers.
pub async fn connect_to(
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<(TcpStream, SocketAddr), OutboundError> {
    let mut last = OutboundError::Unresolved;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, *addr));
            }
            Ok(Err(e)) => last = OutboundError::Unreachable(e.kind().to_string()),
            Err(_) => last = OutboundError::TimedOut,
        }
    }
    Err(last)
}

/// hyper-util connector through an [`OutboundPolicy`].
#[derive(Clone)]
pub struct Connector {
    policy: Arc<OutboundPolicy>,
    connect_timeout: Duration,
    /// Inside a TLS connector: `https://` is accepted too.
    https: bool,
}

type Connecting =
    Pin<Box<dyn Future<Output = Result<hyper_util::rt::TokioIo<TcpStream>, OutboundError>> + Send>>;

impl tower::Service<http::Uri> for Connector {
    type Response = hyper_util::rt::TokioIo<TcpStream>;
    type Error = OutboundError;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let policy = self.policy.clone();
        let timeout = self.connect_timeout;
        let https = self.https;
        Box::pin(async move {
            let default_port = match uri.scheme_str() {
                Some("http") => 80,
                Some("https") if https => 443,
                _ => {
                    return Err(OutboundError::BadUrl(
                        "only http:// destinations are supported by this client".into(),
                    ))
                }
            };
            let host = uri
                .host()
                .ok_or_else(|| OutboundError::BadUrl("the URL has no host".into()))?;
            // `[::1]` in a URI is `::1` to the policy.
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = uri.port_u16().unwrap_or(default_port);
            let (stream, _) = policy.connect(host, port, timeout).await?;
            Ok(hyper_util::rt::TokioIo::new(stream))
        })
    }
}

/// Reads at most `limit` bytes of a response body (more is an error):
/// outbound answers are capped (security.md §11).
pub async fn read_capped<B>(body: B, limit: usize) -> Result<Bytes, String>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt;
    http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                format!("the answer is larger than {limit} bytes")
            } else {
                format!("reading the answer: {e}")
            }
        })
}

tokio::task_local! {
    static CALLER: Option<IpAddr>;
}

/// Runs `work` with `peer` as the caller of outbound work it starts (the
/// server wraps every request in this), for per-caller limits. A plain
/// wrapper, not an `async fn`: the request future is not copied again.
pub fn with_caller<F: Future>(
    peer: Option<SocketAddr>,
    work: F,
) -> tokio::task::futures::TaskLocalFuture<Option<IpAddr>, F> {
    CALLER.scope(peer.map(|p| canonical(p.ip())), work)
}

/// The caller of the request being served, when known.
pub fn caller() -> Option<IpAddr> {
    CALLER.try_with(|ip| *ip).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        ip_literal(s).unwrap_or_else(|| panic!("{s} is not an address"))
    }

    #[test]
    fn classification() {
        use Class::*;
        let cases: &[(&str, Class)] = &[
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("93.184.216.34", Public),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("172.32.0.1", Public),
            ("192.168.1.1", Private),
            ("100.64.0.1", Shared),
            ("100.127.255.255", Shared),
            ("100.128.0.1", Public),
            ("169.254.1.1", LinkLocal),
            ("169.254.169.254", Metadata),
            ("169.254.170.2", Metadata),
            ("100.100.100.200", Metadata),
            ("192.0.0.8", Reserved),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("198.18.0.1", Reserved),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("240.0.0.1", Reserved),
            ("255.255.255.255", Broadcast),
            // IPv6
            ("::", Unspecified),
            ("::1", Loopback),
            ("[::1]", Loopback),
            ("2606:4700:4700::1111", Public),
            ("2001:4860:4860::8888", Public),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fd00:ec2::254", Metadata),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fec0::1", Private),
            ("ff02::1", Multicast),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("2001::1", Reserved),   // Teredo
            ("2001:2::1", Reserved), // benchmarking
            ("100::1", Reserved),
            ("4000::1", Reserved),
            ("64:ff9b:1::1", Private),
            // IPv4 inside IPv6
            ("::ffff:127.0.0.1", Loopback),
            ("[::ffff:127.0.0.1]", Loopback),
            ("::ffff:7f00:1", Loopback),
            ("::ffff:169.254.169.254", Metadata),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:0.0.0.0", Unspecified),
            ("::ffff:8.8.8.8", Public),
            ("::127.0.0.1", Loopback),
            ("::8.8.8.8", Reserved),
            ("::ffff:0:127.0.0.1", Loopback),
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", Metadata),
            ("64:ff9b::8.8.8.8", Public),
            ("2002:7f00:1::", Loopback),
            ("2002:a9fe:a9fe::1", Metadata),
            ("2002:c0a8:101::1", Private),
            ("2002:808:808::1", Public),
            // Legacy IPv4 spellings (inet_aton, WHATWG URL)
            ("2130706433", Loopback),
            ("0177.0.0.1", Loopback),
            ("0x7f.0.0.1", Loopback),
            ("0x7f000001", Loopback),
            ("127.1", Loopback),
            ("0", Unspecified),
            ("0x0", Unspecified),
            ("017700000001", Loopback),
            ("2852039166", Metadata), // 169.254.169.254
            ("0xa9.0xfe.0xa9.0xfe", Metadata),
            ("10.1", Private),
            ("134744072", Public), // 8.8.8.8
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(s, want)| {
                let got = classify(ip(s));
                (got != *want).then(|| format!("{s}: {got:?}, expected {want:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn legacy_spellings() {
        for (s, want) in [
            ("2130706433", Some("127.0.0.1")),
            ("0177.0.0.01", Some("127.0.0.1")),
            ("0x7F.1", Some("127.0.0.1")),
            ("127.0.1", Some("127.0.0.1")),
            ("1.2.3.4", Some("1.2.3.4")),
            ("4294967295", Some("255.255.255.255")),
            ("4294967296", None),
            ("256.1.1.1", None),
            ("1.2.3.256", None),
            ("1.2.65536", None),
            ("1.2.3.4.5", None),
            ("08.1.1.1", None),
            ("0x1g", None),
            ("", None),
            ("1..1", None),
            ("db.example.com", None),
            ("localhost", None),
            ("1e3", None),
        ] {
            assert_eq!(
                legacy_ipv4(s),
                want.map(|w| w.parse::<Ipv4Addr>().unwrap()),
                "{s}"
            );
        }
    }

    #[test]
    fn allow_list_grammar() {
        let list = parse_allow_list(
            " 10.0.0.0/8, fd00::/8 ,127.0.0.1, [::1], ::2, 127.0.0.1:5432, [::1]:6543, \
             DB.Internal.:5432, [::ffff:127.0.0.2]:99, ,",
        )
        .unwrap();
        let shown: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "10.0.0.0/8",
                "fd00::/8",
                "127.0.0.1/32",
                "::1/128",
                "::2/128",
                "127.0.0.1:5432",
                "[::1]:6543",
                "db.internal:5432",
                "127.0.0.2:99",
            ]
        );
        assert_eq!(parse_allow_list("").unwrap(), []);
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "db.internal",
            "db.internal:0",
            "db.internal:70000",
            "db internal:5",
            "[::1",
            "[::1]x",
            "[nope]:1",
            "2130706433:5432",
            "http://x:80",
            "*",
            "x:y",
            "::ffff:127.0.0.2:99",
            "::ffff:10.0.0.0/104",
        ] {
            assert!(parse_allow_list(bad).is_err(), "{bad}");
        }
        let e = parse_allow_list("10.0.0.1, db.internal").unwrap_err();
        assert!(e.contains("db.internal") && e.contains("port"), "{e}");
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn allow_list_opens_exactly_what_it_names() {
        let policy = OutboundPolicy::new(
            parse_allow_list(
                "127.0.0.1:5432, 10.0.0.0/8, db.internal:6432, 169.254.0.0/16, fd00::/8, \
                 [fd00:ec2::254]:80",
            )
            .unwrap(),
        );
        let ok = |host: &str, addr: &str| policy.check(host, sa(addr)).is_ok();
        assert!(ok("127.0.0.1", "127.0.0.1:5432"));
        assert!(ok("localhost", "127.0.0.1:5432"));
        assert!(!ok("127.0.0.1", "127.0.0.1:5433"), "only the listed port");
        assert!(!ok("127.0.0.2", "127.0.0.2:5432"));
        // Mapped forms are canonicalized before matching.
        assert_eq!(
            policy.check("::ffff:127.0.0.1", sa("[::ffff:127.0.0.1]:5432")),
            Ok(sa("127.0.0.1:5432"))
        );
        assert!(!ok("::1", "[::1]:5432"));
        assert!(ok("10.9.8.7", "10.9.8.7:1"));
        assert!(ok("DB.internal.", "192.168.1.5:6432"), "name entry");
        assert!(!ok("db.internal", "192.168.1.5:6433"));
        assert!(!ok("other.internal", "192.168.1.5:6432"));
        // A CIDR or a name never opens a metadata address; an exact entry does.
        assert!(ok("169.254.1.1", "169.254.1.1:80"));
        assert_eq!(
            policy.check("169.254.169.254", sa("169.254.169.254:80")),
            Err(Class::Metadata)
        );
        assert!(!ok("fd00:ec2::254", "[fd00:ec2::254]:81"));
        assert!(ok("fd00:ec2::254", "[fd00:ec2::254]:80"));
        assert!(ok("fd12::1", "[fd12::1]:5"));
        assert!(ok("example.com", "93.184.216.34:443"), "public");
        let empty = OutboundPolicy::default();
        for (host, addr) in [
            ("127.0.0.1", "127.0.0.1:5432"),
            ("localhost", "[::1]:5432"),
            ("x", "[::ffff:127.0.0.1]:5432"),
            ("x", "0.0.0.0:5432"),
            ("x", "169.254.169.254:80"),
            ("x", "[fd00:ec2::254]:80"),
        ] {
            assert!(empty.check(host, sa(addr)).is_err(), "{addr}");
        }
        let metadata_by_name =
            OutboundPolicy::new(parse_allow_list("metadata.internal:80").unwrap());
        assert!(metadata_by_name
            .check("metadata.internal", sa("169.254.169.254:80"))
            .is_err());
    }

    #[tokio::test]
    async fn resolve_checks_every_spelling_without_connecting() {
        let policy = OutboundPolicy::default();
        for host in [
            "127.0.0.1",
            "::1",
            "[::1]",
            "::ffff:127.0.0.1",
            "[::ffff:127.0.0.1]",
            "0.0.0.0",
            "2130706433",
            "0177.0.0.1",
            "0x7f.1",
            "169.254.169.254",
            "localhost",
        ] {
            match policy.resolve(host, 5432).await {
                Err(OutboundError::Refused { class, .. }) => {
                    assert!(class != Class::Public, "{host}")
                }
                other => panic!("{host}: {other:?}"),
            }
        }
        assert_eq!(
            policy.resolve("2130706433", 1).await,
            Err(OutboundError::Refused {
                class: Class::Loopback,
                literal: true
            })
        );
        let e = policy.resolve("localhost", 1).await.unwrap_err();
        assert!(
            matches!(e, OutboundError::Refused { literal: false, .. }),
            "{e:?}"
        );
        assert!(!e.to_string().contains("127.0.0.1"), "{e}");
        assert!(matches!(
            policy.resolve("bad host", 1).await,
            Err(OutboundError::BadUrl(_))
        ));
        let allowed = OutboundPolicy::new(parse_allow_list("localhost:5432").unwrap());
        let addrs = allowed.resolve("localhost", 5432).await.unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 5432));
        assert!(allowed.resolve("127.0.0.1", 5432).await.is_err());
        assert_eq!(
            OutboundPolicy::new(parse_allow_list("::ffff:127.0.0.1").unwrap())
                .resolve("[::ffff:127.0.0.1]", 9)
                .await,
            Ok(vec![sa("127.0.0.1:9")])
        );
    }

    #[tokio::test]
    async fn refused_destinations_are_never_connected() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let policy = OutboundPolicy::default();
        let e = policy
            .connect("127.0.0.1", port, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(e, OutboundError::Refused { .. }), "{e:?}");
        let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
        assert!(accepted.is_err(), "a connection was opened");
        let open = OutboundPolicy::new(parse_allow_list(&format!("127.0.0.1:{port}")).unwrap());
        let (_, addr) = open
            .connect("127.0.0.1", port, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], port)));
    }

    #[tokio::test]
    async fn caller_scope() {
        assert_eq!(caller(), None);
        let peer = sa("[::ffff:10.1.2.3]:4000");
        let seen = with_caller(Some(peer), async { caller() }).await;
        assert_eq!(seen, Some(ip("10.1.2.3")));
    }
}
