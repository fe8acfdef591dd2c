//! The tools a Responses client runs itself, as the chat model sees them, and the way back.
//!
//! The Responses API has three kinds of client-run tools where the chat request has one:
//!
//! - `function` tools are chat function tools as they are.
//! - `custom` tools take free-form text instead of JSON arguments, optionally constrained by a
//!   Lark or regular-expression grammar. Chat models only call tools with JSON arguments, so a
//!   custom tool becomes a function tool with one required string parameter, `input`, and its
//!   grammar is written into the description, where the model reads it: no chat provider takes a
//!   grammar for a tool's arguments, and the description is the only place the model looks. A
//!   call's `input` argument comes back as the `custom_tool_call`'s `input`.
//! - `namespace` tools group function and custom tools. The chat request has no groups, so each
//!   member becomes a tool of its own named `<namespace>__<name>`, the flat name OpenAI's clients
//!   use where a boundary cannot keep the split, and a call of it comes back with the namespace
//!   and the member's own name, as OpenAI returns it.
//!
//! Tools arrive in the request's `tools` and in `additional_tools` input items (tools made
//! available at a point of the conversation); the chat request has one tool list for the whole
//! conversation, so they are merged into it, in order. [`ToolKinds`] remembers what each chat
//! tool name was declared as, so that the answer renders each call as the item the client
//! expects.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use switchyard_core::chat::json_type;

use super::types::{err, ResponsesError};

/// Between a namespace and a member's name in the member's chat tool name.
const NAMESPACE_SEPARATOR: &str = "__";

/// The chat tool name of a namespace member: `<namespace>__<name>`, with stray underscores around
/// the separator trimmed, as OpenAI's clients flatten namespaced tool names.
pub(super) fn flat_name(namespace: &str, name: &str) -> String {
    format!(
        "{}{NAMESPACE_SEPARATOR}{}",
        namespace.trim_end_matches('_'),
        name.trim_start_matches('_')
    )
}

/// A tool the client declared, as its calls are rendered back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Declared {
    /// The namespace the tool was declared in.
    pub(super) namespace: Option<String>,
    /// The tool's own name (inside its namespace).
    pub(super) name: String,
    /// Whether it is a `custom` tool, called with free-form text rather than JSON arguments.
    pub(super) custom: bool,
}

/// The client's tools by the name the chat model calls them with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ToolKinds {
    by_chat_name: BTreeMap<String, Declared>,
}

impl ToolKinds {
    /// The tools of a Responses request body the gateway accepted. A body that would be refused
    /// declares nothing: its calls render as plain function calls.
    pub(super) fn of(request: &Value) -> ToolKinds {
        request
            .as_object()
            .and_then(|body| collect(body).ok())
            .map(|(_, kinds)| kinds)
            .unwrap_or_default()
    }

    fn declare(
        &mut self,
        chat_name: String,
        tool: Declared,
        at: &str,
    ) -> Result<(), ResponsesError> {
        if self.by_chat_name.contains_key(&chat_name) {
            return err(format!(
                "{at}.name: a tool named {} is already declared; tool names must be unique (namespace members are named namespace__name)",
                switchyard_core::parse_error::name(&chat_name)
            ));
        }
        self.by_chat_name.insert(chat_name, tool);
        Ok(())
    }

    /// What the chat tool `chat_name` was declared as. A name that was not declared but is the
    /// own name of exactly one namespace member is that member: a model may leave out the
    /// namespace it read in the tool's name.
    pub(super) fn get(&self, chat_name: &str) -> Option<&Declared> {
        if let Some(tool) = self.by_chat_name.get(chat_name) {
            return Some(tool);
        }
        self.only_member(chat_name).map(|(_, tool)| tool)
    }

    /// The chat tool name of a call the client hands back as `namespace` and `name`. A call
    /// without a namespace whose name is no declared tool but the own name of exactly one
    /// namespace member is that member's call (clients echo what they were sent, and servers
    /// differ in whether they send the namespace).
    pub(super) fn chat_name(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(namespace) => flat_name(namespace, name),
            None if self.by_chat_name.contains_key(name) => name.to_owned(),
            None => self
                .only_member(name)
                .map_or_else(|| name.to_owned(), |(chat_name, _)| chat_name.clone()),
        }
    }

    fn only_member(&self, name: &str) -> Option<(&String, &Declared)> {
        let mut members = self
            .by_chat_name
            .iter()
            .filter(|(_, t)| t.namespace.is_some() && t.name == name);
        let first = members.next()?;
        members.next().is_none().then_some(first)
    }
}

/// The tools of a Responses request: the request's `tools`, then the tools of each
/// `additional_tools` input item in order, as chat tool definitions, with what each was.
pub(super) fn collect(
    body: &Map<String, Value>,
) -> Result<(Vec<Value>, ToolKinds), ResponsesError> {
    let mut chat = Vec::new();
    let mut kinds = ToolKinds::default();
    match body.get("tools") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, tool) in list.iter().enumerate() {
                declare_tool(tool, &format!("tools[{i}]"), None, &mut chat, &mut kinds)?;
            }
        }
        Some(_) => return err("tools: must be an array"),
    }
    let items = body.get("input").and_then(Value::as_array);
    for (i, item) in items.into_iter().flatten().enumerate() {
        if item.get("type").and_then(Value::as_str) != Some("additional_tools") {
            continue;
        }
        let at = format!("input[{i}]");
        let Some(obj) = item.as_object() else {
            return err(format!("{at}: must be an object"));
        };
        for (key, value) in obj {
            match key.as_str() {
                "type" | "id" => {}
                // Who made the tools available: the chat request's one tool list has no author.
                "role" => {
                    if !value.is_string() && !value.is_null() {
                        return err(format!("{at}.role: must be a string"));
                    }
                }
                "tools" => {}
                other => {
                    return err(format!(
                        "{}: unknown field",
                        switchyard_core::parse_error::field(&at, other)
                    ))
                }
            }
        }
        let Some(list) = obj.get("tools").and_then(Value::as_array) else {
            return err(format!("{at}.tools: must be an array of tools"));
        };
        for (j, tool) in list.iter().enumerate() {
            declare_tool(
                tool,
                &format!("{at}.tools[{j}]"),
                None,
                &mut chat,
                &mut kinds,
            )?;
        }
    }
    Ok((chat, kinds))
}

/// A namespace a member tool is declared in: its name and its description.
type Namespace<'a> = (&'a str, &'a str);

fn declare_tool(
    tool: &Value,
    at: &str,
    namespace: Option<Namespace<'_>>,
    chat: &mut Vec<Value>,
    kinds: &mut ToolKinds,
) -> Result<(), ResponsesError> {
    let Some(obj) = tool.as_object() else {
        return err(format!("{at}: must be an object"));
    };
    let kind = match obj.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        None | Some(Value::Null) => return err(format!("{at}.type: field required")),
        Some(_) => return err(format!("{at}.type: must be a string")),
    };
    match kind {
        "function" | "custom" => {
            let name = match obj.get("name") {
                Some(Value::String(name)) if !name.is_empty() => name.as_str(),
                _ => return err(format!("{at}.name: field required")),
            };
            let chat_name = namespace.map_or_else(|| name.to_owned(), |(ns, _)| flat_name(ns, name));
            let custom = kind == "custom";
            let function = if custom {
                custom_function(&chat_name, obj, at, namespace)?
            } else {
                function(&chat_name, obj, at, namespace)?
            };
            let declared = Declared {
                namespace: namespace.map(|(ns, _)| ns.to_owned()),
                name: name.to_owned(),
                custom,
            };
            kinds.declare(chat_name, declared, at)?;
            chat.push(json!({"type": "function", "function": function}));
            Ok(())
        }
        "namespace" if namespace.is_none() => {
            for key in obj.keys() {
                if !matches!(key.as_str(), "type" | "name" | "description" | "tools") {
                    return err(format!(
                        "{}: unknown field",
                        switchyard_core::parse_error::field(at, key)
                    ));
                }
            }
            let name = match obj.get("name") {
                Some(Value::String(name)) if !name.is_empty() => name.as_str(),
                _ => return err(format!("{at}.name: field required")),
            };
            let description = match obj.get("description") {
                None | Some(Value::Null) => "",
                Some(Value::String(d)) => d.as_str(),
                Some(_) => return err(format!("{at}.description: must be a string")),
            };
            let Some(members) = obj.get("tools").and_then(Value::as_array) else {
                return err(format!("{at}.tools: must be an array of function and custom tools"));
            };
            for (j, member) in members.iter().enumerate() {
                declare_tool(
                    member,
                    &format!("{at}.tools[{j}]"),
                    Some((name, description)),
                    chat,
                    kinds,
                )?;
            }
            Ok(())
        }
        "namespace" => err(format!(
            "{at}.type: a namespace holds function and custom tools, not other namespaces"
        )),
        kind => err(format!(
            "{at}.type: built-in tool {} is not supported: this gateway runs no tools; declare function, custom or namespace tools",
            switchyard_core::parse_error::name(kind)
        )),
    }
}

/// The description the model sees for a tool: its own and, for a namespace member, the
/// namespace's, which the flat chat tool list has no other place for.
fn describe(own: Option<&str>, namespace: Option<Namespace<'_>>) -> Option<String> {
    let note = namespace
        .filter(|(_, description)| !description.trim().is_empty())
        .map(|(name, description)| {
            format!(
                "This tool belongs to the `{name}` group: {}",
                description.trim()
            )
        });
    match (own, note) {
        (own, None) => own.map(str::to_owned),
        (None | Some(""), Some(note)) => Some(note),
        (Some(own), Some(note)) => Some(format!("{}\n\n{note}", own.trim_end())),
    }
}

fn optional_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<&'a str>, ResponsesError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => err(format!(
            "{at}.{key}: must be a string, not {}",
            json_type(other)
        )),
    }
}

fn check_defer_loading(v: &Value, at: &str) -> Result<(), ResponsesError> {
    if v.as_bool() == Some(true) {
        return err(format!(
            "{at}.defer_loading: not supported: it needs the tool search tool, which this gateway does not run"
        ));
    }
    Ok(())
}

/// A `function` tool's chat definition.
fn function(
    chat_name: &str,
    obj: &Map<String, Value>,
    at: &str,
    namespace: Option<Namespace<'_>>,
) -> Result<Map<String, Value>, ResponsesError> {
    let mut function = Map::new();
    function.insert("name".into(), json!(chat_name));
    for (key, v) in obj {
        match key.as_str() {
            "type" | "name" | "description" => {}
            _ if v.is_null() => {}
            "parameters" | "strict" => {
                function.insert(key.clone(), v.clone());
            }
            "defer_loading" => check_defer_loading(v, at)?,
            other => {
                return err(format!(
                    "{}: unknown field",
                    switchyard_core::parse_error::field(at, other)
                ))
            }
        }
    }
    if let Some(description) = describe(optional_str(obj, "description", at)?, namespace) {
        function.insert("description".into(), json!(description));
    }
    Ok(function)
}

/// A `custom` tool's chat definition: a function taking its free-form input as the one required
/// string `input`. The input's format (plain text, or a Lark or regular-expression grammar) is
/// stated in the description: no chat provider constrains a tool argument by a grammar, so the
/// model's reading of the description is the only way to get the format across; the client checks
/// the input it receives, as it must with any model.
fn custom_function(
    chat_name: &str,
    obj: &Map<String, Value>,
    at: &str,
    namespace: Option<Namespace<'_>>,
) -> Result<Map<String, Value>, ResponsesError> {
    for (key, v) in obj {
        match key.as_str() {
            "type" | "name" | "description" | "format" => {}
            _ if v.is_null() => {}
            "defer_loading" => check_defer_loading(v, at)?,
            other => {
                return err(format!(
                    "{}: unknown field",
                    switchyard_core::parse_error::field(at, other)
                ))
            }
        }
    }
    let mut description = describe(optional_str(obj, "description", at)?, namespace)
        .unwrap_or_default()
        .trim_end()
        .to_owned();
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    description.push_str(
        "Call this tool with its whole input as the string argument `input`: free-form text, not JSON.",
    );
    match obj.get("format") {
        None | Some(Value::Null) => {}
        Some(Value::Object(format)) => {
            let at = format!("{at}.format");
            match format.get("type").and_then(Value::as_str) {
                Some("text") => {}
                Some("grammar") => {
                    let syntax = match format.get("syntax").and_then(Value::as_str) {
                        Some(syntax @ ("lark" | "regex")) => syntax,
                        _ => return err(format!("{at}.syntax: must be \"lark\" or \"regex\"")),
                    };
                    let Some(definition) = format.get("definition").and_then(Value::as_str) else {
                        return err(format!("{at}.definition: field required"));
                    };
                    let rule = if syntax == "lark" {
                        "The input must match this Lark grammar"
                    } else {
                        "The input must match this regular expression"
                    };
                    description.push_str(&format!(
                        " {rule}:\n```{syntax}\n{}\n```",
                        definition.trim_matches('\n')
                    ));
                }
                _ => return err(format!("{at}.type: must be \"text\" or \"grammar\"")),
            }
            for key in format.keys() {
                if !matches!(key.as_str(), "type" | "syntax" | "definition") {
                    return err(format!(
                        "{}: unknown field",
                        switchyard_core::parse_error::field(&at, key)
                    ));
                }
            }
        }
        Some(_) => return err(format!("{at}.format: must be an object")),
    }
    Ok(Map::from_iter([
        ("name".to_owned(), json!(chat_name)),
        ("description".to_owned(), json!(description)),
        (
            "parameters".to_owned(),
            json!({
                "type": "object",
                "properties": {"input": {"type": "string", "description": "The tool's input, as free-form text."}},
                "required": ["input"],
                "additionalProperties": false,
            }),
        ),
    ]))
}

/// The chat `tool_choice` of a Responses one. A function or custom tool is named with its
/// namespace, if any, as the chat tool it became.
pub(super) fn translate_choice(value: &Value, kinds: &ToolKinds) -> Result<Value, ResponsesError> {
    const SHAPES: &str = "\"auto\", \"none\", \"required\", {\"type\": \"function\", \"name\": ...} or {\"type\": \"custom\", \"name\": ...}";
    match value {
        Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => Ok(json!(s)),
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some(kind @ ("function" | "custom")) => {
                let Some(name) = o.get("name").and_then(Value::as_str) else {
                    return err(format!(
                        "tool_choice.name: field required when type is {kind:?}"
                    ));
                };
                for key in o.keys() {
                    if !matches!(key.as_str(), "type" | "name" | "namespace") {
                        return err(format!(
                            "{}: unknown field",
                            switchyard_core::parse_error::field("tool_choice", key)
                        ));
                    }
                }
                let namespace = optional_str(o, "namespace", "tool_choice")?;
                let name = kinds.chat_name(namespace, name);
                Ok(json!({"type": "function", "function": {"name": name}}))
            }
            Some(kind) => err(format!(
                "tool_choice.type: {} is not supported; use {SHAPES}",
                switchyard_core::parse_error::name(kind)
            )),
            None => err("tool_choice.type: field required"),
        },
        _ => err(format!("tool_choice: must be {SHAPES}")),
    }
}

/// The JSON arguments of the chat tool call a custom tool call becomes.
pub(super) fn custom_arguments(input: &str) -> String {
    json!({"input": input}).to_string()
}

/// The free-form input of a custom tool call from the chat call's JSON arguments: their `input`
/// string. Arguments of another shape (a model that did not follow the declared schema) are
/// handed on as they came, so the client still gets what the model wrote.
pub(super) fn custom_input(arguments: &str) -> String {
    declared_input(arguments).unwrap_or_else(|| arguments.to_owned())
}

/// The `input` string of arguments of the declared shape, an object holding it.
pub(super) fn declared_input(arguments: &str) -> Option<String> {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(mut args)) => match args.remove("input") {
            Some(Value::String(input)) => Some(input),
            _ => None,
        },
        _ => None,
    }
}

/// How far [`InputStream`] has read the arguments.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Looking for the `"input": "` that opens the value.
    #[default]
    Key,
    /// Inside the value's string.
    Value,
    /// The value ended, or the arguments are not of the declared shape.
    Done,
}

/// Decodes the `input` string of a custom tool call's JSON arguments while they stream in, so
/// that its text streams as `response.custom_tool_call_input.delta` events.
///
/// It reads only as far as it can be sure of: an escape sequence split between two fragments is
/// decoded once whole. Arguments that are not an object opening with the `input` string stop it;
/// the call's final input then comes from [`custom_input`].
#[derive(Debug, Default)]
pub(super) struct InputStream {
    scan: Scan,
    /// Byte offset in the arguments where reading resumes.
    at: usize,
}

/// The key is looked for in this many leading bytes of the arguments; a model that follows the
/// schema writes it first.
const KEY_WINDOW: usize = 64;

impl InputStream {
    /// The input text decoded from `arguments` (the arguments so far, growing between calls)
    /// since the previous call.
    pub(super) fn advance(&mut self, arguments: &str) -> String {
        if self.scan == Scan::Key {
            match value_start(arguments) {
                Some(Ok(start)) => {
                    self.scan = Scan::Value;
                    self.at = start;
                }
                Some(Err(())) => self.scan = Scan::Done,
                None if arguments.len() > KEY_WINDOW => self.scan = Scan::Done,
                None => {}
            }
        }
        if self.scan != Scan::Value {
            return String::new();
        }
        let bytes = arguments.as_bytes();
        let mut out = String::new();
        let mut i = self.at;
        let mut run = i;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'"' => {
                    out.push_str(&arguments[run..i]);
                    self.scan = Scan::Done;
                    self.at = i + 1;
                    return out;
                }
                b'\\' => {
                    out.push_str(&arguments[run..i]);
                    match unescape(&bytes[i..]) {
                        Escape::Char(c, len) => {
                            out.push(c);
                            i += len;
                            run = i;
                        }
                        Escape::Incomplete => {
                            self.at = i;
                            return out;
                        }
                        Escape::Invalid => {
                            self.scan = Scan::Done;
                            self.at = i;
                            return out;
                        }
                    }
                }
                _ => i += 1,
            }
        }
        out.push_str(&arguments[run..]);
        self.at = bytes.len();
        out
    }
}

/// Where the `input` string's text starts in `arguments`: `None` while the arguments are too
/// short to tell, `Err` when they do not open with the `input` key and a string.
fn value_start(arguments: &str) -> Option<Result<usize, ()>> {
    const KEY: &str = "\"input\"";
    let key = arguments.find(KEY)?;
    if !arguments[..key]
        .trim_start()
        .strip_prefix('{')
        .is_some_and(|rest| rest.trim().is_empty())
    {
        return Some(Err(()));
    }
    let bytes = arguments.as_bytes();
    let mut i = key + KEY.len();
    for expected in [b':', b'"'] {
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        match bytes.get(i) {
            None => return None,
            Some(&b) if b == expected => i += 1,
            Some(_) => return Some(Err(())),
        }
    }
    Some(Ok(i))
}

enum Escape {
    /// The character and the escape's length in bytes.
    Char(char, usize),
    Incomplete,
    Invalid,
}

/// Decodes the JSON escape sequence at the start of `bytes` (which starts with a backslash).
fn unescape(bytes: &[u8]) -> Escape {
    let Some(&kind) = bytes.get(1) else {
        return Escape::Incomplete;
    };
    let simple = match kind {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return unicode_escape(bytes),
        _ => return Escape::Invalid,
    };
    Escape::Char(simple, 2)
}

fn hex4(bytes: &[u8]) -> Option<Result<u32, ()>> {
    let digits = bytes.get(..4)?;
    let text = std::str::from_utf8(digits).map_err(|_| ());
    Some(text.and_then(|t| u32::from_str_radix(t, 16).map_err(|_| ())))
}

/// A `\uXXXX` escape, or a surrogate pair of two. A lone surrogate is U+FFFD, as a lenient
/// decoder reads it.
fn unicode_escape(bytes: &[u8]) -> Escape {
    let high = match hex4(&bytes[2..]) {
        None => return Escape::Incomplete,
        Some(Err(())) => return Escape::Invalid,
        Some(Ok(u)) => u,
    };
    if !(0xD800..0xDC00).contains(&high) {
        return Escape::Char(char::from_u32(high).unwrap_or('\u{FFFD}'), 6);
    }
    match bytes.get(6..8) {
        None if bytes.len() < 8 && bytes[6..].iter().zip(b"\\u").all(|(a, b)| a == b) => {
            return Escape::Incomplete
        }
        Some(b"\\u") => {}
        _ => return Escape::Char('\u{FFFD}', 6),
    }
    match hex4(&bytes[8..]) {
        None => Escape::Incomplete,
        Some(Ok(low)) if (0xDC00..0xE000).contains(&low) => {
            let c = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
            Escape::Char(char::from_u32(c).unwrap_or('\u{FFFD}'), 12)
        }
        Some(_) => Escape::Char('\u{FFFD}', 6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_names_trim_stray_underscores() {
        let cases = [
            ("collaboration", "spawn_agent", "collaboration__spawn_agent"),
            ("mcp__srv_", "_search", "mcp__srv__search"),
            ("functions", "exec", "functions__exec"),
        ];
        for (namespace, name, flat) in cases {
            assert_eq!(flat_name(namespace, name), flat);
        }
    }

    #[test]
    fn custom_input_takes_the_input_string() {
        // (chat arguments, custom tool input)
        let cases = [
            (r#"{"input":"text(\"hi\")"}"#, r#"text("hi")"#),
            (r#"{"input":"a","extra":1}"#, "a"),
            (r#"{"input":5}"#, r#"{"input":5}"#),
            ("not json", "not json"),
            ("", ""),
        ];
        for (arguments, input) in cases {
            assert_eq!(custom_input(arguments), input, "{arguments}");
        }
        assert_eq!(
            custom_input(&custom_arguments("line\n\"q\" ✓")),
            "line\n\"q\" ✓"
        );
    }

    /// Streams `arguments` in pieces of about `size` bytes (cut at char boundaries), and returns
    /// what the stream decoded.
    fn stream_split(arguments: &str, size: usize) -> String {
        let mut stream = InputStream::default();
        let mut so_far = String::new();
        let mut out = String::new();
        let mut rest = arguments;
        while !rest.is_empty() {
            let mut cut = size.min(rest.len());
            while !rest.is_char_boundary(cut) {
                cut += 1;
            }
            so_far.push_str(&rest[..cut]);
            rest = &rest[cut..];
            out.push_str(&stream.advance(&so_far));
        }
        out
    }

    #[test]
    fn the_input_streams_whatever_the_split() {
        let inputs = [
            "text(\"tool-ran\")",
            "a\\b\n\t/ \u{1F600} é \u{8}\u{c}\r",
            "",
            "*** Begin Patch\n*** End Patch",
        ];
        for input in inputs {
            // serde_json escapes quotes, backslashes and control characters; the astral
            // character and the accent are tried both raw and as \u escapes.
            let raw = custom_arguments(input);
            let escaped = raw
                .replace('\u{1F600}', "\\ud83d\\ude00")
                .replace('é', "\\u00e9")
                .replace('/', "\\/");
            let spaced = raw.replacen("{\"input\":", "{ \"input\" :\n ", 1);
            for arguments in [raw, escaped, spaced] {
                let expected = custom_input(&arguments);
                for size in 1..=arguments.len() {
                    assert_eq!(
                        stream_split(&arguments, size),
                        expected,
                        "{arguments:?} in pieces of {size}"
                    );
                }
            }
        }
    }

    #[test]
    fn arguments_of_another_shape_stop_the_stream() {
        // (arguments, what is streamed before the stream stops)
        let cases = [
            (r#"{"other": "x", "input": "y"}"#, ""),
            (r#"{"input": 5}"#, ""),
            (r#"["input"]"#, ""),
            (r#"{"input": "bad \q escape"}"#, "bad "),
        ];
        for (arguments, streamed) in cases {
            let mut stream = InputStream::default();
            assert_eq!(stream.advance(arguments), streamed, "{arguments}");
            assert_eq!(stream.scan, Scan::Done, "{arguments}");
        }
        // The key must come within the first bytes; past them the stream gives up.
        let mut stream = InputStream::default();
        assert_eq!(stream.advance(&" ".repeat(KEY_WINDOW + 1)), "");
        assert_eq!(stream.scan, Scan::Done);
    }

    #[test]
    fn lone_surrogates_read_as_replacement_characters() {
        let cases = [
            (r#"{"input":"\ud83d"}"#, "\u{FFFD}"),
            (r#"{"input":"\ud83dx"}"#, "\u{FFFD}x"),
            (r#"{"input":"\ude00"}"#, "\u{FFFD}"),
            (r#"{"input":"\ud83d\u0041"}"#, "\u{FFFD}A"),
        ];
        for (arguments, decoded) in cases {
            assert_eq!(stream_split(arguments, 1), decoded, "{arguments}");
        }
    }

    #[test]
    fn members_are_found_by_their_own_name_when_unique() {
        let body = json!({"tools": [
            {"type": "namespace", "name": "functions", "description": "", "tools": [
                {"type": "custom", "name": "exec"},
                {"type": "function", "name": "wait"},
            ]},
            {"type": "namespace", "name": "other", "description": "", "tools": [
                {"type": "function", "name": "wait"},
            ]},
            {"type": "function", "name": "plain"},
        ]});
        let kinds = ToolKinds::of(&body);
        assert_eq!(kinds.chat_name(None, "exec"), "functions__exec");
        assert_eq!(
            kinds.chat_name(None, "wait"),
            "wait",
            "ambiguous: left as it is"
        );
        assert_eq!(kinds.chat_name(None, "plain"), "plain");
        assert_eq!(kinds.chat_name(Some("other"), "wait"), "other__wait");
        assert_eq!(
            kinds.get("exec"),
            Some(&Declared {
                namespace: Some("functions".into()),
                name: "exec".into(),
                custom: true
            })
        );
        assert!(kinds.get("wait").is_none());
        assert!(kinds.get("nothing").is_none());
        assert_eq!(ToolKinds::of(&json!({"tools": "x"})), ToolKinds::default());
    }
}
