//! The presets: saved from each inference format's body, read back with their versions.

use serde_json::json;

use super::{Checker, Op, World};

const LIST: Op = Op("GET", "/presets");
const GET: Op = Op("GET", "/presets/{slug}");
const SAVE_CHAT: Op = Op("POST", "/presets/{slug}/chat/completions");
const SAVE_MESSAGES: Op = Op("POST", "/presets/{slug}/messages");
const SAVE_RESPONSES: Op = Op("POST", "/presets/{slug}/responses");
const VERSIONS: Op = Op("GET", "/presets/{slug}/versions");
const VERSION: Op = Op("GET", "/presets/{slug}/versions/{version}");

pub async fn check(c: &mut Checker, w: &World) {
    let gw = &w.gw;
    let url = |path: &str| gw.url(&format!("/api/v1{path}"));
    let admin_get = |path: &str| gw.http.get(url(path)).bearer_auth(&w.admin);
    let admin_post = |path: &str| gw.http.post(url(path)).bearer_auth(&w.admin);

    let chat = json!({"model": "test/model", "temperature": 0.5,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]});
    c.call(
        SAVE_CHAT,
        admin_post("/presets/brief/chat/completions").json(&chat),
        200,
        "created",
    )
    .await;
    c.call(
        SAVE_CHAT,
        admin_post("/presets/brief/chat/completions").json(&json!({"messages": "text"})),
        400,
        "messages not a list",
    )
    .await;
    c.call(
        SAVE_CHAT,
        gw.http
            .post(url("/presets/brief/chat/completions"))
            .json(&chat),
        401,
        "no key",
    )
    .await;
    c.call(
        SAVE_CHAT,
        gw.http
            .post(url("/presets/brief/chat/completions"))
            .bearer_auth(&gw.key)
            .json(&chat),
        403,
        "standard key",
    )
    .await;
    c.call(
        SAVE_MESSAGES,
        admin_post("/presets/brief/messages").json(&json!({"model": "test/model",
            "max_tokens": 100, "system": "Be briefer.",
            "messages": [{"role": "user", "content": "hi"}]})),
        200,
        "new version",
    )
    .await;
    c.call(
        SAVE_MESSAGES,
        admin_post("/presets/brief/messages").json(&json!({"model": "test/model"})),
        400,
        "no messages",
    )
    .await;
    c.call(
        SAVE_MESSAGES,
        gw.http
            .post(url("/presets/brief/messages"))
            .json(&json!({})),
        401,
        "no key",
    )
    .await;
    c.call(
        SAVE_RESPONSES,
        admin_post("/presets/brief/responses").json(&json!({"model": "test/model",
            "instructions": "Briefest.", "input": "hi"})),
        200,
        "new version",
    )
    .await;
    c.call(
        SAVE_RESPONSES,
        admin_post("/presets/brief/responses").json(&json!({"model": "test/model", "input": 3})),
        400,
        "input not text or items",
    )
    .await;
    c.call(
        SAVE_RESPONSES,
        gw.http
            .post(url("/presets/brief/responses"))
            .json(&json!({})),
        401,
        "no key",
    )
    .await;

    c.call(LIST, admin_get("/presets"), 200, "listed").await;
    c.call(LIST, admin_get("/presets?limit=0"), 400, "limit 0")
        .await;
    c.call(LIST, gw.http.get(url("/presets")), 401, "no key")
        .await;
    c.call(GET, admin_get("/presets/brief"), 200, "found").await;
    c.call(GET, admin_get("/presets/absent"), 404, "absent")
        .await;
    c.call(GET, admin_get("/presets/Not%20a%20slug"), 400, "bad slug")
        .await;
    c.call(GET, gw.http.get(url("/presets/brief")), 401, "no key")
        .await;
    c.call(VERSIONS, admin_get("/presets/brief/versions"), 200, "listed")
        .await;
    c.call(
        VERSIONS,
        admin_get("/presets/brief/versions?offset=-1"),
        400,
        "negative offset",
    )
    .await;
    c.call(VERSIONS, admin_get("/presets/absent/versions"), 404, "absent")
        .await;
    c.call(
        VERSIONS,
        gw.http.get(url("/presets/brief/versions")),
        401,
        "no key",
    )
    .await;
    c.call(VERSION, admin_get("/presets/brief/versions/2"), 200, "found")
        .await;
    c.call(VERSION, admin_get("/presets/brief/versions/9"), 404, "absent")
        .await;
    c.call(
        VERSION,
        admin_get("/presets/brief/versions/two"),
        400,
        "not a number",
    )
    .await;
    c.call(
        VERSION,
        gw.http.get(url("/presets/brief/versions/1")),
        401,
        "no key",
    )
    .await;
}
