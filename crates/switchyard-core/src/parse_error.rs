//! Parse errors that say where a request is wrong and what was expected, never the value sent:
//! a value can be a prompt, and refusals are written to the audit chain.
//!
//! - [`value_free`] rewrites a serde message (`invalid type: string "…", expected a sequence`)
//!   to its kinds (`invalid type: string, expected a sequence`).
//! - [`name`] repeats a value a client sent where a name belongs (a `type`, a `role`, a field)
//!   only when it looks like a name.
//!
//! Invariant: neither returns more than [`NAME_MAX_CHARS`] characters of anything the client
//! sent, and nothing of it that is not name-like.

/// Longest client-sent name an error repeats.
pub const NAME_MAX_CHARS: usize = 40;

/// The kinds serde names an unexpected value by (`serde::de::Unexpected`), longest first where
/// one starts another.
const KINDS: &[&str] = &[
    "string",
    "integer",
    "floating point",
    "boolean",
    "character",
    "byte array",
    "unit value",
    "unit variant",
    "newtype variant",
    "tuple variant",
    "struct variant",
    "newtype struct",
    "Option value",
    "sequence",
    "map",
    "enum",
    "unit",
    "null",
];

/// Whether `value` looks like a name: at most [`NAME_MAX_CHARS`] characters, letters, digits,
/// `_`, `-`, `.`, `/` and `:` only.
pub fn is_name(value: &str) -> bool {
    !value.is_empty()
        && value.chars().count() <= NAME_MAX_CHARS
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':'))
}

/// A client-sent value that stands where a name belongs, as an error may repeat it: quoted
/// when it looks like a name ([`is_name`]), else `an unrecognised value`.
pub fn name(value: &str) -> String {
    if is_name(value) {
        format!("{value:?}")
    } else {
        "an unrecognised value".to_owned()
    }
}

/// The path of a client-sent field `key` under `at` (`text.format.key`), as an error may
/// repeat it: the key when it looks like a name ([`is_name`]), else `<unrecognised field>`.
pub fn field(at: &str, key: &str) -> String {
    let key = if is_name(key) {
        key
    } else {
        "<unrecognised field>"
    };
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

/// The kind of a value serde did not expect (`string`, `integer`), without the value.
fn kind(unexpected: &str) -> &'static str {
    KINDS
        .iter()
        .find(|k| unexpected.starts_with(*k))
        .copied()
        .unwrap_or("value")
}

/// A name serde quotes in backticks at the start of `rest` (`` `role`, expected … ``), and
/// what follows its closing backtick. The name may itself hold backticks: it ends at the last
/// `` `, `` before the expected part, or at the end.
fn backticked(rest: &str) -> Option<(&str, &str)> {
    let rest = rest.strip_prefix('`')?;
    for end in [
        "`, expected ",
        "`, there are no variants",
        "`, there are no fields",
    ] {
        if let Some(at) = rest.rfind(end) {
            return Some((&rest[..at], &rest[at + 1..]));
        }
    }
    let at = rest.rfind('`')?;
    Some((&rest[..at], &rest[at + 1..]))
}

/// A serde or serde_json error message without the values it quotes. `invalid type` and
/// `invalid value` keep the kind of the value (`string`, `integer`); an unknown variant or
/// field keeps its name only when it looks like one ([`name`]); any other message is kept
/// when it quotes nothing, else cut before its first quote.
pub fn value_free(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            // The expected part is the gateway's own words; the value comes before it and may
            // itself contain ", expected ".
            return match rest.rfind(", expected ") {
                Some(at) => format!("{prefix}{}{}", kind(&rest[..at]), &rest[at..]),
                None => format!("{prefix}{}", kind(rest)),
            };
        }
    }
    for prefix in [
        "unknown variant ",
        "unknown field ",
        "missing field ",
        "duplicate field ",
    ] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some((quoted, after)) = backticked(rest) {
                let label = prefix.trim_end();
                return if is_name(quoted) {
                    format!("{label} `{quoted}`{after}")
                } else {
                    format!("{label}{after}")
                };
            }
        }
    }
    match message.find(['"', '`']) {
        None => message.to_owned(),
        Some(at) => message[..at].trim_end().trim_end_matches(':').to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_keep_the_kinds_and_lose_the_values() {
        // (message, expected)
        let cases = [
            (
                r#"invalid type: string "my prompt, expected nothing", expected a sequence"#,
                "invalid type: string, expected a sequence",
            ),
            (
                "invalid type: integer `5`, expected a string",
                "invalid type: integer, expected a string",
            ),
            (
                "invalid type: floating point `1.5`, expected u32",
                "invalid type: floating point, expected u32",
            ),
            (
                r#"invalid value: string "x", expected one of a, b"#,
                "invalid value: string, expected one of a, b",
            ),
            (
                "unknown variant `usr`, expected one of `user`, `assistant`",
                "unknown variant `usr`, expected one of `user`, `assistant`",
            ),
            (
                "unknown variant `my secret prompt`, expected one of `user`, `assistant`",
                "unknown variant, expected one of `user`, `assistant`",
            ),
            (
                "unknown variant `a`b`, expected `x`",
                "unknown variant, expected `x`",
            ),
            (
                "unknown field `temprature`, expected one of `temperature`",
                "unknown field `temprature`, expected one of `temperature`",
            ),
            (
                "unknown field `what is 2+2?`, there are no fields",
                "unknown field, there are no fields",
            ),
            ("missing field `messages`", "missing field `messages`"),
            (
                "invalid length 0, expected at least one",
                "invalid length 0, expected at least one",
            ),
            (r#"the model "secret words" is wrong"#, "the model"),
            (
                "expected value at line 1 column 1",
                "expected value at line 1 column 1",
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(value_free(message), expected, "{message}");
        }
    }

    #[test]
    fn only_names_are_repeated() {
        assert_eq!(name("image_url"), "\"image_url\"");
        assert_eq!(
            name("reasoning.encrypted_content"),
            "\"reasoning.encrypted_content\""
        );
        assert_eq!(name("two words"), "an unrecognised value");
        assert_eq!(name(&"x".repeat(41)), "an unrecognised value");
        assert_eq!(name(""), "an unrecognised value");
        assert_eq!(field("text", "format"), "text.format");
        assert_eq!(field("", "my prompt here"), "<unrecognised field>");
        assert_eq!(field("a.b", "x y"), "a.b.<unrecognised field>");
    }
}
