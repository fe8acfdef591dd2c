//! The operator console: sign-in, sessions, CSRF, and pages that show (and change) what the
//! management API shows (and changes).

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{json, Value};
use switchyard_core::money::Money;
use switchyard_server::keys::KeySpec;

use crate::harness::{catalog, TestGateway, ACCOUNT};
use crate::mock::{completion, MockUpstream, Reply};

const DAY_MS: i64 = 86_400_000;

/// A browser without JavaScript: keeps the session cookie, sends the page's origin with forms.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    /// The CSRF token of the page's forms.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field in {}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').expect("end")].to_owned()
    }

    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The text of the first element carrying `attribute="value"`.
    fn text_of(&self, attribute: &str) -> String {
        let at = self
            .body
            .find(attribute)
            .unwrap_or_else(|| panic!("{attribute} missing from {}", self.body));
        let rest = &self.body[at..];
        let start = rest.find('>').expect(">") + 1;
        let end = rest.find('<').expect("<");
        rest[start..end].to_owned()
    }
}

impl Browser {
    fn new(gw: &TestGateway) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: gw.base.clone(),
            cookie: None,
        }
    }

    async fn read(&mut self, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if let Some(set) = headers.get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
            let pair = set.split(';').next().unwrap_or("");
            self.cookie = match pair.split_once('=') {
                Some((_, "")) | None => None,
                Some(_) => Some(pair.to_owned()),
            };
        }
        let body = response.text().await.expect("body");
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            request = request.header("cookie", c);
        }
        let response = request.send().await.expect("send");
        self.read(response).await
    }

    /// A form sent from a page of the console (its `Origin`).
    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let origin = self.base.clone();
        self.post_from(path, form, Some(&origin)).await
    }

    async fn post_from(&mut self, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> Page {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = &self.cookie {
            request = request.header("cookie", c);
        }
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        let response = request.send().await.expect("send");
        self.read(response).await
    }

    /// Signs in with `key`; the sign-in's answer.
    async fn sign_in(&mut self, key: &str) -> Page {
        self.post("/sign-in", &[("key", key)]).await
    }
}

async fn gateway() -> (MockUpstream, TestGateway) {
    // Each answer costs 10 × 0.000001 + 4 × 0.000002 = 0.000018.
    let mock = MockUpstream::start(vec![Reply::Json(200, completion("ok", 10, 4))]).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0.000001", "0.000002")]))
        .build()
        .await;
    (mock, gw)
}

async fn chat(gw: &TestGateway, key: &str, user: Option<&str>) -> (u16, String) {
    let mut body = json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]});
    if let Some(u) = user {
        body["user"] = json!(u);
    }
    let r = gw
        .http
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    let id = r
        .headers()
        .get("x-generation-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    r.text().await.expect("body");
    (status, id)
}

#[tokio::test]
async fn pages_without_a_session_redirect_to_sign_in() {
    let (_mock, gw) = gateway().await;
    let mut b = Browser::new(&gw);
    for path in [
        "/",
        "/activity",
        "/generations",
        "/generations/gen-1",
        "/keys",
        "/credits",
        "/guardrails",
        "/settings",
        "/providers",
        "/audit",
        "/audit/export?since=2026-01-01&until=2026-01-02",
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(page.location(), "/sign-in", "{path}");
    }
    // A made-up session id is no session.
    b.cookie = Some("switchyard_console=made-up".into());
    assert_eq!(b.get("/keys").await.location(), "/sign-in");
    let page = b.get("/sign-in").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<label for=\"key\">"), "{}", page.body);
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(page.headers["content-security-policy"]
        .to_str()
        .expect("csp")
        .contains("script-src 'self'"));
    // The assets are in the binary.
    let css = b.get("/assets/console.css").await;
    assert_eq!(css.status, 200);
    assert!(css.headers["content-type"]
        .to_str()
        .expect("type")
        .starts_with("text/css"));
    // Changes without a session are not made either.
    let page = b.post("/keys", &[("name", "x"), ("csrf", "x")]).await;
    assert_eq!(page.status, 303);
    gw.stop().await;
}

#[tokio::test]
async fn only_a_valid_management_key_signs_in_and_sign_out_ends_it() {
    let (_mock, gw) = gateway().await;
    let admin = gw.admin_key().await;
    let mut b = Browser::new(&gw);
    let unknown = format!("sk-or-v1-{}", "0".repeat(64));
    for (key, status, says) in [
        ("not a key", 401, "Invalid API key"),
        (unknown.as_str(), 401, "no such key"),
        (gw.key.as_str(), 403, "Only management keys"),
    ] {
        let page = b.sign_in(key).await;
        assert_eq!(page.status, status, "{key}: {}", page.body);
        assert!(page.body.contains(says), "{key}: {}", page.body);
        assert!(page.headers.get(SET_COOKIE).is_none(), "{key}");
        assert!(
            !page.body.contains(key) || key == "not a key",
            "the key is not echoed"
        );
    }
    // Refused keys are counted with the API's, one audit record per source and minute.
    let counted = gw
        .audit_records()
        .await
        .into_iter()
        .find(|b| b["kind"] == "auth_failures")
        .expect("an auth_failures record");
    assert!(counted.to_string().contains("console"), "{counted}");
    assert!(
        !counted.to_string().contains(&unknown),
        "no key in the record"
    );
    // A sign-in from another site is refused before the key is looked at.
    let page = b
        .post_from("/sign-in", &[("key", &admin)], Some("http://evil.example"))
        .await;
    assert_eq!(page.status, 403);
    assert!(b.cookie.is_none());

    let page = b.sign_in(&admin).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), "/activity");
    let cookie = page.headers[SET_COOKIE]
        .to_str()
        .expect("cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Secure"), "not configured: {cookie}");
    let page = b.get("/activity").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Signed in with admin"));
    assert!(!page.body.contains(&admin), "the key never reaches a page");
    // Signed in, the sign-in page and the root lead to Activity.
    assert_eq!(b.get("/sign-in").await.location(), "/activity");
    assert_eq!(b.get("/").await.location(), "/activity");

    let csrf = page.csrf();
    let page = b.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 303);
    assert!(page.headers[SET_COOKIE]
        .to_str()
        .expect("cookie")
        .contains("Max-Age=0"));
    assert!(b.cookie.is_none());
    // The old cookie no longer opens anything.
    let old = cookie.split(';').next().expect("pair").to_owned();
    b.cookie = Some(old.clone());
    assert_eq!(b.get("/activity").await.location(), "/sign-in");

    // A session ends when its key is disabled.
    b.cookie = None;
    b.sign_in(&admin).await;
    assert_eq!(b.get("/keys").await.status, 200);
    let hash = switchyard_core::keys::hash_key(&admin);
    gw.state
        .store
        .update_key(
            &hash,
            &switchyard_store::KeyUpdate {
                disabled: Some(true),
                ..Default::default()
            },
            gw.state.now_ms(),
        )
        .await
        .expect("disable");
    assert_eq!(b.get("/keys").await.location(), "/sign-in");
    gw.stop().await;
}

#[tokio::test]
async fn changes_without_the_csrf_token_or_from_another_origin_are_refused() {
    let (_mock, gw) = gateway().await;
    let admin = gw.admin_key().await;
    let mut b = Browser::new(&gw);
    b.sign_in(&admin).await;
    let csrf = b.get("/keys").await.csrf();
    let keys_before = gw
        .state
        .store
        .list_keys(ACCOUNT, gw.state.now_ms())
        .await
        .expect("keys")
        .len();
    type Form<'a> = &'a [(&'a str, &'a str)];
    let attempts: [(Form, Option<&str>); 5] = [
        (&[("name", "no-token")], Some(&gw.base)),
        (&[("name", "bad-token"), ("csrf", "forged")], Some(&gw.base)),
        (&[("name", "empty-token"), ("csrf", "")], Some(&gw.base)),
        (
            &[("name", "cross-site"), ("csrf", &csrf)],
            Some("http://evil.example"),
        ),
        (&[("name", "opaque"), ("csrf", &csrf)], Some("null")),
    ];
    for (form, origin) in attempts {
        let page = b.post_from("/keys", form, origin).await;
        assert_eq!(page.status, 403, "{form:?} {origin:?}");
        assert!(page.body.contains("Change refused"), "{}", page.body);
    }
    // Other changes are guarded alike.
    for path in [
        "/credits",
        "/settings",
        "/guardrails",
        "/audit/verify",
        "/sign-out",
    ] {
        let page = b.post(path, &[("amount", "5")]).await;
        assert_eq!(page.status, 403, "{path}");
    }
    let keys_after = gw
        .state
        .store
        .list_keys(ACCOUNT, gw.state.now_ms())
        .await
        .expect("keys")
        .len();
    assert_eq!(keys_before, keys_after, "no key was created");
    // With the token, from the page, it is made; a client without an Origin is fine too.
    let page = b.post("/keys", &[("name", "made"), ("csrf", &csrf)]).await;
    assert_eq!(page.status, 201, "{}", page.body);
    let page = b
        .post_from("/keys", &[("name", "scripted"), ("csrf", &csrf)], None)
        .await;
    assert_eq!(page.status, 201, "{}", page.body);
    gw.stop().await;
}

#[tokio::test]
async fn keys_made_and_changed_in_the_console_are_what_the_api_serves() {
    let (_mock, gw) = gateway().await;
    let admin = gw.admin_key().await;
    let mut b = Browser::new(&gw);
    b.sign_in(&admin).await;
    let csrf = b.get("/keys").await.csrf();
    // Validation is the API's: its messages come back.
    for (form, says) in [
        (vec![("name", "  ")], "name"),
        (
            vec![("name", "x"), ("limit", "lots")],
            "Invalid field `limit`",
        ),
        (
            vec![("name", "x"), ("limit", "-1")],
            "limit must not be negative",
        ),
        (vec![("name", "x"), ("limit_reset", "hourly")], "hourly"),
        (vec![("name", "x"), ("expires_at", "soon")], "expires_at"),
        (
            vec![("name", "x"), ("expires_at", "2001-01-01T00:00:00Z")],
            "expires_at must be in the future",
        ),
    ] {
        let mut form = form.clone();
        form.push(("csrf", &csrf));
        let page = b.post("/keys", &form).await;
        assert_eq!(page.status, 400, "{form:?}: {}", page.body);
        assert!(
            page.body.contains(says),
            "{form:?} lacks {says}: {}",
            page.body
        );
    }
    let page = b
        .post(
            "/keys",
            &[
                ("name", "ci"),
                ("limit", "2.50"),
                ("limit_reset", "daily"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(page.status, 201, "{}", page.body);
    let key = page.text_of("id=\"new-key\"");
    assert!(key.starts_with("sk-or-v1-"), "{key}");
    assert!(page.body.contains("not shown again"));
    let hash = switchyard_core::keys::hash_key(&key);
    // The API sees the key as made, and serves it.
    let r = gw
        .http
        .get(gw.url(&format!("/api/v1/keys/{hash}")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("send");
    let record: Value = r.json().await.expect("json");
    assert_eq!(record["data"]["name"], "ci");
    assert_eq!(record["data"]["limit"], 2.5);
    assert_eq!(record["data"]["limit_reset"], "daily");
    assert_eq!(chat(&gw, &key, None).await.0, 200);
    // The secret is shown once: the list does not carry it.
    let page = b.get("/keys").await;
    assert!(!page.body.contains(&key));
    assert!(page.body.contains(&format!("data-key=\"{hash}\"")));

    // Limits, then disable: the API refuses the key.
    let path = format!("/keys/{hash}");
    let page = b
        .post(
            &path,
            &[
                ("action", "limits"),
                ("limit", "1"),
                ("limit_reset", "weekly"),
                ("current_expires_at", ""),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let k = gw
        .state
        .store
        .key(&hash, gw.state.now_ms())
        .await
        .expect("key")
        .expect("exists");
    assert_eq!(k.limit, Some(Money::parse_usd("1").expect("usd")));
    assert_eq!(k.limit_reset.map(|r| r.as_str()), Some("weekly"));
    let page = b
        .post(&path, &[("action", "disable"), ("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Key disabled."));
    let (status, _) = chat(&gw, &key, None).await;
    assert_eq!(status, 401, "a disabled key is refused at once");
    b.post(&path, &[("action", "enable"), ("csrf", &csrf)])
        .await;
    assert_eq!(chat(&gw, &key, None).await.0, 200);

    // A guardrail assigned from the key's row.
    let page = b
        .post(
            "/guardrails",
            &[
                (
                    "body",
                    r#"{"name": "only-beta", "allowed_providers": ["beta"]}"#,
                ),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let bad = b
        .post(
            "/guardrails",
            &[("body", r#"{"name": "x", "colour": 1}"#), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("unknown field `colour`"), "{}", bad.body);
    let guardrail = gw
        .state
        .store
        .list_guardrails(ACCOUNT)
        .await
        .expect("list")
        .remove(0)
        .id;
    let page = b
        .post(
            &path,
            &[
                ("action", "guardrail"),
                ("guardrail", &guardrail),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        chat(&gw, &key, None).await.0,
        403,
        "the guardrail allows no provider here"
    );
    b.post(
        &path,
        &[("action", "guardrail"), ("guardrail", ""), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(chat(&gw, &key, None).await.0, 200);

    // Deleted: refused, and gone from the API.
    let page = b
        .post(&path, &[("action", "delete"), ("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(chat(&gw, &key, None).await.0, 401);
    // Another account's key or a made-up hash is not found, as in the API.
    let page = b
        .post(
            &format!("/keys/{}", "a".repeat(64)),
            &[("action", "disable"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, 404);
    gw.stop().await;
}

/// The numbers of the Activity page's `data-api` figures.
fn api_figures(page: &Page) -> (String, String, String, String) {
    (
        page.text_of("data-api=\"spend\""),
        page.text_of("data-api=\"requests\""),
        page.text_of("data-api=\"prompt\""),
        page.text_of("data-api=\"completion\""),
    )
}

#[tokio::test]
async fn activity_figures_match_the_activity_api() {
    let (_mock, gw) = gateway().await;
    let admin = gw.admin_key().await;
    let other = gw
        .new_key(KeySpec {
            name: "other".into(),
            ..KeySpec::default()
        })
        .await;
    assert_eq!(chat(&gw, &gw.key, Some("alice")).await.0, 200);
    assert_eq!(chat(&gw, &gw.key, Some("bob")).await.0, 200);
    assert_eq!(chat(&gw, &other, None).await.0, 200);
    gw.settled().await;
    let mut b = Browser::new(&gw);
    b.sign_in(&admin).await;
    // Today's requests show at once; the API reports completed days only.
    let page = b.get("/activity").await;
    assert_eq!(page.text_of("data-total=\"requests\""), "3");
    assert_eq!(page.text_of("data-total=\"spend\""), "$0.000054");
    assert_eq!(api_figures(&page).1, "0");
    assert!(page.body.contains("alice") && page.body.contains("bob"));
    assert!(page.body.contains("<svg"), "charts are inline SVG");

    gw.advance_clock(DAY_MS);
    for (query, key) in [
        ("", None),
        ("&key=", Some(switchyard_core::keys::hash_key(&other))),
    ] {
        let path = match &key {
            Some(h) => format!("/activity?days=7{query}{h}"),
            None => "/activity?days=7".to_owned(),
        };
        let page = b.get(&path).await;
        assert_eq!(page.status, 200);
        let api = match &key {
            Some(h) => format!("/api/v1/activity?api_key_hash={h}"),
            None => "/api/v1/activity".to_owned(),
        };
        let r = gw
            .http
            .get(gw.url(&api))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("send");
        let rows: Value = r.json().await.expect("json");
        let rows = rows["data"].as_array().expect("rows").clone();
        assert!(!rows.is_empty());
        let mut spend = Money::ZERO;
        let (mut requests, mut prompt, mut completion) = (0, 0, 0);
        for row in &rows {
            spend = spend.saturating_add(
                Money::from_json_number(row["usage"].as_number().expect("n")).expect("usd"),
            );
            requests += row["requests"].as_u64().expect("n");
            prompt += row["prompt_tokens"].as_u64().expect("n");
            completion += row["completion_tokens"].as_u64().expect("n");
        }
        assert_eq!(
            api_figures(&page),
            (
                spend.to_string(),
                requests.to_string(),
                prompt.to_string(),
                completion.to_string()
            ),
            "{path}"
        );
        assert_eq!(
            page.text_of("data-total=\"requests\""),
            requests.to_string(),
            "nothing today: the totals are the API's"
        );
    }
    // A window the page does not offer is said so.
    let page = b.get("/activity?days=5").await;
    assert!(page.body.contains("1, 7 or 30"));
    gw.stop().await;
}

#[tokio::test]
async fn generations_show_the_routing_decision_audit_chain_and_audited_content() {
    let (_mock, gw) = gateway().await;
    gw.state
        .store
        .set_account_settings(ACCOUNT, &json!({"prompt_logging": true}))
        .await
        .expect("settings");
    let admin = gw.admin_key().await;
    let (status, first) = chat(&gw, &gw.key, None).await;
    assert_eq!(status, 200);
    let (status, id) = chat(&gw, &gw.key, None).await;
    assert_eq!(status, 200);
    gw.settled().await;
    let mut b = Browser::new(&gw);
    b.sign_in(&admin).await;
    let page = b.get("/generations").await;
    assert!(page.body.contains(&id), "{}", page.body);
    for (query, found) in [
        (format!("q={id}"), true),
        ("q=test%2Fmod".to_owned(), true),
        ("q=nothing-like-it".to_owned(), false),
        ("status=failed".to_owned(), false),
        ("status=ok&provider=alpha".to_owned(), true),
        ("user=nobody".to_owned(), false),
    ] {
        let page = b.get(&format!("/generations?{query}")).await;
        assert_eq!(page.status, 200);
        assert_eq!(page.body.contains(&id), found, "{query}");
    }
    let page = b.get(&format!("/generations/{first}")).await;
    assert!(
        page.body.contains("the first record of the chain"),
        "{}",
        page.body
    );
    let page = b.get(&format!("/generations/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for needle in [
        "Routing decision",
        "Candidates, in order",
        "test/model</code> at alpha",
        "Zero data retention",
        "linked to the record before it",
        "Show prompt and completion",
    ] {
        assert!(
            page.body.contains(needle),
            "{needle} missing: {}",
            page.body
        );
    }
    assert!(
        !page.body.contains("\"content\": \"hi\""),
        "content only on demand"
    );
    let csrf = page.csrf();
    let page = b
        .post(&format!("/generations/{id}/content"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("&quot;hi&quot;") || page.body.contains("\"hi\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("content_view"), "the viewing is listed");
    let records = gw
        .state
        .store
        .audit_for_generation(&id)
        .await
        .expect("records");
    let viewing: Value = serde_json::from_str(&records.last().expect("record").body).expect("json");
    assert_eq!(viewing["kind"], "content_view");
    assert_eq!(viewing["key_hash"], switchyard_core::keys::hash_key(&admin));
    // The chain still verifies, from the page.
    let page = b.post("/audit/verify", &[("csrf", &csrf)]).await;
    assert!(
        page.body.contains("data-verified=\"true\""),
        "{}",
        page.body
    );
    // The export holds this account's records.
    let today = switchyard_core::periods::to_iso8601(gw.state.now_ms());
    let day = &today[..10];
    let page = b
        .get(&format!("/audit/export?since={day}&until={day}"))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.headers["content-disposition"]
        .to_str()
        .expect("h")
        .contains("attachment"));
    let lines: Vec<Value> = page
        .body
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    assert!(lines.len() >= 2, "{}", page.body);
    assert!(lines.iter().all(|l| l["record"]["account_id"] == ACCOUNT));
    // Another account's generation is not shown.
    let page = b.get("/generations/gen-does-not-exist").await;
    assert_eq!(page.status, 404);
    gw.stop().await;
}

#[tokio::test]
async fn credits_settings_and_providers_pages() {
    let (_mock, gw) = gateway().await;
    let admin = gw.admin_key().await;
    let mut b = Browser::new(&gw);
    b.sign_in(&admin).await;
    let page = b.get("/credits").await;
    assert_eq!(page.text_of("data-total=\"credits\""), "$10");
    let csrf = page.csrf();
    for (amount, ok) in [
        ("2.5", true),
        ("0", false),
        ("-1", false),
        ("ten", false),
        ("1e7", false),
    ] {
        let page = b
            .post("/credits", &[("amount", amount), ("csrf", &csrf)])
            .await;
        assert_eq!(page.status == 200, ok, "{amount}: {}", page.body);
    }
    let account = gw
        .state
        .store
        .account(ACCOUNT)
        .await
        .expect("a")
        .expect("a");
    assert_eq!(account.credits, Money::parse_usd("12.5").expect("usd"));

    let page = b
        .post(
            "/settings",
            &[
                ("zdr_only", "true"),
                ("ignored_providers", "Beta, gamma"),
                ("data_classification", "confidential"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let stored = gw.state.store.account_settings(ACCOUNT).await.expect("s");
    assert_eq!(stored["zdr_only"], true);
    assert_eq!(stored["ignored_providers"], json!(["beta", "gamma"]));
    assert_eq!(stored["data_classification"], "confidential");
    let page = b
        .post(
            "/settings",
            &[("data_classification", "secretish"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("is unknown"), "{}", page.body);

    let page = b.get("/providers").await;
    for needle in ["ALPHA", "test/model", "$1", "$2", "closed", "not measured"] {
        assert!(page.body.contains(needle), "{needle}: {}", page.body);
    }
    gw.stop().await;
}

#[tokio::test]
async fn the_console_is_absent_when_disabled_and_served_under_its_path() {
    let mock = MockUpstream::start(vec![Reply::Json(200, completion("ok", 1, 1))]).await;
    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0", "0")]))
        .config(|c| c.console.enabled = false)
        .build()
        .await;
    let mut b = Browser::new(&gw);
    let page = b.get("/sign-in").await;
    assert_eq!(page.status, 404);
    assert!(
        page.body.contains("\"error\""),
        "the API's 404: {}",
        page.body
    );
    gw.stop().await;

    let gw = TestGateway::builder(catalog(&[("alpha", &mock.url(), "0", "0")]))
        .config(|c| {
            c.console.path = "/ops".into();
            c.console.secure_cookie = true;
        })
        .build()
        .await;
    let admin = gw.admin_key().await;
    let mut b = Browser::new(&gw);
    assert_eq!(b.get("/ops").await.location(), "/ops/sign-in");
    assert_eq!(b.get("/activity").await.status, 404);
    let page = b.post("/ops/sign-in", &[("key", &admin)]).await;
    assert_eq!(page.location(), "/ops/activity");
    let cookie = page.headers[SET_COOKIE].to_str().expect("c").to_owned();
    assert!(
        cookie.contains("Path=/ops;") && cookie.contains("; Secure"),
        "{cookie}"
    );
    assert_eq!(b.get("/ops/activity").await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn the_keys_page_lists_every_key_past_the_apis_page() {
    let (_mock, gw) = gateway().await;
    let admin = gw.admin_key().await;
    for i in 0..120 {
        gw.new_key(KeySpec {
            name: format!("svc-{i:03}"),
            ..KeySpec::default()
        })
        .await;
    }
    let mut b = Browser::new(&gw);
    b.sign_in(&admin).await;
    let page = b.get("/keys").await;
    assert_eq!(page.status, 200);
    // 120 made here and the harness's own; the management key is not listed, as in the API.
    assert_eq!(page.body.matches("<tr data-key=").count(), 121);
    assert!(page.body.contains("svc-119") && page.body.contains("svc-000"));
    gw.stop().await;
}
