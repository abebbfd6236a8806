//! Rules for fetching a client's `image_url` server-side: which URLs may be
//! fetched at all, and what the fetched bytes are.
//!
//! The worker cannot resolve DNS, so the address check covers what it can see: the scheme, IP
//! literals in every form the WHATWG URL parser accepts (`127.1`, `0x7f000001`, `2130706433`,
//! `[::ffff:127.0.0.1]`), and the reserved names (`localhost`, `*.internal`, …). On Cloudflare
//! the runtime itself refuses private targets behind public names.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a URL may not be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Scheme,
    Malformed,
    PrivateAddress,
    Credentials,
}

impl Refusal {
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::Scheme => {
                "uses a scheme other than http or https, which are the only ones fetched"
            }
            Refusal::Malformed => "is not a valid URL",
            Refusal::PrivateAddress => {
                "points to a private, loopback or reserved address, which is never fetched"
            }
            Refusal::Credentials => "must not contain a username or password",
        }
    }
}

/// A URL that passed [`check_url`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTarget {
    /// `host:port` with the default port made explicit, lower-case, as the allow-list writes it.
    pub authority: String,
}

/// Checks a URL before any fetch. `allow` lists `host:port` authorities that may be fetched even
/// though they are private (the operator's own services, or the test mock).
pub fn check_url(url: &str, allow: &[String]) -> Result<FetchTarget, Refusal> {
    let url = url.trim();
    // Browsers' URL parsing drops tabs and newlines and reads `\` as `/`; refusing them keeps
    // this check and the runtime's parser from ever disagreeing about the host.
    if url
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err(Refusal::Malformed);
    }
    let (scheme, rest) = url.split_once("://").ok_or(Refusal::Malformed)?;
    let default_port = if scheme.eq_ignore_ascii_case("http") {
        80
    } else if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        return Err(Refusal::Scheme);
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(Refusal::Credentials);
    }
    let (host, port) = split_host_port(authority)?;
    let port = match port {
        Some(port) => port.parse::<u16>().map_err(|_| Refusal::Malformed)?,
        None => default_port,
    };
    let host = host.to_ascii_lowercase();
    // Only plain ASCII names and IP literals: percent-encoded or Unicode hosts (full-width
    // digits are an IP address after IDNA mapping) would need the runtime's normalisation.
    let plain = host.bytes().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'[' | b']' | b':' | b'%')
    });
    if host.is_empty() || !plain || (host.contains('%') && !host.starts_with('[')) {
        return Err(Refusal::Malformed);
    }
    let target = FetchTarget {
        authority: format!("{host}:{port}"),
    };
    if allow
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&target.authority))
    {
        return Ok(target);
    }
    if is_private_host(&host) {
        return Err(Refusal::PrivateAddress);
    }
    Ok(target)
}

/// `[v6]:port`, `host:port` or `host`.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), Refusal> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(Refusal::Malformed)?;
        let bracketed = authority.get(..host.len() + 2).unwrap_or(authority);
        if after.is_empty() {
            return Ok((bracketed, None));
        }
        let port = after.strip_prefix(':').ok_or(Refusal::Malformed)?;
        return Ok((bracketed, Some(port)));
    }
    Ok(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

fn is_private_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        // Zone ids (`%eth0`) only make sense for link-local targets.
        return inner.contains('%') || inner.parse::<Ipv6Addr>().is_ok_and(is_private_v6);
    }
    let name = host.trim_end_matches('.');
    if let Some(v4) = parse_whatwg_ipv4(name) {
        return is_private_v4(v4);
    }
    let reserved_suffixes = [".localhost", ".local", ".internal", ".lan", ".home.arpa"];
    name == "localhost"
        || name.is_empty()
        || reserved_suffixes.iter().any(|s| name.ends_with(s))
        || !name.contains('.')
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10 carrier-grade NAT, 198.18.0.0/15 benchmarking, 240.0.0.0/4 reserved.
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_private_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated, still routable inside)
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b // NAT64 can reach private v4
}

/// The WHATWG URL parser's IPv4 rules: 1–4 dot-separated numbers, each decimal, `0x` hex or
/// `0`-prefixed octal, the last one filling the remaining bytes. `None` for a host name.
fn parse_whatwg_ipv4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let numbers: Vec<u64> = parts
        .iter()
        .map(|p| parse_ipv4_number(p))
        .collect::<Option<_>>()?;
    let (last, init) = numbers.split_last()?;
    if init.iter().any(|n| *n > 255) {
        return None;
    }
    let remaining_bytes = 4 - init.len();
    if *last >= 1u64 << (8 * remaining_bytes) {
        return None;
    }
    let mut value = *last;
    for (i, n) in init.iter().enumerate() {
        value += n << (8 * (3 - i));
    }
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

fn parse_ipv4_number(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() {
        return Some(0);
    }
    if digits.len() > 12 {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// The MIME type of fetched bytes: the declared `Content-Type` when it is specific, otherwise
/// sniffed from the magic bytes. `None` when neither says what it is.
pub fn media_type(declared: Option<&str>, head: &[u8]) -> Option<String> {
    let declared = declared
        .and_then(|ct| ct.split(';').next())
        .map(|ct| ct.trim().to_ascii_lowercase())
        .filter(|ct| !ct.is_empty() && ct != "application/octet-stream" && ct.contains('/'));
    declared.or_else(|| sniff(head).map(str::to_owned))
}

fn sniff(head: &[u8]) -> Option<&'static str> {
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if starts(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("image/gif")
    } else if head.len() >= 12 && starts(b"RIFF") && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else if starts(b"%PDF-") {
        Some("application/pdf")
    } else if head.len() >= 12
        && &head[4..8] == b"ftyp"
        && matches!(&head[8..12], b"heic" | b"heix" | b"mif1")
    {
        Some("image/heic")
    } else {
        None
    }
}

/// Types an `image_url` may resolve to: images, and PDFs (chat apps send them this way too).
pub fn acceptable_image_type(mime: &str) -> bool {
    mime.starts_with("image/") || mime == "application/pdf"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow() -> Vec<String> {
        vec!["127.0.0.1:8787".to_owned()]
    }

    #[test]
    fn public_http_urls_pass() {
        for url in [
            "https://example.com/cat.png",
            "http://example.com:8080/a?b#c",
            "HTTPS://Upload.Wikimedia.org/x.jpg",
            "https://8.8.8.8/x",
            "https://[2606:4700::1111]/x",
        ] {
            assert!(check_url(url, &[]).is_ok(), "{url}");
        }
        assert_eq!(
            check_url("https://Example.com/x", &[]).map(|t| t.authority),
            Ok("example.com:443".to_owned())
        );
    }

    #[test]
    fn private_loopback_and_reserved_targets_are_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://0/",
            "http://0.0.0.0:80/",
            "http://10.0.0.5/",
            "http://172.16.3.4/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.1.1/",
            "http://[::1]/",
            "http://[::]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[fd00::1]/",
            "http://[fe80::1%25eth0]/",
            "http://localhost/",
            "http://LOCALHOST:3000/",
            "http://foo.localhost/",
            "http://metadata.google.internal/",
            "http://printer.local/",
            "http://intranet/",
            "http://localhost./",
        ] {
            assert_eq!(check_url(url, &[]), Err(Refusal::PrivateAddress), "{url}");
        }
    }

    #[test]
    fn other_schemes_credentials_and_garbage_are_refused() {
        for (url, why) in [
            ("file:///etc/passwd", Refusal::Scheme),
            ("ftp://example.com/x.png", Refusal::Scheme),
            ("gopher://example.com/", Refusal::Scheme),
            ("javascript:alert(1)", Refusal::Malformed),
            ("example.com/x.png", Refusal::Malformed),
            ("http://user:pw@example.com/", Refusal::Credentials),
            ("http://example.com@127.0.0.1/", Refusal::Credentials),
            ("http:///x", Refusal::Malformed),
            ("http://example.com:99999/", Refusal::Malformed),
            ("http://[::1/", Refusal::Malformed),
            ("http://127.0.0.1\\x.com/", Refusal::Malformed),
            ("http://127.0.0.\n1/", Refusal::Malformed),
            ("http://127.0.0.%31/", Refusal::Malformed),
            ("http://\u{ff11}\u{ff12}\u{ff17}.0.0.1/", Refusal::Malformed),
        ] {
            assert_eq!(check_url(url, &[]), Err(why), "{url}");
        }
    }

    #[test]
    fn the_allow_list_admits_exactly_its_authorities() {
        assert!(check_url("http://127.0.0.1:8787/media/a.png", &allow()).is_ok());
        assert_eq!(
            check_url("http://127.0.0.1:8788/media/a.png", &allow()),
            Err(Refusal::PrivateAddress)
        );
        assert_eq!(
            check_url("http://127.0.0.1/media/a.png", &allow()),
            Err(Refusal::PrivateAddress)
        );
    }

    #[test]
    fn whatwg_ipv4_forms_parse_like_browsers() {
        let ip = |s| parse_whatwg_ipv4(s);
        assert_eq!(ip("127.0.0.1"), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(ip("127.1"), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(ip("10.1.2"), Some(Ipv4Addr::new(10, 1, 0, 2)));
        assert_eq!(ip("0x0A.0x1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(ip("012.0.0.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(ip("4294967295"), Some(Ipv4Addr::BROADCAST));
        assert_eq!(ip("4294967296"), None);
        assert_eq!(ip("example.com"), None);
        assert_eq!(ip("1.2.3.4.5"), None);
        assert_eq!(ip("256.1.1.1"), None);
    }

    #[test]
    fn media_types_come_from_the_header_or_the_bytes() {
        assert_eq!(
            media_type(Some("image/PNG; charset=binary"), b""),
            Some("image/png".to_owned())
        );
        assert_eq!(
            media_type(None, b"\x89PNG\r\n\x1a\n...."),
            Some("image/png".to_owned())
        );
        assert_eq!(
            media_type(Some("application/octet-stream"), b"\xff\xd8\xff\xe0"),
            Some("image/jpeg".to_owned())
        );
        assert_eq!(
            media_type(None, b"RIFF\0\0\0\0WEBPVP8 "),
            Some("image/webp".to_owned())
        );
        assert_eq!(media_type(None, b"GIF89a"), Some("image/gif".to_owned()));
        assert_eq!(
            media_type(None, b"%PDF-1.7"),
            Some("application/pdf".to_owned())
        );
        assert_eq!(media_type(None, b"<html>"), None);
        assert!(acceptable_image_type("image/webp"));
        assert!(acceptable_image_type("application/pdf"));
        assert!(!acceptable_image_type("text/html"));
    }
}
