//! Request-body extraction for the management API: one extractor, [`ApiJson`], whose rejection
//! is the contract's 400 envelope naming what is wrong and where.
//!
//! Request types refuse unknown fields (`#[serde(deny_unknown_fields)]`), so a misspelt field is
//! an error rather than a setting silently ignored. Messages name the field's path and the type
//! it expects; they never repeat the value that was sent, which may be a secret pasted into the
//! wrong field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use switchyard_core::money::Money;

use crate::error::ApiError;
use crate::state::{Authenticated, SharedState};

/// A request authenticated by a management key; a standard key is refused (403) before the
/// body is read.
#[derive(Debug, Clone)]
pub struct Management(pub Authenticated);

impl FromRequestParts<SharedState> for Management {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let auth = Authenticated::from_request_parts(parts, state).await?;
        auth.require_management()?;
        Ok(Management(auth))
    }
}

/// A JSON request body parsed into `T`, or a 400 naming the offending path.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(crate::formats::body_error)?;
        parse(&bytes).map(ApiJson)
    }
}

/// Parses a request body that must be one JSON object into `T`.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        // Structs also read from arrays (by position); the contract's bodies are objects.
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::bad_request("Request body must be a JSON object"),
                Err(e) => ApiError::bad_request(format!("Invalid JSON in request body: {e}")),
            },
        );
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        // A value of the wrong kind can surface as a syntax error (a number where an enum's
        // name belongs): when the text is valid JSON, it is a shape error at the path.
        let shape =
            e.inner().is_data() || serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        if shape && !e.inner().is_data() {
            ApiError::bad_request(format!(
                "Invalid {}: not of the expected type",
                location(&path)
            ))
        } else {
            ApiError::bad_request(describe(&path, e.inner()))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON in request body: {e}")))?;
    Ok(value)
}

/// The message for a body that is not of the expected shape: where, and what was expected,
/// without the value itself.
fn describe(path: &str, error: &serde_json::Error) -> String {
    if !error.is_data() {
        return format!("Invalid JSON in request body: {error}");
    }
    let text = error.to_string();
    // serde_json appends " at line L column C"; the path says more.
    let text = text
        .rfind(" at line ")
        .map_or(text.as_str(), |at| &text[..at]);
    let at = location(path);
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            if let Some((unexpected, expected)) = rest.split_once(", expected ") {
                return format!(
                    "Invalid {at}: expected {expected}, got {}",
                    value_kind(unexpected)
                );
            }
        }
    }
    if let Some(rest) = text.strip_prefix("unknown variant ") {
        let expected = rest.split_once(", expected ").map_or("", |(_, e)| e);
        return format!("Invalid {at}: expected {expected}");
    }
    if text.starts_with("invalid length ") {
        let expected = text.split_once(", expected ").map_or("", |(_, e)| e);
        return format!("Invalid {at}: expected {expected}");
    }
    if text.starts_with("unknown field ") || text.starts_with("missing field ") {
        // These quote a field's name, never its value.
        return format!("Invalid {at}: {text}");
    }
    // Messages of the gateway's own types (amounts, times) name the field themselves.
    format!("Invalid {at}: {text}")
}

/// Where in the body: the body itself, or a field's path.
fn location(path: &str) -> String {
    if path == "." || path.is_empty() {
        "the request body".to_owned()
    } else {
        format!("field `{path}`")
    }
}

/// The kind of a value serde did not expect ("string", "integer"), without the value.
fn value_kind(unexpected: &str) -> &str {
    unexpected
        .split_once([' ', '`', '"'])
        .map_or(unexpected, |(kind, _)| kind)
        .trim()
}

/// A field that may be left out (keep), `null` (clear) or given (set): the three meanings a
/// `PATCH` body's member has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    /// Absent: leave the current value.
    #[default]
    Keep,
    /// `null`: clear the value.
    Clear,
    /// A value: replace.
    Set(T),
}

impl<T> Patch<T> {
    /// `None` to keep, `Some(None)` to clear, `Some(Some(v))` to set.
    pub fn into_change(self) -> Option<Option<T>> {
        match self {
            Patch::Keep => None,
            Patch::Clear => Some(None),
            Patch::Set(v) => Some(Some(v)),
        }
    }

    /// Maps the given value, keeping the three meanings.
    pub fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Patch<U>, E> {
        Ok(match self {
            Patch::Keep => Patch::Keep,
            Patch::Clear => Patch::Clear,
            Patch::Set(v) => Patch::Set(f(v)?),
        })
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer).map(|v| v.map_or(Patch::Clear, Patch::Set))
    }
}

/// An amount of USD given as a JSON number, read exactly (`0.1` is ten cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usd(pub Money);

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        Money::from_json_number(&number)
            .map(Usd)
            .map_err(|e| serde::de::Error::custom(format!("an amount of USD {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only parsed")]
    struct Body {
        name: String,
        #[serde(default)]
        limit: Option<Usd>,
        #[serde(default)]
        flag: Patch<bool>,
        #[serde(default)]
        hashes: Vec<String>,
    }

    fn message(body: &str) -> String {
        match parse::<Body>(body.as_bytes()) {
            Ok(b) => panic!("parsed {b:?}"),
            Err(e) => {
                assert_eq!(e.status(), 400, "{body}");
                e.message
            }
        }
    }

    #[test]
    fn rejections_name_the_path_and_type_never_the_value() {
        let cases = [
            (
                r#"{"name": "x", "limit": "sk-or-v1-secret"}"#,
                &["`limit`", "number", "string"][..],
            ),
            (r#"{"name": 5}"#, &["`name`", "a string", "integer"]),
            (
                r#"{"name": "x", "flag": "sk-or-v1-secret"}"#,
                &["`flag`", "a boolean"],
            ),
            (
                r#"{"name": "x", "hashes": [1]}"#,
                &["`hashes[0]`", "a string"],
            ),
            (r#"{"name": "x", "colour": "sk-or-v1-secret"}"#, &["colour"]),
            (r#"{"limit": 1}"#, &["missing field `name`"]),
            (r#"["sk-or-v1-secret"]"#, &["JSON object"]),
            (r#"{"name": "#, &["Invalid JSON"]),
            (r#"{"name": "x"} trailing"#, &["Invalid JSON"]),
        ];
        for (body, needles) in cases {
            let text = message(body);
            for needle in needles {
                assert!(text.contains(needle), "{body}: {text} lacks {needle}");
            }
            assert!(
                !text.contains("sk-or-v1"),
                "{body}: {text} repeats the value"
            );
        }
    }

    #[test]
    fn patch_members_keep_clear_or_set() {
        let parsed: Body = parse(br#"{"name": "x", "flag": null, "limit": 0.1}"#).expect("ok");
        assert_eq!(parsed.flag, Patch::Clear);
        assert_eq!(
            parsed.limit,
            Some(Usd(Money::parse_usd("0.1").expect("usd")))
        );
        let parsed: Body = parse(br#"{"name": "x", "flag": true}"#).expect("ok");
        assert_eq!(parsed.flag.into_change(), Some(Some(true)));
        let parsed: Body = parse(br#"{"name": "x"}"#).expect("ok");
        assert_eq!(parsed.flag.into_change(), None);
    }
}
