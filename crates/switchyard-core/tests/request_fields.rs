#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `docs/openrouter-request-fields.md` against the contract: its first table names every field
//! of the OpenAPI document's chat request schema and nothing else, each with a known status;
//! and every field either table lists is one the chat request knows (not refused as unknown).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{json, Value};
use switchyard_core::chat::ChatRequest;

const STATUSES: &[&str] = &["implemented", "refused (400)", "not applicable"];

fn workspace_file(path: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The rows (field, status) of the table under the heading `section`.
fn table(doc: &str, section: &str) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        if line.starts_with("## ") {
            inside = line.trim_start_matches("## ").trim() == section;
            continue;
        }
        if !inside || !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let field = cells[1].trim_matches('`').to_owned();
        rows.push((field, cells[2].to_owned()));
    }
    rows
}

fn schema_fields() -> BTreeSet<String> {
    let contract: Value =
        serde_json::from_str(&workspace_file("tests/contract/openrouter-openapi.json"))
            .expect("the contract is JSON");
    let request = &contract["paths"]["/chat/completions"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    let name = request["$ref"]
        .as_str()
        .and_then(|r| r.rsplit('/').next())
        .expect("the chat request is a named schema");
    contract["components"]["schemas"][name]["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .cloned()
        .collect()
}

#[test]
fn the_table_names_every_field_of_the_contract_and_no_other() {
    let doc = workspace_file("docs/openrouter-request-fields.md");
    let rows = table(&doc, "Fields of the schema");
    let listed: BTreeSet<String> = rows.iter().map(|(f, _)| f.clone()).collect();
    assert_eq!(listed.len(), rows.len(), "a field is listed twice");
    let schema = schema_fields();
    assert!(schema.len() > 30, "the schema was read: {schema:?}");
    let missing: Vec<_> = schema.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&schema).collect();
    assert!(
        missing.is_empty(),
        "fields of the contract missing from the table: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "fields in the table the contract lacks: {extra:?}"
    );

    let outside = table(&doc, "Fields outside the schema");
    assert!(!outside.is_empty());
    for (field, status) in rows.iter().chain(&outside) {
        assert!(
            STATUSES.contains(&status.as_str()),
            "{field}: status {status:?}"
        );
    }
    for (field, _) in &outside {
        assert!(
            !schema.contains(field),
            "{field} is in the schema: move it to the first table"
        );
    }
}

#[test]
fn the_chat_request_knows_every_field_the_table_lists() {
    let doc = workspace_file("docs/openrouter-request-fields.md");
    let rows = table(&doc, "Fields of the schema")
        .into_iter()
        .chain(table(&doc, "Fields outside the schema"));
    for (field, _) in rows {
        if field == "messages" {
            continue;
        }
        // Null is "not set" for every field: the request parses, and the field is no unknown
        // member (which the chat format would refuse).
        let mut body = json!({"messages": [{"role": "user", "content": "x"}]});
        body[&field] = Value::Null;
        let request = ChatRequest::from_value(body).unwrap_or_else(|e| panic!("{field}: {}", e.0));
        assert_eq!(request.unknown_field(), None, "{field}");
    }
}
