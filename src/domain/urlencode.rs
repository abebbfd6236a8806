//! Query strings and form bodies, `application/x-www-form-urlencoded`: every
//! byte outside RFC 3986's unreserved set is percent-encoded (a space too,
//! as `%20`), so a value can never break out of its pair whatever it holds.
//! One encoder for the OAuth forms and for every upstream URL's query.

/// `k1=v1&k2=v2…`, each key and value encoded.
pub fn form<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (i, (key, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        push_component(&mut out, key);
        out.push('=');
        push_component(&mut out, value);
    }
    out
}

/// Why `base` cannot start an upstream URL, if it cannot: it must be `http(s)://host…`,
/// with no query, fragment, whitespace or trailing `/`, so that a path appended to it
/// stays a path on that host.
pub fn base_problem(base: &str) -> Option<&'static str> {
    let rest = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Some("not an http(s) URL");
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(['@', ':']) {
        return Some("no host");
    }
    if base.contains(['?', '#']) {
        return Some("has a query or a fragment");
    }
    if base.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("holds whitespace");
    }
    if base.ends_with('/') {
        return Some("ends with /");
    }
    None
}

fn push_component(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_non_ascii_bytes_are_encoded_and_unreserved_ones_kept() {
        assert_eq!(form([("a b", "1/2+3~")]), "a%20b=1%2F2%2B3~");
        assert_eq!(
            form([("pageToken", "x&y=z#w?"), ("alt", "sse")]),
            "pageToken=x%26y%3Dz%23w%3F&alt=sse"
        );
        assert_eq!(form([("q", "é中")]), "q=%C3%A9%E4%B8%AD");
        assert_eq!(form([("k", "")]), "k=");
        assert_eq!(form([]), "");
        assert_eq!(form([("A-Z_a.z~09", "%")]), "A-Z_a.z~09=%25");
    }

    #[test]
    fn a_base_is_an_http_url_a_path_can_follow() {
        for ok in [
            "https://generativelanguage.googleapis.com",
            "http://127.0.0.1:8787/mock",
            "https://proxy.example/gemini/api",
        ] {
            assert_eq!(base_problem(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("generativelanguage.googleapis.com", "not an http(s) URL"),
            ("ftp://x", "not an http(s) URL"),
            ("https://", "no host"),
            ("https:///path", "no host"),
            ("https://x/a?key=1", "has a query or a fragment"),
            ("https://x#f", "has a query or a fragment"),
            ("https://x/a b", "holds whitespace"),
            ("https://x/", "ends with /"),
        ] {
            assert_eq!(base_problem(bad), Some(why), "{bad}");
        }
    }
}
