//! The presets operations: a preset saved from each format's body, then read with its
//! versions.

use serde_json::json;

use super::{Checker, Op, World};

const LIST: Op = Op("GET", "/presets");
const GET: Op = Op("GET", "/presets/{slug}");
const VERSIONS: Op = Op("GET", "/presets/{slug}/versions");
const VERSION: Op = Op("GET", "/presets/{slug}/versions/{version}");
const SAVE_CHAT: Op = Op("POST", "/presets/{slug}/chat/completions");
const SAVE_MESSAGES: Op = Op("POST", "/presets/{slug}/messages");
const SAVE_RESPONSES: Op = Op("POST", "/presets/{slug}/responses");

pub async fn check(c: &mut Checker, w: &World) {
    let gw = &w.gw;
    let url = |path: &str| gw.url(&format!("/api/v1{path}"));
    let admin = |method: reqwest::Method, path: &str| {
        gw.http.request(method, url(path)).bearer_auth(&w.admin)
    };
    use reqwest::Method;

    let saves = [
        (
            SAVE_CHAT,
            "/presets/helper/chat/completions",
            json!({"model": "test/model", "temperature": 0.2,
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]}),
        ),
        (
            SAVE_MESSAGES,
            "/presets/helper/messages",
            json!({"model": "test/model", "max_tokens": 100, "system": "Be brief.",
                "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            SAVE_RESPONSES,
            "/presets/helper/responses",
            json!({"model": "test/model", "instructions": "Be brief.", "input": "hi"}),
        ),
    ];
    for (op, path, body) in &saves {
        c.call(*op, admin(Method::POST, path).json(body), 200, "saved")
            .await;
        c.call(
            *op,
            admin(Method::POST, path).json(&json!({"model": 5})),
            400,
            "bad body",
        )
        .await;
        c.call(*op, gw.http.post(url(path)).json(body), 401, "no key")
            .await;
        c.call(
            *op,
            gw.http.post(url(path)).bearer_auth(&gw.key).json(body),
            403,
            "a standard key",
        )
        .await;
    }

    c.call(LIST, admin(Method::GET, "/presets"), 200, "list")
        .await;
    c.call(LIST, admin(Method::GET, "/presets?limit=0"), 400, "limit 0")
        .await;
    c.call(LIST, gw.http.get(url("/presets")), 401, "no key")
        .await;
    let preset = c
        .call(GET, admin(Method::GET, "/presets/helper"), 200, "one")
        .await;
    c.expect(
        preset.body["data"]["designated_version"]["version"] == 3,
        format!("three saves, three versions: {}", preset.body),
    );
    c.call(
        GET,
        admin(Method::GET, "/presets/Bad%20Slug"),
        400,
        "bad slug",
    )
    .await;
    c.call(GET, admin(Method::GET, "/presets/missing"), 404, "unknown")
        .await;
    c.call(GET, gw.http.get(url("/presets/helper")), 401, "no key")
        .await;
    c.call(
        VERSIONS,
        admin(Method::GET, "/presets/helper/versions"),
        200,
        "versions",
    )
    .await;
    c.call(
        VERSIONS,
        admin(Method::GET, "/presets/helper/versions?limit=101"),
        400,
        "limit",
    )
    .await;
    c.call(
        VERSIONS,
        admin(Method::GET, "/presets/missing/versions"),
        404,
        "unknown",
    )
    .await;
    c.call(
        VERSIONS,
        gw.http.get(url("/presets/helper/versions")),
        401,
        "no key",
    )
    .await;
    c.call(
        VERSION,
        admin(Method::GET, "/presets/helper/versions/1"),
        200,
        "first",
    )
    .await;
    c.call(
        VERSION,
        admin(Method::GET, "/presets/helper/versions/zero"),
        400,
        "bad number",
    )
    .await;
    c.call(
        VERSION,
        admin(Method::GET, "/presets/helper/versions/9"),
        404,
        "no such version",
    )
    .await;
    c.call(
        VERSION,
        gw.http.get(url("/presets/helper/versions/1")),
        401,
        "no key",
    )
    .await;
}
