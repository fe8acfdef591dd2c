//! The contract's OpenAPI document (`tests/contract/openrouter-openapi.json`, copied from
//! OpenRouter) as a validator of answers: the response schema of an operation, a status and a
//! content type, with its `$ref`s resolved inside the document.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::error::ValidationErrorKind;
use jsonschema::Validator;
use serde_json::{json, Value};

/// The document and the validators built from it so far.
pub struct Contract {
    doc: Value,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

/// The HTTP methods an operation of the document may have.
const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

impl Contract {
    /// The contract, read once.
    pub fn get() -> &'static Contract {
        static CONTRACT: OnceLock<Contract> = OnceLock::new();
        CONTRACT.get_or_init(|| {
            let mut p = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            p.extend(["..", "..", "tests", "contract", "openrouter-openapi.json"]);
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("the OpenAPI document {}: {e}", p.display()));
            Contract {
                doc: serde_json::from_str(&text).expect("the OpenAPI document is JSON"),
                validators: Mutex::new(HashMap::new()),
            }
        })
    }

    /// Every operation of the document: (`GET`, `/models`).
    pub fn operations(&self) -> BTreeSet<(String, String)> {
        let mut ops = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                if item.get(*method).is_some() {
                    ops.insert((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        ops
    }

    fn operation(&self, method: &str, path: &str) -> Option<&Value> {
        self.doc["paths"]
            .get(path)?
            .get(method.to_ascii_lowercase())
    }

    /// The statuses the document lists for an operation.
    pub fn statuses(&self, method: &str, path: &str) -> Vec<u16> {
        self.operation(method, path)
            .and_then(|o| o["responses"].as_object())
            .map(|r| r.keys().filter_map(|s| s.parse().ok()).collect())
            .unwrap_or_default()
    }

    /// The schema of an answer, or why there is none.
    fn response_schema(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: &str,
    ) -> Result<Value, String> {
        let op = self
            .operation(method, path)
            .ok_or_else(|| format!("{method} {path} is not an operation of the document"))?;
        let response = op["responses"]
            .get(status.to_string())
            .ok_or_else(|| format!("{method} {path} does not document status {status}"))?;
        let content = response["content"].get(content_type).ok_or_else(|| {
            format!("{method} {path} {status} documents no {content_type} answer")
        })?;
        Ok(content["schema"].clone())
    }

    /// A validator of `schema`, whose `$ref`s point into the document's components.
    fn validator(&self, key: &str, schema: Value) -> Arc<Validator> {
        let mut cache = self.validators.lock().expect("lock");
        if let Some(v) = cache.get(key) {
            return Arc::clone(v);
        }
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        });
        let validator = Arc::new(
            jsonschema::draft202012::options()
                .build(&root)
                .unwrap_or_else(|e| panic!("{key}: the schema does not compile: {e}")),
        );
        cache.insert(key.to_owned(), Arc::clone(&validator));
        validator
    }

    /// What the document finds wrong with an answer, or why it cannot say (an undocumented
    /// status or content type). A provider name outside the contract's enum of OpenRouter's
    /// providers is the one documented exception: the operator names its own providers.
    pub fn errors(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: &str,
        instance: &Value,
    ) -> Result<Vec<String>, String> {
        let schema = self.response_schema(method, path, status, content_type)?;
        let key = format!("{method} {path} {status} {content_type}");
        Ok(self.errors_against(&key, schema, instance))
    }

    /// What `#/components/schemas/<name>` finds wrong with an instance.
    pub fn component_errors(&self, name: &str, instance: &Value) -> Vec<String> {
        let schema = json!({"$ref": format!("#/components/schemas/{name}")});
        self.errors_against(name, schema, instance)
    }

    fn errors_against(&self, key: &str, schema: Value, instance: &Value) -> Vec<String> {
        let validator = self.validator(key, schema);
        validator
            .iter_errors(instance)
            .filter(|e| !is_provider_name(e))
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }
}

/// Whether an error is only a provider's display name outside the contract's enum.
fn is_provider_name(e: &jsonschema::ValidationError<'_>) -> bool {
    matches!(e.kind(), ValidationErrorKind::Enum { .. })
        && e.instance_path().to_string().ends_with("/provider_name")
}
