//! Reading request paths: percent-decoding a segment, and whether a
//! request only reads. Shared by the alias resolution, the API-key check
//! and the scope check, which run before routing.

use axum::http::Method;

/// Decodes `%XX` escapes; `None` for a bad escape or bytes that are not
/// UTF-8.
pub(super) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes everything but RFC 3986's unreserved characters.
pub(super) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a request only reads. POSTs that only read are the search,
/// query, scroll, count and retrieve routes.
pub fn is_read(method: &Method, path: &str) -> bool {
    if method == Method::GET || method == Method::HEAD {
        return true;
    }
    if method != Method::POST {
        return false;
    }
    let Some(rest) = path.strip_prefix("/collections/") else {
        return false;
    };
    let Some((_, tail)) = rest.split_once('/') else {
        return false;
    };
    matches!(
        tail,
        "points"
            | "points/search"
            | "points/search/batch"
            | "points/query"
            | "points/query/batch"
            | "points/query/groups"
            | "points/search/groups"
            | "points/scroll"
            | "points/count"
            | "facet"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_routes() {
        assert!(is_read(&Method::GET, "/collections/c"));
        assert!(is_read(&Method::POST, "/collections/c/points/search"));
        assert!(is_read(&Method::POST, "/collections/c/points"));
        assert!(is_read(&Method::POST, "/collections/c/points/query/groups"));
        assert!(is_read(&Method::POST, "/collections/c/facet"));
        assert!(!is_read(&Method::PUT, "/collections/c/points"));
        assert!(!is_read(&Method::POST, "/collections/c/points/delete"));
        assert!(!is_read(&Method::POST, "/collections/c/points/payload"));
        assert!(!is_read(&Method::DELETE, "/collections/c"));
    }

    #[test]
    fn names_round_trip_through_percent_encoding() {
        for name in ["plain", "with space", "ünï-cödé", "a%b?c#d"] {
            assert_eq!(percent_decode(&percent_encode(name)).as_deref(), Some(name));
        }
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
