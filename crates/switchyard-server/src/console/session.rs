//! Console sessions: a random id in an `HttpOnly; SameSite=Strict` cookie, kept here only as
//! its SHA-256 with the account, the management key and the session's CSRF token.
//!
//! Sessions are held in this process's memory (a bounded cache whose entries expire after
//! `console.session_ttl_secs`): several gateways behind one address each know only the
//! sessions signed in through them, so such a deployment needs sticky routing for the console,
//! and a restart signs everyone out.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The cookie's name.
pub const COOKIE: &str = "switchyard_console";

/// Most sessions kept at once (the oldest go first past it).
const CAPACITY: u64 = 10_000;

/// One signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The account signed in to.
    pub account_id: String,
    /// Hash of the management key that signed in; it is checked again on every request.
    pub key_hash: String,
    /// The token every form of this session carries.
    pub csrf: String,
}

/// The sessions of this process.
#[derive(Debug, Clone)]
pub struct Sessions {
    entries: moka::future::Cache<String, Arc<Session>>,
    ttl: Duration,
}

/// 32 random bytes as unpadded base64url: a session id or a CSRF token.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

impl Sessions {
    /// Sessions lasting `ttl` from sign-in.
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            entries: moka::future::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(ttl)
                .build(),
            ttl,
        }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session; returns the id for the cookie (never stored).
    pub async fn start(&self, account_id: &str, key_hash: &str) -> (String, Arc<Session>) {
        let id = random_token();
        let session = Arc::new(Session {
            account_id: account_id.to_owned(),
            key_hash: key_hash.to_owned(),
            csrf: random_token(),
        });
        self.entries.insert(digest(&id), Arc::clone(&session)).await;
        (id, session)
    }

    /// The session a cookie names, while it lasts.
    pub async fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.entries.get(&digest(id)).await
    }

    /// Ends a session.
    pub async fn end(&self, id: &str) {
        self.entries.invalidate(&digest(id)).await;
    }
}

/// The session id in the request's cookies, if any.
pub fn cookie_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty() && v.len() <= 64)
}

/// The `Set-Cookie` value starting a session.
pub fn set_cookie(id: &str, path: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value ending a session in the browser.
pub fn clear_cookie(path: &str, secure: bool) -> String {
    format!(
        "{COOKIE}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_are_32_random_bytes() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn cookie_parsing_table() {
        let cases = [
            ("switchyard_console=abc", Some("abc")),
            ("other=1; switchyard_console=abc; x=2", Some("abc")),
            ("switchyard_console=", None),
            ("switchyard_consoleX=abc", None),
            ("other=1", None),
        ];
        for (header, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert("cookie", HeaderValue::from_static(header));
            assert_eq!(cookie_id(&headers), expected, "{header}");
        }
        let long = format!("switchyard_console={}", "a".repeat(65));
        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_str(&long).expect("header"));
        assert_eq!(cookie_id(&headers), None);
    }

    #[test]
    fn cookie_attributes() {
        let c = set_cookie("id", "/", Duration::from_secs(60), false);
        assert_eq!(
            c,
            "switchyard_console=id; Path=/; Max-Age=60; HttpOnly; SameSite=Strict"
        );
        assert!(set_cookie("id", "/c/", Duration::from_secs(1), true).ends_with("; Secure"));
        assert!(clear_cookie("/", false).contains("Max-Age=0"));
    }

    #[tokio::test]
    async fn sessions_are_kept_by_digest_and_end() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let (id, s) = sessions.start("acct", "hash").await;
        assert_eq!(sessions.get(&id).await.as_deref(), Some(&*s));
        assert!(sessions.get(&digest(&id)).await.is_none());
        sessions.end(&id).await;
        assert!(sessions.get(&id).await.is_none());
    }
}
