//! The account operations: the current key, the keys API, credits, activity and guardrails
//! with their key assignments.

use serde_json::json;

use super::{Checker, Op, World};

const KEY: Op = Op("GET", "/key");
const KEYS: Op = Op("GET", "/keys");
const CREATE_KEY: Op = Op("POST", "/keys");
const GET_KEY: Op = Op("GET", "/keys/{hash}");
const UPDATE_KEY: Op = Op("PATCH", "/keys/{hash}");
const DELETE_KEY: Op = Op("DELETE", "/keys/{hash}");
const CREDITS: Op = Op("GET", "/credits");
const ACTIVITY: Op = Op("GET", "/activity");
const GUARDRAILS: Op = Op("GET", "/guardrails");
const CREATE_GUARDRAIL: Op = Op("POST", "/guardrails");
const GET_GUARDRAIL: Op = Op("GET", "/guardrails/{id}");
const UPDATE_GUARDRAIL: Op = Op("PATCH", "/guardrails/{id}");
const DELETE_GUARDRAIL: Op = Op("DELETE", "/guardrails/{id}");
const ALL_ASSIGNMENTS: Op = Op("GET", "/guardrails/assignments/keys");
const ASSIGNMENTS: Op = Op("GET", "/guardrails/{id}/assignments/keys");
const ASSIGN: Op = Op("POST", "/guardrails/{id}/assignments/keys");
const UNASSIGN: Op = Op("POST", "/guardrails/{id}/assignments/keys/remove");

pub async fn check(c: &mut Checker, w: &World) {
    let gw = &w.gw;
    let url = |path: &str| gw.url(&format!("/api/v1{path}"));
    let admin = |method: reqwest::Method, path: &str| {
        gw.http.request(method, url(path)).bearer_auth(&w.admin)
    };
    use reqwest::Method;

    c.call(
        KEY,
        gw.http.get(url("/key")).bearer_auth(&gw.key),
        200,
        "standard",
    )
    .await;
    c.call(
        KEY,
        gw.http.get(url("/key")).bearer_auth(&w.admin),
        200,
        "management",
    )
    .await;
    c.call(KEY, gw.http.get(url("/key")), 401, "no key").await;

    let created = c
        .call(
            CREATE_KEY,
            admin(Method::POST, "/keys")
                .json(&json!({"name": "ci", "limit": 5, "limit_reset": "monthly"})),
            201,
            "created",
        )
        .await;
    let hash = created.body["data"]["hash"]
        .as_str()
        .unwrap_or("none")
        .to_owned();
    c.call(
        CREATE_KEY,
        admin(Method::POST, "/keys").json(&json!({"limit": 1})),
        400,
        "no name",
    )
    .await;
    c.call(
        CREATE_KEY,
        gw.http.post(url("/keys")).json(&json!({"name": "x"})),
        401,
        "no key",
    )
    .await;
    c.call(
        CREATE_KEY,
        gw.http
            .post(url("/keys"))
            .bearer_auth(&gw.key)
            .json(&json!({"name": "x"})),
        403,
        "a standard key",
    )
    .await;
    c.call(KEYS, admin(Method::GET, "/keys"), 200, "list").await;
    c.call(
        KEYS,
        admin(Method::GET, "/keys?offset=x"),
        400,
        "bad offset",
    )
    .await;
    c.call(KEYS, gw.http.get(url("/keys")), 401, "no key").await;
    c.call(
        KEYS,
        gw.http.get(url("/keys")).bearer_auth(&gw.key),
        403,
        "a standard key",
    )
    .await;
    let one = format!("/keys/{hash}");
    c.call(GET_KEY, admin(Method::GET, &one), 200, "one").await;
    c.call(
        GET_KEY,
        admin(Method::GET, &format!("/keys/{}", "0".repeat(64))),
        404,
        "unknown",
    )
    .await;
    c.call(GET_KEY, gw.http.get(url(&one)), 401, "no key").await;
    c.call(
        UPDATE_KEY,
        admin(Method::PATCH, &one).json(&json!({"name": "ci-2", "disabled": true})),
        200,
        "updated",
    )
    .await;
    c.call(
        UPDATE_KEY,
        admin(Method::PATCH, &one).json(&json!({"limit": -1})),
        400,
        "bad limit",
    )
    .await;
    c.call(
        UPDATE_KEY,
        admin(Method::PATCH, &format!("/keys/{}", "0".repeat(64))).json(&json!({"name": "x"})),
        404,
        "unknown",
    )
    .await;
    c.call(
        UPDATE_KEY,
        gw.http.patch(url(&one)).json(&json!({"name": "x"})),
        401,
        "no key",
    )
    .await;

    c.call(CREDITS, admin(Method::GET, "/credits"), 200, "credits")
        .await;
    c.call(CREDITS, gw.http.get(url("/credits")), 401, "no key")
        .await;
    c.call(
        CREDITS,
        gw.http.get(url("/credits")).bearer_auth(&gw.key),
        403,
        "a standard key",
    )
    .await;

    c.call(ACTIVITY, admin(Method::GET, "/activity"), 200, "activity")
        .await;
    c.call(
        ACTIVITY,
        admin(Method::GET, "/activity?date=yesterday"),
        400,
        "bad date",
    )
    .await;
    c.call(ACTIVITY, gw.http.get(url("/activity")), 401, "no key")
        .await;
    c.call(
        ACTIVITY,
        gw.http.get(url("/activity")).bearer_auth(&gw.key),
        403,
        "a standard key",
    )
    .await;

    let guardrail = c
        .call(
            CREATE_GUARDRAIL,
            admin(Method::POST, "/guardrails").json(&json!({"name": "prod", "limit_usd": 50,
                "reset_interval": "monthly", "allowed_providers": ["good"],
                "content_filter_builtins": [{"slug": "email", "action": "redact"}]})),
            201,
            "created",
        )
        .await;
    let id = guardrail.body["data"]["id"]
        .as_str()
        .unwrap_or("none")
        .to_owned();
    c.call(
        CREATE_GUARDRAIL,
        admin(Method::POST, "/guardrails").json(&json!({"name": "x", "colour": "red"})),
        400,
        "unknown field",
    )
    .await;
    c.call(
        CREATE_GUARDRAIL,
        gw.http.post(url("/guardrails")).json(&json!({"name": "x"})),
        401,
        "no key",
    )
    .await;
    c.call(
        CREATE_GUARDRAIL,
        gw.http
            .post(url("/guardrails"))
            .bearer_auth(&gw.key)
            .json(&json!({"name": "x"})),
        403,
        "a standard key",
    )
    .await;
    c.call(GUARDRAILS, admin(Method::GET, "/guardrails"), 200, "list")
        .await;
    c.call(
        GUARDRAILS,
        admin(Method::GET, "/guardrails?limit=x"),
        400,
        "bad limit",
    )
    .await;
    c.call(GUARDRAILS, gw.http.get(url("/guardrails")), 401, "no key")
        .await;
    let path = format!("/guardrails/{id}");
    let unknown = "/guardrails/00000000-0000-0000-0000-000000000000";
    c.call(GET_GUARDRAIL, admin(Method::GET, &path), 200, "one")
        .await;
    c.call(GET_GUARDRAIL, admin(Method::GET, unknown), 404, "unknown")
        .await;
    c.call(GET_GUARDRAIL, gw.http.get(url(&path)), 401, "no key")
        .await;
    c.call(
        UPDATE_GUARDRAIL,
        admin(Method::PATCH, &path)
            .json(&json!({"description": "production", "ignored_models": ["test/slow"]})),
        200,
        "updated",
    )
    .await;
    c.call(
        UPDATE_GUARDRAIL,
        admin(Method::PATCH, &path).json(&json!({"reset_interval": "hourly"})),
        400,
        "bad interval",
    )
    .await;
    c.call(
        UPDATE_GUARDRAIL,
        admin(Method::PATCH, unknown).json(&json!({"name": "x"})),
        404,
        "unknown",
    )
    .await;
    c.call(
        UPDATE_GUARDRAIL,
        gw.http.patch(url(&path)).json(&json!({"name": "x"})),
        401,
        "no key",
    )
    .await;

    let assignments = format!("{path}/assignments/keys");
    c.call(
        ASSIGN,
        admin(Method::POST, &assignments).json(&json!({"key_hashes": [hash]})),
        200,
        "assigned",
    )
    .await;
    // A key under the guardrail sees only the models its providers serve.
    let restricted = c
        .call(
            CREATE_KEY,
            admin(Method::POST, "/keys").json(&json!({"name": "restricted"})),
            201,
            "for the guardrail",
        )
        .await;
    let restricted_key = restricted.body["key"].as_str().unwrap_or("none").to_owned();
    let restricted_hash = restricted.body["data"]["hash"]
        .as_str()
        .unwrap_or("none")
        .to_owned();
    c.call(
        ASSIGN,
        admin(Method::POST, &assignments).json(&json!({"key_hashes": [restricted_hash]})),
        200,
        "assigned",
    )
    .await;
    let mine = c
        .call(
            Op("GET", "/models/user"),
            gw.http
                .get(url("/models/user"))
                .bearer_auth(&restricted_key),
            200,
            "under a guardrail",
        )
        .await;
    let ids: Vec<&str> = mine.body["data"]
        .as_array()
        .map(|d| d.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
    c.expect(
        ids == ["test/model", "test/fallback"],
        format!("the guardrail allows the provider good only: {ids:?}"),
    );
    c.call(
        ASSIGN,
        admin(Method::POST, &assignments).json(&json!({"key_hashes": "x"})),
        400,
        "bad body",
    )
    .await;
    c.call(
        ASSIGN,
        admin(Method::POST, &format!("{unknown}/assignments/keys"))
            .json(&json!({"key_hashes": [hash]})),
        404,
        "unknown",
    )
    .await;
    c.call(
        ASSIGN,
        gw.http
            .post(url(&assignments))
            .json(&json!({"key_hashes": []})),
        401,
        "no key",
    )
    .await;
    c.call(ASSIGNMENTS, admin(Method::GET, &assignments), 200, "listed")
        .await;
    c.call(
        ASSIGNMENTS,
        admin(Method::GET, &format!("{unknown}/assignments/keys")),
        404,
        "unknown",
    )
    .await;
    c.call(ASSIGNMENTS, gw.http.get(url(&assignments)), 401, "no key")
        .await;
    c.call(
        ALL_ASSIGNMENTS,
        admin(Method::GET, "/guardrails/assignments/keys"),
        200,
        "all",
    )
    .await;
    c.call(
        ALL_ASSIGNMENTS,
        gw.http.get(url("/guardrails/assignments/keys")),
        401,
        "no key",
    )
    .await;
    let remove = format!("{assignments}/remove");
    c.call(
        UNASSIGN,
        admin(Method::POST, &remove).json(&json!({"key_hashes": [hash]})),
        200,
        "unassigned",
    )
    .await;
    c.call(
        UNASSIGN,
        admin(Method::POST, &remove).json(&json!({})),
        400,
        "no hashes",
    )
    .await;
    c.call(
        UNASSIGN,
        admin(Method::POST, &format!("{unknown}/assignments/keys/remove"))
            .json(&json!({"key_hashes": [hash]})),
        404,
        "unknown",
    )
    .await;
    c.call(
        UNASSIGN,
        gw.http.post(url(&remove)).json(&json!({"key_hashes": []})),
        401,
        "no key",
    )
    .await;

    c.call(
        DELETE_GUARDRAIL,
        admin(Method::DELETE, &path),
        200,
        "deleted",
    )
    .await;
    c.call(DELETE_GUARDRAIL, admin(Method::DELETE, &path), 404, "gone")
        .await;
    c.call(DELETE_GUARDRAIL, gw.http.delete(url(&path)), 401, "no key")
        .await;
    c.call(DELETE_KEY, admin(Method::DELETE, &one), 200, "deleted")
        .await;
    c.call(DELETE_KEY, admin(Method::DELETE, &one), 404, "gone")
        .await;
    c.call(DELETE_KEY, gw.http.delete(url(&one)), 401, "no key")
        .await;
}
