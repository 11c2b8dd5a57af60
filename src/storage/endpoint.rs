//! The checks on caller-supplied S3 settings: the endpoint (http(s), host
//! only, HTTPS unless `ATHENA_STORAGE_ALLOW_HTTP`; an IP literal is checked
//! against the outbound policy at once, a name when a connection is made),
//! bucket names (the S3 rules), regions, providers and key material.

use crate::domain::DomainError;
use crate::outbound::OutboundPolicy;

/// An endpoint as stored: `scheme://host[:port]`, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let default = if self.https { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{}", self.port)
        }
    }
}

/// Parses an endpoint URL or bare host (`https` assumed) and applies the
/// outbound rule to an IP literal (refused → 403).
pub async fn parse(
    text: &str,
    allow_http: bool,
    policy: &OutboundPolicy,
) -> Result<Endpoint, DomainError> {
    let bad = |why: &str| DomainError::invalid_field("endpoint", why);
    let text = text.trim();
    if text.is_empty() || text.len() > 512 || text.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad("must be an http(s) URL or a host name"));
    }
    let (https, rest) = match text.split_once("://") {
        Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
            "https" => (true, rest),
            "http" => (false, rest),
            _ => return Err(bad("the scheme must be http or https")),
        },
        None => (true, text),
    };
    if !https && !allow_http {
        return Err(bad(
            "plain http is refused; use https (or set ATHENA_STORAGE_ALLOW_HTTP=1 for a local store)",
        ));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@', '\\']) {
        return Err(bad(
            "host (and port) only: no path, query, fragment or user info",
        ));
    }
    let (host, port) =
        split_host_port(authority).ok_or_else(|| bad("the host or port is malformed"))?;
    let port = port.unwrap_or(if https { 443 } else { 80 });
    let host = host.to_ascii_lowercase();
    let name_ok = host.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    let ip = crate::outbound::ip_literal(&host);
    if ip.is_none() && (!name_ok || host.len() > 253) {
        return Err(bad("the host is not a valid name or address"));
    }
    if ip.is_some() {
        policy
            .resolve(&host, port)
            .await
            .map_err(|e| e.into_domain("endpoint"))?;
    }
    let endpoint = Endpoint {
        https,
        host: ip.map_or(host, |ip| ip.to_string()),
        port,
    };
    // URL parsers read a name whose last label is a number as an IPv4
    // address (`s3.example.1`, `1.2.3.999`): refused here, not a 500 later.
    let url = url::Url::parse(&endpoint.url())
        .map_err(|_| bad("the host is not a valid name or address"))?;
    let same = url
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        == Some(endpoint.host.as_str());
    if !same {
        return Err(bad("the host is not a valid name or address"));
    }
    Ok(endpoint)
}

fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            p => Some((
                host,
                Some(p.strip_prefix(':')?.parse().ok().filter(|p| *p > 0)?),
            )),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            Some((host, Some(port.parse().ok().filter(|p| *p > 0)?)))
        }
        Some(_) => None,
        None if authority.is_empty() => None,
        None => Some((authority, None)),
    }
}

/// The S3 bucket-name rules: 3–63 characters of lowercase letters, digits,
/// dots and hyphens, starting and ending with a letter or digit, no `..`,
/// not an IPv4 address.
pub fn check_bucket(name: &str) -> Result<(), DomainError> {
    let ok = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err();
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid_field(
            "bucket",
            "S3 bucket names are 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit",
        ))
    }
}

/// A region: `us-east-1`, `auto`, `eu-central-003`…
pub fn check_region(region: &str) -> Result<(), DomainError> {
    check_token("region", region, 64, "letters, digits, `-` and `_`", |c| {
        c.is_ascii_alphanumeric() || c == '-' || c == '_'
    })
}

/// A provider tag (`aws_s3`, `cloudflare_r2`, `minio`, `custom_s3`, …).
pub fn check_provider(provider: &str) -> Result<(), DomainError> {
    check_token(
        "provider",
        provider,
        32,
        "lowercase letters, digits, `_` and `-`",
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-',
    )
}

/// Key material: printable ASCII without spaces, `max` bytes at most.
pub fn check_key(field: &str, value: &str, max: usize) -> Result<(), DomainError> {
    check_token(field, value, max, "printable ASCII characters", |c| {
        c.is_ascii_graphic()
    })
}

/// 1 to `max` bytes, every character `allowed` (else a 400 naming `field`
/// and the rule).
fn check_token(
    field: &str,
    value: &str,
    max: usize,
    rule: &str,
    allowed: impl Fn(char) -> bool,
) -> Result<(), DomainError> {
    if (1..=max).contains(&value.len()) && value.chars().all(allowed) {
        Ok(())
    } else {
        Err(DomainError::invalid_field(field, format!("1-{max} {rule}")))
    }
}

/// A catalog name or description: no control characters, bounded.
pub fn check_text(field: &str, value: &str, min: usize, max: usize) -> Result<(), DomainError> {
    let n = value.chars().count();
    if (min..=max).contains(&n) && !value.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(DomainError::invalid_field(
            field,
            format!("{min}-{max} characters, no control characters"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> OutboundPolicy {
        OutboundPolicy::new(crate::outbound::parse_allow_list("127.0.0.1").unwrap())
    }

    #[tokio::test]
    async fn endpoints() {
        let p = policy();
        let e = parse("https://s3.eu-west-1.amazonaws.com", false, &p)
            .await
            .unwrap();
        assert_eq!(e.url(), "https://s3.eu-west-1.amazonaws.com");
        let e = parse("S3.Example.com:9000", false, &p).await.unwrap();
        assert_eq!(e.url(), "https://s3.example.com:9000");
        let e = parse("http://127.0.0.1:8333/", true, &p).await.unwrap();
        assert_eq!(e.url(), "http://127.0.0.1:8333");
        for bad in [
            "http://s3.example.com",
            "ftp://s3.example.com",
            "https://s3.example.com/bucket",
            "https://user:pw@s3.example.com",
            "https://s3.example.com?x=1",
            "https://exa mple.com",
            "https://-.-",
            "",
            "https://s3.example.com:0",
            "https://s3.example.com:99999",
            "https://[2001:db8::1]:0",
            "https://   ",
            "https://s3.example.1",
            "https://1.2.3.999",
            "https://foo.0x1",
        ] {
            let e = parse(bad, false, &p).await.unwrap_err();
            assert!(
                matches!(e, DomainError::InvalidField { .. }),
                "{bad}: {e:?}"
            );
        }
        // Private, loopback (not allow-listed) and metadata addresses.
        for refused in [
            "http://10.0.0.1",
            "http://127.0.0.2:9000",
            "http://169.254.169.254",
            "http://[::1]:9000",
            "http://167772161",
        ] {
            let e = parse(refused, true, &p).await.unwrap_err();
            assert!(matches!(e, DomainError::Forbidden(_)), "{refused}: {e:?}");
        }
    }

    #[test]
    fn buckets() {
        for ok in ["abc", "my-bucket.v2", "a1b"] {
            assert!(check_bucket(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "ABC",
            "-abc",
            "abc-",
            "a..b",
            "192.168.1.1",
            &"a".repeat(64),
            "a_b",
        ] {
            assert!(check_bucket(bad).is_err(), "{bad}");
        }
    }
}
