//! The page shell (navigation, notices), the headers every page carries, and formatting.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use switchyard_core::money::Money;
use switchyard_core::periods::to_iso8601;

use super::{csrf, Console, Signed};

/// The pages of the navigation, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// Spend, tokens and requests over time.
    Activity,
    /// The generations log.
    Generations,
    /// API keys.
    Keys,
    /// Credits.
    Credits,
    /// Guardrails.
    Guardrails,
    /// Account privacy settings.
    Settings,
    /// Providers and models.
    Providers,
    /// The audit trail.
    Audit,
}

const NAV: [(Nav, &str, &str); 8] = [
    (Nav::Activity, "activity", "Activity"),
    (Nav::Generations, "generations", "Generations"),
    (Nav::Keys, "keys", "Keys"),
    (Nav::Credits, "credits", "Credits"),
    (Nav::Guardrails, "guardrails", "Guardrails"),
    (Nav::Settings, "settings", "Privacy"),
    (Nav::Providers, "providers", "Providers"),
    (Nav::Audit, "audit", "Audit"),
];

/// A message above a page's content after a change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Notice {
    /// Nothing to say.
    #[default]
    None,
    /// The change was made.
    Done(String),
    /// The change was refused, and why.
    Failed(String),
}

impl Notice {
    /// The status and notice of a change that ended with `result`: 200 and what was done, or
    /// the API's refusal with its own status.
    pub fn of(result: Result<&str, crate::error::ApiError>) -> (StatusCode, Notice) {
        match result {
            Ok(done) => (StatusCode::OK, Notice::Done(done.to_owned())),
            Err(e) => (
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
                Notice::Failed(e.message),
            ),
        }
    }
}

/// A complete HTML answer with the console's headers: no caching, no framing, scripts and
/// styles from this origin only.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "same-origin"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ],
        markup.into_string(),
    )
        .into_response()
}

fn head(console: &Console, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Switchyard" }
            link rel="stylesheet" href=(console.link("assets/console.css"));
            script src=(console.link("assets/console.js")) defer {}
        }
    }
}

/// A page of a signed-in browser.
pub fn shell(signed: &Signed, current: Nav, title: &str, notice: &Notice, body: Markup) -> Markup {
    let console = &signed.console;
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(console, title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href=(console.link("activity")) { "Switchyard" }
                    nav aria-label="Console" {
                        ul {
                            @for (nav, path, label) in NAV {
                                li {
                                    @if nav == current {
                                        a href=(console.link(path)) aria-current="page" { (label) }
                                    } @else {
                                        a href=(console.link(path)) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    form.signout method="post" action=(console.link("sign-out")) {
                        (csrf_field(signed))
                        span.who { "Signed in with " (signed.auth.key.name) }
                        button type="submit" { "Sign out" }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (notice_box(notice))
                    (body)
                }
            }
        }
    }
}

/// The notice of a page, announced to screen readers.
pub fn notice_box(notice: &Notice) -> Markup {
    html! {
        @match notice {
            Notice::None => {},
            Notice::Done(text) => p.notice.done role="status" { (text) },
            Notice::Failed(text) => p.notice.failed role="alert" { (text) },
        }
    }
}

/// The hidden field with the session's CSRF token, for every form that changes something.
pub fn csrf_field(signed: &Signed) -> Markup {
    html! { input type="hidden" name=(csrf::FIELD) value=(signed.session.csrf); }
}

/// A page without the navigation (sign-in, refusals).
pub fn bare(console: &Console, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(console, title))
            body.bare {
                main id="main" {
                    p.brand { "Switchyard" }
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// An error page with a way back.
pub fn error_page(console: &Console, status: StatusCode, title: &str, message: &str) -> Response {
    html_response(
        status,
        bare(
            console,
            title,
            html! {
                p.notice.failed role="alert" { (message) }
                p { a href=(console.link("activity")) { "Back to the console" } }
            },
        ),
    )
}

/// An amount as exact USD (`$0.000123`).
pub fn usd(m: Money) -> String {
    m.to_string()
}

/// A Unix-ms time as ISO-8601 UTC.
pub fn time(ms: i64) -> String {
    to_iso8601(ms)
}

/// A count with thousands separators.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The first characters of a hash, for tables.
pub fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_table() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (1234567, "1,234,567"),
            (u64::MAX, "18,446,744,073,709,551,615"),
        ] {
            assert_eq!(count(n), text);
        }
    }

    #[test]
    fn notices_escape() {
        let text = notice_box(&Notice::Failed("<b>no</b>".into())).into_string();
        assert!(text.contains("&lt;b&gt;no&lt;/b&gt;"));
        assert!(text.contains("role=\"alert\""));
        assert_eq!(notice_box(&Notice::None).into_string(), "");
    }
}
