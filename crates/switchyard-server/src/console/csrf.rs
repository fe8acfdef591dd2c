//! Protection of the console's changes against cross-site requests: every `POST` carries the
//! session's token in a hidden field, compared in constant time, and a browser's `Origin` (or,
//! without it, `Sec-Fetch-Site`) must be this site. The cookie's `SameSite=Strict` is a third
//! layer, not relied upon alone.

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

/// The form field holding the token.
pub const FIELD: &str = "csrf";

/// Whether the submitted token is the session's.
pub fn token_matches(expected: &str, given: Option<&str>) -> bool {
    given.is_some_and(|g| bool::from(expected.as_bytes().ct_eq(g.as_bytes())))
}

/// Whether the request comes from a page of this site: its `Origin`'s host is the `Host` it
/// was sent to (or, behind a proxy that rewrites `Host`, the `X-Forwarded-Host` it passes on:
/// a cross-site form cannot set either); without an `Origin`, `Sec-Fetch-Site` is not
/// `cross-site` or `same-site` (clients that send neither, such as scripts, still need the
/// token).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match header("origin") {
        Some(origin) => {
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let Some(authority) = authority else {
                return false;
            };
            [header("host"), header("x-forwarded-host")]
                .into_iter()
                .flatten()
                .any(|host| authority.eq_ignore_ascii_case(host.trim()))
        }
        None => !matches!(header("sec-fetch-site"), Some("cross-site" | "same-site")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origin_table() {
        let cases = [
            (
                vec![("host", "gw:8080"), ("origin", "http://gw:8080")],
                true,
            ),
            (
                vec![("host", "gw:8080"), ("origin", "https://GW:8080")],
                true,
            ),
            (
                vec![("host", "gw:8080"), ("origin", "http://evil:8080")],
                false,
            ),
            (
                vec![("host", "gw:8080"), ("origin", "http://gw:8081")],
                false,
            ),
            (vec![("host", "gw:8080"), ("origin", "null")], false),
            (vec![("origin", "http://gw:8080")], false),
            (
                vec![
                    ("host", "127.0.0.1:8080"),
                    ("x-forwarded-host", "console.example"),
                    ("origin", "https://console.example"),
                ],
                true,
            ),
            (
                vec![
                    ("host", "127.0.0.1:8080"),
                    ("x-forwarded-host", "console.example"),
                    ("origin", "https://evil.example"),
                ],
                false,
            ),
            (vec![("host", "gw")], true),
            (
                vec![("host", "gw"), ("sec-fetch-site", "same-origin")],
                true,
            ),
            (
                vec![("host", "gw"), ("sec-fetch-site", "cross-site")],
                false,
            ),
            (vec![("host", "gw"), ("sec-fetch-site", "same-site")], false),
        ];
        for (pairs, expected) in cases {
            assert_eq!(same_origin(&headers(&pairs)), expected, "{pairs:?}");
        }
    }

    #[test]
    fn token_table() {
        assert!(token_matches("abc", Some("abc")));
        assert!(!token_matches("abc", Some("abd")));
        assert!(!token_matches("abc", Some("ab")));
        assert!(!token_matches("abc", Some("")));
        assert!(!token_matches("abc", None));
    }
}
