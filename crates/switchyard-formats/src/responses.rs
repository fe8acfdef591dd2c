//! OpenAI's Responses API as an *inbound* format: requests sent to the gateway's
//! `/api/v1/responses` become the canonical chat request, and the canonical answer (the OpenAI
//! chat completion, chunk by chunk when streamed) becomes a `response` object and the Responses
//! SSE events.
//!
//! The gateway keeps no conversation state, so this is the *stateless* Responses API: every
//! request carries the whole conversation in `input`.
//!
//! # What is mapped
//!
//! - `input`: a string (one user message) or a list of items. `message` items (roles `user`,
//!   `system`, `developer`, `assistant`; parts `input_text`, `output_text`, `input_image`,
//!   `input_file`, `input_audio`, `input_video`, `refusal`; the `type` may be left out) become
//!   chat messages. `function_call` and `custom_tool_call` items become the assistant's
//!   `tool_calls` (a custom call's text as the `input` argument, a namespaced call under its flat
//!   name); `function_call_output` and `custom_tool_call_output` items (a string or content
//!   parts) become `tool` messages. An assistant turn is the run of consecutive `reasoning`,
//!   assistant `message` and call items: it becomes one chat assistant message, so a reply that
//!   was rendered as `[reasoning, message, function_call, function_call]` comes back as the
//!   single message it was.
//! - Tools: `function`, `custom` and `namespace` tools, in `tools` and in `additional_tools`
//!   input items, become the chat tool list. A `custom` tool becomes a function taking one
//!   required string, `input`, with its format (a Lark or regular-expression grammar) written
//!   into the description: no chat provider constrains arguments by a grammar, so the description
//!   is where the model learns it. A namespace's members become tools named `namespace__name`,
//!   the flat name OpenAI's clients use, the namespace's description added to each. The
//!   `additional_tools` items leave the conversation: the chat request has one tool list, so
//!   tools made available at a point of the conversation join it for the whole of it.
//!   `tool_choice` may name a function or custom tool, with its namespace.
//! - `reasoning` items: `encrypted_content` is opened with the [`Sealer`] and restores the
//!   assistant message's `reasoning_details` exactly as the provider returned them (Anthropic
//!   thinking signatures, Gemini thought signatures, encrypted reasoning). Without it, the
//!   readable text (`content`, else `summary`) becomes the message's `reasoning`, and an
//!   OpenRouter-style `signature` a signed `reasoning.text` detail.
//! - `instructions` is a leading system message; `max_output_tokens` is `max_tokens`;
//!   `text.format` is `response_format` (`json_schema`, `json_object`; `text` is the default);
//!   `text.verbosity` is `verbosity`; `reasoning` {effort, summary, enabled, max_tokens} is the
//!   chat `reasoning`; `safety_identifier` is the end-user id (`user`) when `user` is absent. An
//!   empty `tools` list is no tools, and without tools `tool_choice` auto or none and
//!   `parallel_tool_calls` change nothing and are left out (OpenAI-compatible upstreams refuse
//!   them).
//! - `reasoning.context`: `current_turn` leaves out the reasoning of the assistant messages before
//!   the last user message; `all_turns` and `auto` forward every reasoning item given, which is
//!   what the gateway does anyway.
//! - `prompt_cache_key` is forwarded, and is the sticky-routing `session_id` when the request
//!   has none: both exist to send a conversation to the same backend for cache hits.
//! - `metadata` (at most 16 string pairs) is recorded with the request, never forwarded.
//! - `client_metadata` (Codex's string pairs of session, thread, turn and installation ids) is
//!   checked and neither forwarded nor recorded: it describes the client, not the answer wanted,
//!   so it cannot change the answer, and its ids identify the user's machine.
//! - Fields shared with the chat request keep their chat meaning and are forwarded unchanged:
//!   `model`, `models`, `provider`, `route`, `session_id`, `user`, `stream`, `temperature`,
//!   `top_p`, `top_k`, `frequency_penalty`, `presence_penalty`, `parallel_tool_calls`,
//!   `service_tier`, `plugins`, `trace`, `cache_control`, `prompt_cache_options`.
//! - `store: false`, `background: false`, `truncation: "disabled"` and
//!   `include: ["reasoning.encrypted_content"]` (or `[]`) describe what the gateway always does:
//!   it stores nothing, answers in the foreground, never drops input, and always returns
//!   reasoning sealed in `encrypted_content` (without it a stateless client could not hand
//!   reasoning back).
//!
//! # What is refused, and why
//!
//! Each with a 400 naming the field:
//! - `previous_response_id`, `store: true`, `conversation`, `prompt` and `item_reference` items:
//!   they need state kept between requests.
//! - `background: true`: answers are only given on the request's own connection.
//! - Built-in tools (`web_search`, `file_search`, `computer_use_preview`, `code_interpreter`,
//!   `image_generation`, `mcp`, `local_shell`, ...), their call items and tool choices,
//!   `max_tool_calls`, `stop_server_tools_when` and `defer_loading: true`: the gateway runs no
//!   tools.
//! - Two tools with the same chat name (a namespace member is named `namespace__name`): the
//!   model could not tell them apart.
//! - `truncation: "auto"`: the gateway does not drop parts of the conversation.
//! - `include` values other than `reasoning.encrypted_content`, `top_logprobs`, `debug`,
//!   `image_config` and output `modalities` other than text: the answer has no place for them.
//! - Any other field.
//!
//! # Rendering
//!
//! [`response_from_chat`] and [`StreamTranscoder`] render output items in order: `reasoning`
//! (readable text as `summary_text`, the provider's reasoning details sealed in
//! `encrypted_content`; reasoning text is never written there in the clear), `message`
//! (`output_text`, `refusal`), then the calls: a call of a tool the client declared `custom` is a
//! `custom_tool_call` whose `input` is the call's `input` argument (streamed as
//! `response.custom_tool_call_input.delta` and `.done`), any other a `function_call`; a namespace
//! member's call carries its `namespace` and its own `name`, as OpenAI returns it. What each tool
//! was is read from the request in [`ResponseContext`], so rendering needs nothing else. The
//! response echoes the request parameters the OpenAPI schema requires. A streamed answer is
//! `response.created`, `response.in_progress`, the item events with a strictly increasing
//! `sequence_number`, then `response.completed`, `response.incomplete`, or `error` followed by
//! `response.failed`.

mod answer;
mod input;
mod request;
mod stream;
mod tools;
mod types;

pub use answer::*;
pub use request::*;
pub use stream::*;
pub use types::{ResponsesError, Sealer};

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{json, Value};

    use super::stream::merge_detail;
    use super::*;

    /// Seals by prefixing and reversing the bytes: trivial, reversible, never the plain text.
    struct TestSealer;

    impl Sealer for TestSealer {
        fn seal(&self, plain: &[u8]) -> String {
            let reversed: Vec<u8> = plain.iter().rev().copied().collect();
            format!("t1:{}", String::from_utf8_lossy(&reversed))
        }

        fn open(&self, sealed: &str) -> Option<Vec<u8>> {
            let body = sealed.strip_prefix("t1:")?;
            Some(body.bytes().rev().collect())
        }
    }

    fn translate(body: Value) -> Value {
        request_to_chat(&body, &TestSealer).expect("valid")
    }

    fn refusal(body: Value) -> String {
        request_to_chat(&body, &TestSealer).expect_err("refused").0
    }

    fn with(fields: Value) -> Value {
        let mut body = json!({"model": "m/x", "input": "hi"});
        for (k, v) in fields.as_object().expect("object") {
            body[k.as_str()] = v.clone();
        }
        body
    }

    /// The parameters of the function a custom tool becomes.
    fn input_param() -> Value {
        json!({"type": "object", "properties": {"input": {"type": "string", "description": "The tool's input, as free-form text."}}, "required": ["input"], "additionalProperties": false})
    }

    #[test]
    fn fields_map_to_the_chat_request() {
        // (Responses fields, expected chat fields)
        let cases = [
            (json!({"max_output_tokens": 50}), json!({"max_tokens": 50})),
            (
                json!({"temperature": 0.2, "top_p": 0.5}),
                json!({"temperature": 0.2, "top_p": 0.5}),
            ),
            (
                json!({"tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": null}], "tool_choice": "required", "parallel_tool_calls": false}),
                json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}], "tool_choice": "required", "parallel_tool_calls": false}),
            ),
            (
                json!({"tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": "f"}}),
                json!({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "f"}}}),
            ),
            // Without tools, tool settings that change nothing are left out.
            (
                json!({"tools": [], "tool_choice": "auto", "parallel_tool_calls": true}),
                json!({}),
            ),
            (json!({"tool_choice": "none"}), json!({})),
            (
                json!({"tool_choice": "required"}),
                json!({"tool_choice": "required"}),
            ),
            (
                json!({"reasoning": {"effort": "low", "summary": "detailed", "max_tokens": null}}),
                json!({"reasoning": {"effort": "low", "summary": "detailed"}}),
            ),
            (
                json!({"text": {"format": {"type": "json_object"}, "verbosity": "high"}}),
                json!({"response_format": {"type": "json_object"}, "verbosity": "high"}),
            ),
            (json!({"text": {"format": {"type": "text"}}}), json!({})),
            (
                json!({"text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}, "strict": true}}}),
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}, "strict": true}}}),
            ),
            (
                json!({"metadata": {"k": "v"}}),
                json!({"metadata": {"k": "v"}}),
            ),
            (json!({"safety_identifier": "u"}), json!({"user": "u"})),
            (
                json!({"user": "u", "safety_identifier": "u"}),
                json!({"user": "u"}),
            ),
            (
                json!({"prompt_cache_key": "c"}),
                json!({"prompt_cache_key": "c", "session_id": "c"}),
            ),
            (
                json!({"prompt_cache_key": "c", "session_id": "s"}),
                json!({"prompt_cache_key": "c", "session_id": "s"}),
            ),
            (
                json!({"store": false, "background": false, "truncation": "disabled", "include": ["reasoning.encrypted_content"], "previous_response_id": null}),
                json!({}),
            ),
            (
                json!({"models": ["a/b"], "provider": {"sort": "price"}, "route": "fallback", "stream": true}),
                json!({"models": ["a/b"], "provider": {"sort": "price"}, "route": "fallback", "stream": true}),
            ),
            (
                json!({"top_k": 4, "frequency_penalty": 0.1, "presence_penalty": 0.2, "service_tier": "flex", "modalities": ["text"]}),
                json!({"top_k": 4, "frequency_penalty": 0.1, "presence_penalty": 0.2, "service_tier": "flex", "modalities": ["text"]}),
            ),
            // A custom tool is a function of one string, `input`; its format is in the description.
            (
                json!({"tools": [{"type": "custom", "name": "apply_patch", "description": "Edit files."}], "tool_choice": {"type": "custom", "name": "apply_patch"}}),
                json!({"tools": [{"type": "function", "function": {"name": "apply_patch",
                    "description": "Edit files.\n\nCall this tool with its whole input as the string argument `input`: free-form text, not JSON.",
                    "parameters": input_param()}}],
                    "tool_choice": {"type": "function", "function": {"name": "apply_patch"}}}),
            ),
            (
                json!({"tools": [{"type": "custom", "name": "digits", "format": {"type": "grammar", "syntax": "regex", "definition": "[0-9]+"}}]}),
                json!({"tools": [{"type": "function", "function": {"name": "digits",
                    "description": "Call this tool with its whole input as the string argument `input`: free-form text, not JSON. The input must match this regular expression:\n```regex\n[0-9]+\n```",
                    "parameters": input_param()}}]}),
            ),
            (
                json!({"tools": [{"type": "custom", "name": "js", "description": "Run code.", "format": {"type": "grammar", "syntax": "lark", "definition": "\nstart: SOURCE\nSOURCE: /.+/\n"}}]}),
                json!({"tools": [{"type": "function", "function": {"name": "js",
                    "description": "Run code.\n\nCall this tool with its whole input as the string argument `input`: free-form text, not JSON. The input must match this Lark grammar:\n```lark\nstart: SOURCE\nSOURCE: /.+/\n```",
                    "parameters": input_param()}}]}),
            ),
            (
                json!({"tools": [{"type": "custom", "name": "note", "format": {"type": "text"}}]}),
                json!({"tools": [{"type": "function", "function": {"name": "note",
                    "description": "Call this tool with its whole input as the string argument `input`: free-form text, not JSON.",
                    "parameters": input_param()}}]}),
            ),
            // Namespace members become tools of their own, named namespace__name.
            (
                json!({"tools": [{"type": "namespace", "name": "crm", "description": "Customer records.", "tools": [
                    {"type": "function", "name": "lookup", "description": "Find a customer.", "parameters": {"type": "object"}, "strict": false},
                    {"type": "function", "name": "list"},
                    {"type": "custom", "name": "query"},
                ]}], "tool_choice": {"type": "function", "name": "lookup", "namespace": "crm"}, "parallel_tool_calls": false}),
                json!({"tools": [
                    {"type": "function", "function": {"name": "crm__lookup", "description": "Find a customer.\n\nThis tool belongs to the `crm` group: Customer records.", "parameters": {"type": "object"}, "strict": false}},
                    {"type": "function", "function": {"name": "crm__list", "description": "This tool belongs to the `crm` group: Customer records."}},
                    {"type": "function", "function": {"name": "crm__query", "description": "This tool belongs to the `crm` group: Customer records.\n\nCall this tool with its whole input as the string argument `input`: free-form text, not JSON.", "parameters": input_param()}},
                ], "tool_choice": {"type": "function", "function": {"name": "crm__lookup"}}, "parallel_tool_calls": false}),
            ),
            (
                json!({"tools": [{"type": "namespace", "name": "clock", "description": "", "tools": [{"type": "function", "name": "sleep", "description": "Pause."}]}]}),
                json!({"tools": [{"type": "function", "function": {"name": "clock__sleep", "description": "Pause."}}]}),
            ),
            // A custom tool named without its namespace is the one member of that name.
            (
                json!({"tools": [{"type": "namespace", "name": "functions", "description": "", "tools": [{"type": "custom", "name": "exec"}]}], "tool_choice": {"type": "custom", "name": "exec"}}),
                json!({"tools": [{"type": "function", "function": {"name": "functions__exec",
                    "description": "Call this tool with its whole input as the string argument `input`: free-form text, not JSON.",
                    "parameters": input_param()}}],
                    "tool_choice": {"type": "function", "function": {"name": "functions__exec"}}}),
            ),
            // Reasoning from every turn given is what the gateway forwards anyway.
            (
                json!({"reasoning": {"effort": "low", "context": "all_turns"}}),
                json!({"reasoning": {"effort": "low"}}),
            ),
            (json!({"reasoning": {"context": "auto"}}), json!({})),
            (
                json!({"reasoning": {"effort": "none"}}),
                json!({"reasoning": {"effort": "none"}}),
            ),
            // Client descriptions are checked, never forwarded.
            (
                json!({"client_metadata": {"session_id": "s", "x-codex-turn-metadata": "{\"turn\":1}"}}),
                json!({}),
            ),
            (json!({"include": [], "tools": []}), json!({})),
        ];
        for (fields, expected) in cases {
            let out = translate(with(fields.clone()));
            let mut want = json!({"model": "m/x", "messages": [{"role": "user", "content": "hi"}]});
            for (k, v) in expected.as_object().expect("object") {
                want[k.as_str()] = v.clone();
            }
            assert_eq!(out, want, "{fields}");
            switchyard_core::chat::ChatRequest::from_value(out).expect("a valid chat request");
        }
    }

    #[test]
    fn every_refusal_names_its_field() {
        let long = "x".repeat(257);
        // (request, text the message starts with)
        let cases = [
            (json!("hi"), "The request body must be a JSON object"),
            (json!({"model": "m/x"}), "input: field required"),
            (json!({"input": []}), "input: at least one item"),
            (json!({"input": 5}), "input: must be a string or an array"),
            (with(json!({"model": 1})), "model: must be a string"),
            (with(json!({"instructions": ["x"]})), "instructions: must be a string"),
            (with(json!({"previous_response_id": "resp_1"})), "previous_response_id: not supported: this gateway keeps no conversation state; send the whole conversation in input"),
            (with(json!({"store": true})), "store: true is not supported: this gateway keeps no conversation state"),
            (with(json!({"conversation": "conv_1"})), "conversation: not supported"),
            (with(json!({"prompt": {"id": "pmpt_1"}})), "prompt: not supported"),
            (with(json!({"background": true})), "background: true is not supported"),
            (with(json!({"truncation": "auto"})), "truncation: \"auto\" is not supported"),
            (with(json!({"include": ["file_search_call.results"]})), "include[0]: \"file_search_call.results\" is not supported"),
            (with(json!({"include": ["reasoning.encrypted_content", "message.output_text.logprobs"]})), "include[1]:"),
            (with(json!({"top_logprobs": 2})), "top_logprobs: not supported"),
            (with(json!({"max_tool_calls": 3})), "max_tool_calls: not supported"),
            (with(json!({"stop_server_tools_when": {}})), "stop_server_tools_when: not supported"),
            (with(json!({"debug": {"echo_upstream_body": true}})), "debug: not supported"),
            (with(json!({"image_config": {}})), "image_config: not supported"),
            (with(json!({"modalities": ["text", "image"]})), "modalities:"),
            (with(json!({"stream_options": {}})), "stream_options: unknown field"),
            (with(json!({"max_output_tokens": 0})), "max_output_tokens: must be a positive integer"),
            (with(json!({"stream": "yes"})), "stream: must be a boolean"),
            (with(json!({"user": long})), "user: must be at most 256 characters"),
            (with(json!({"metadata": {"k": 1}})), "metadata.k: must be a string"),
            (with(json!({"metadata": {"a[b]": "v"}})), "metadata.a[b]: keys are"),
            (with(json!({"metadata": ["x"]})), "metadata: must be an object"),
            (with(json!({"user": "a", "safety_identifier": "b"})), "safety_identifier: differs from user"),
            (with(json!({"reasoning": {"effort": "low", "mode": "pro"}})), "reasoning.mode: not supported"),
            (with(json!({"reasoning": {"context": "last_turn"}})), "reasoning.context: must be"),
            (with(json!({"client_metadata": {"turn": 1}})), "client_metadata.turn: must be a string"),
            (with(json!({"client_metadata": "x"})), "client_metadata: must be an object"),
            (with(json!({"tools": [{"type": "custom"}]})), "tools[0].name: field required"),
            (with(json!({"tools": [{"type": "custom", "name": "c", "format": {"type": "grammar", "syntax": "ebnf", "definition": "x"}}]})), "tools[0].format.syntax: must be \"lark\" or \"regex\""),
            (with(json!({"tools": [{"type": "custom", "name": "c", "format": {"type": "grammar", "syntax": "lark"}}]})), "tools[0].format.definition: field required"),
            (with(json!({"tools": [{"type": "custom", "name": "c", "format": {"type": "json"}}]})), "tools[0].format.type: must be"),
            (with(json!({"tools": [{"type": "custom", "name": "c", "format": {"type": "text", "strict": true}}]})), "tools[0].format.strict: unknown field"),
            (with(json!({"tools": [{"type": "custom", "name": "c", "parameters": {}}]})), "tools[0].parameters: unknown field"),
            (with(json!({"tools": [{"type": "custom", "name": "c", "defer_loading": true}]})), "tools[0].defer_loading: not supported"),
            (with(json!({"tools": [{"type": "namespace", "name": "n", "description": "", "tools": [{"type": "namespace", "name": "m", "description": "", "tools": []}]}]})), "tools[0].tools[0].type: a namespace holds function and custom tools"),
            (with(json!({"tools": [{"type": "namespace", "name": "n", "description": "", "tools": [{"type": "web_search"}]}]})), "tools[0].tools[0].type: built-in tool \"web_search\""),
            (with(json!({"tools": [{"type": "namespace", "name": "n", "description": ""}]})), "tools[0].tools: must be an array"),
            (with(json!({"tools": [{"type": "namespace", "description": "", "tools": []}]})), "tools[0].name: field required"),
            (with(json!({"tools": [{"type": "namespace", "name": "n", "description": "", "tools": [], "strict": true}]})), "tools[0].strict: unknown field"),
            (with(json!({"tools": [{"type": "function", "name": "n__f"}, {"type": "namespace", "name": "n", "description": "", "tools": [{"type": "function", "name": "f"}]}]})), "tools[1].tools[0].name: a tool named \"n__f\" is already declared"),
            (with(json!({"tools": [{"type": "function", "name": "f"}], "input": [{"type": "additional_tools", "tools": [{"type": "custom", "name": "f"}]}]})), "input[0].tools[0].name: a tool named \"f\" is already declared"),
            (with(json!({"input": [{"type": "additional_tools", "role": "developer"}]})), "input[0].tools: must be an array"),
            (with(json!({"input": [{"type": "additional_tools", "tools": [], "note": "x"}]})), "input[0].note: unknown field"),
            (with(json!({"input": [{"type": "additional_tools", "tools": [{"type": "mcp"}]}]})), "input[0].tools[0].type: built-in tool \"mcp\""),
            (with(json!({"tool_choice": {"type": "custom"}})), "tool_choice.name: field required when type is \"custom\""),
            (with(json!({"tool_choice": {"type": "function", "name": "f", "namespace": 1}})), "tool_choice.namespace: must be a string"),
            (with(json!({"input": [{"type": "custom_tool_call", "call_id": "c", "name": "exec"}]})), "input[0].input: field required"),
            (with(json!({"input": [{"type": "custom_tool_call", "call_id": "c", "name": "exec", "input": "x", "arguments": "{}"}]})), "input[0].arguments: unknown field"),
            (with(json!({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}", "namespace": 2}]})), "input[0].namespace: must be a string"),
            (with(json!({"input": [{"type": "custom_tool_call_output", "call_id": "c", "output": 5}]})), "input[0].output: must be a string or an array"),
            (with(json!({"reasoning": {"budget": 1}})), "reasoning.budget: unknown field"),
            (with(json!({"text": {"format": {"type": "json_schema", "schema": {}}}})), "text.format.name: field required"),
            (with(json!({"text": {"format": {"type": "grammar"}}})), "text.format.type:"),
            (with(json!({"text": {"stop": "x"}})), "text.stop: unknown field"),
            (with(json!({"tool_choice": "any"})), "tool_choice: must be"),
            (with(json!({"tool_choice": {"type": "web_search_preview"}})), "tool_choice.type: \"web_search_preview\" is not supported"),
            (with(json!({"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}})), "tool_choice.type: \"allowed_tools\""),
            (with(json!({"tools": [{"type": "function"}]})), "tools[0].name: field required"),
            (with(json!({"tools": [{"type": "function", "name": "f", "defer_loading": true}]})), "tools[0].defer_loading: not supported"),
            (with(json!({"tools": [{"type": "function", "name": "f", "cache": 1}]})), "tools[0].cache: unknown field"),
            (with(json!({"tools": [{"type": "function", "name": "f"}, {"type": "web_search"}]})), "tools[1].type: built-in tool \"web_search\" is not supported"),
            (with(json!({"input": [{"role": "user", "content": "x", "name": "n"}]})), "input[0].name: unknown field"),
            (with(json!({"input": [{"role": "tool", "content": "x"}]})), "input[0].role: \"tool\""),
            (with(json!({"input": [{"content": "x"}]})), "input[0].type: field required"),
            (with(json!({"input": [{"role": "user"}]})), "input[0].content: field required"),
            (with(json!({"input": [{"type": "item_reference", "id": "msg_1"}]})), "input[0].type: item_reference is not supported"),
            (with(json!({"input": [{"type": "local_shell_call", "call_id": "c"}]})), "input[0].type: \"local_shell_call\" items are not supported"),
            (with(json!({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]})), "input[0].call_id: field required"),
            (with(json!({"input": [{"type": "function_call_output", "call_id": "c"}]})), "input[0].output: field required"),
            (with(json!({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]})), "input[0].content[0].file_id: uploaded files are not supported"),
            (with(json!({"input": [{"role": "user", "content": [{"type": "input_file", "filename": "a.pdf"}]}]})), "input[0].content[0]: an input_file needs"),
            (with(json!({"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://x/y.png"}]}]})), "input[0].content[0].type: input_image parts are only accepted"),
            (with(json!({"input": [{"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}]})), "input[0].content[0].type: \"refusal\" parts"),
            (with(json!({"input": [{"type": "reasoning", "summary": [], "encrypted_content": "garbage"}, {"role": "assistant", "content": "x"}]})), "input[0].encrypted_content: was not issued by this gateway"),
            (with(json!({"input": [{"type": "reasoning", "summary": [], "encrypted_content": "t1:}{"}, {"role": "assistant", "content": "x"}]})), "input[0].encrypted_content:"),
            (with(json!({"input": [{"role": "user", "content": "q"}, {"type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}]}, {"role": "user", "content": "again"}]})), "input[1]: a reasoning item must be followed"),
            (with(json!({"input": [{"type": "reasoning", "summary": [{"type": "reasoning_text", "text": "t"}]}]})), "input[0].summary[0].type: must be summary_text"),
        ];
        for (body, needle) in cases {
            let message = refusal(body.clone());
            assert!(
                message.starts_with(needle),
                "{body}\n  expected a message starting with {needle:?}\n  got {message:?}"
            );
        }
    }

    #[test]
    fn messages_and_parts() {
        let out = translate(json!({
            "instructions": "Be brief.",
            "input": [
                {"role": "system", "content": [{"type": "input_text", "text": "S1"}, {"type": "input_text", "text": "S2"}]},
                {"role": "user", "content": [
                    {"type": "input_text", "text": "cached", "prompt_cache_breakpoint": {"mode": "explicit"}},
                    {"type": "input_image", "image_url": "https://x/y.png"},
                    {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,AAA"},
                    {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
                    {"type": "input_video", "video_url": "https://x/v.mp4"},
                ]},
                {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]},
                {"role": "user", "content": "ok"},
                {"type": "message", "role": "assistant", "content": "Sure", "phase": "final_answer"},
            ],
        }));
        let m = &out["messages"];
        assert_eq!(m[0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(
            m[1],
            json!({"role": "system", "content": [{"type": "text", "text": "S1"}, {"type": "text", "text": "S2"}]})
        );
        assert_eq!(
            m[2]["content"][0]["cache_control"],
            json!({"type": "ephemeral"})
        );
        assert_eq!(
            m[2]["content"][1],
            json!({"type": "image_url", "image_url": {"url": "https://x/y.png"}})
        );
        assert_eq!(
            m[2]["content"][2],
            json!({"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,AAA"}})
        );
        assert_eq!(m[2]["content"][3]["input_audio"]["format"], "wav");
        assert_eq!(
            m[2]["content"][4],
            json!({"type": "video_url", "video_url": {"url": "https://x/v.mp4"}})
        );
        assert_eq!(
            m[3],
            json!({"role": "assistant", "content": "I can't.", "refusal": "I can't."})
        );
        // A trailing assistant message is a prefill.
        assert_eq!(m[5], json!({"role": "assistant", "content": "Sure"}));
        switchyard_core::chat::ChatRequest::from_value(out).expect("valid chat request");
    }

    #[test]
    fn custom_and_namespaced_calls_are_chat_tool_calls() {
        let out = translate(json!({
            "tools": [{"type": "function", "name": "plain"}],
            "input": [
                {"type": "additional_tools", "id": "at_1", "role": "developer", "tools": [
                    {"type": "namespace", "name": "functions", "description": "", "tools": [{"type": "custom", "name": "exec"}]},
                    {"type": "namespace", "name": "collaboration", "description": "Agents.", "tools": [{"type": "function", "name": "spawn_agent"}]},
                ]},
                {"role": "user", "content": "go"},
                // Echoed without its namespace, as a client that was not sent one does.
                {"type": "custom_tool_call", "id": "ctc_1", "call_id": "c1", "name": "exec", "input": "text(\"hi\")", "status": "completed"},
                {"type": "custom_tool_call", "call_id": "c2", "namespace": "functions", "name": "exec", "input": "exit()"},
                {"type": "function_call", "call_id": "c3", "namespace": "collaboration", "name": "spawn_agent", "arguments": "{}"},
                {"type": "function_call", "call_id": "c4", "name": "plain", "arguments": "{}"},
                {"type": "custom_tool_call_output", "id": "ctco_1", "call_id": "c1", "output": [
                    {"type": "input_text", "text": "Script completed\n"}, {"type": "input_text", "text": "hi"},
                ]},
                {"type": "custom_tool_call_output", "call_id": "c2", "output": "done"},
                {"type": "additional_tools", "tools": [{"type": "function", "name": "late"}]},
                {"type": "function_call_output", "call_id": "c3", "output": "spawned"},
                {"type": "function_call_output", "call_id": "c4", "output": "ok"},
            ],
        }));
        let names: Vec<&str> = out["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .map(|t| t["function"]["name"].as_str().expect("name"))
            .collect();
        assert_eq!(
            names,
            [
                "plain",
                "functions__exec",
                "collaboration__spawn_agent",
                "late"
            ],
            "tools in order: the request's, then each additional_tools item's"
        );
        let m = &out["messages"];
        assert_eq!(m.as_array().map(Vec::len), Some(6), "{m:#}");
        assert_eq!(m[0], json!({"role": "user", "content": "go"}));
        assert_eq!(
            m[1]["tool_calls"],
            json!([
                {"id": "c1", "type": "function", "function": {"name": "functions__exec", "arguments": "{\"input\":\"text(\\\"hi\\\")\"}"}},
                {"id": "c2", "type": "function", "function": {"name": "functions__exec", "arguments": "{\"input\":\"exit()\"}"}},
                {"id": "c3", "type": "function", "function": {"name": "collaboration__spawn_agent", "arguments": "{}"}},
                {"id": "c4", "type": "function", "function": {"name": "plain", "arguments": "{}"}},
            ])
        );
        assert_eq!(
            m[2],
            json!({"role": "tool", "tool_call_id": "c1", "content": [
                {"type": "text", "text": "Script completed\n"}, {"type": "text", "text": "hi"},
            ]})
        );
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "c2", "content": "done"})
        );
        assert_eq!(m[4]["tool_call_id"], "c3");
        assert_eq!(m[5]["tool_call_id"], "c4");
        switchyard_core::chat::ChatRequest::from_value(out).expect("a valid chat request");
    }

    #[test]
    fn current_turn_context_forgets_earlier_reasoning() {
        let input = json!([
            {"role": "user", "content": "first"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "old thought"}], "signature": "s1"},
            {"role": "assistant", "content": "one"},
            {"role": "user", "content": "second"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "new thought"}], "signature": "s2"},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c", "output": "r"},
        ]);
        // (reasoning.context, reasoning kept on the earlier turn's assistant message)
        let cases = [
            (json!("current_turn"), false),
            (json!("all_turns"), true),
            (json!("auto"), true),
            (Value::Null, true),
        ];
        for (context, kept) in cases {
            let out = translate(
                json!({"input": input, "reasoning": {"effort": "high", "context": context}}),
            );
            let m = &out["messages"];
            assert_eq!(m[1]["reasoning"].is_string(), kept, "{context}");
            assert_eq!(m[1]["reasoning_details"].is_array(), kept, "{context}");
            assert_eq!(
                m[3]["reasoning"], "new thought",
                "{context}: this turn's stays"
            );
            assert_eq!(m[3]["reasoning_details"][0]["signature"], "s2", "{context}");
        }
    }

    #[test]
    fn reasoning_without_a_sealed_blob() {
        // OpenRouter-style reasoning items carry the text and signature in the clear.
        let out = translate(json!({"input": [
            {"role": "user", "content": "q"},
            {"type": "reasoning", "id": "r1", "summary": [{"type": "summary_text", "text": "short"}],
             "content": [{"type": "reasoning_text", "text": "long form"}],
             "signature": "sig", "format": "anthropic-claude-v1"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "done"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "only a summary"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "answer"}]},
        ]}));
        let m = &out["messages"];
        assert_eq!(m[1]["reasoning"], "long form");
        assert_eq!(
            m[1]["reasoning_details"],
            json!([{"type": "reasoning.text", "text": "long form", "signature": "sig", "format": "anthropic-claude-v1", "index": 0}])
        );
        assert_eq!(m[3]["reasoning"], "only a summary");
        assert!(m[3].get("reasoning_details").is_none());
    }

    fn ctx() -> ResponseContext {
        ResponseContext {
            id: "gen-1".into(),
            created_at: 10,
            completed_at: Some(12),
            request: json!({"model": "m/x", "input": "hi"}),
        }
    }

    #[test]
    fn statuses_follow_the_finish_reason() {
        // (finish_reason, status, incomplete reason, last item status)
        let cases = [
            ("stop", "completed", Value::Null, "completed"),
            ("tool_calls", "completed", Value::Null, "completed"),
            (
                "length",
                "incomplete",
                json!("max_output_tokens"),
                "incomplete",
            ),
            (
                "content_filter",
                "incomplete",
                json!("content_filter"),
                "incomplete",
            ),
            ("error", "failed", Value::Null, "incomplete"),
        ];
        for (finish, status, reason, item) in cases {
            let completion = json!({"model": "m/x", "choices": [{"index": 0, "finish_reason": finish,
                "error": {"code": 429, "message": "slow down"},
                "message": {"role": "assistant", "content": "partial"}}]});
            let out = response_from_chat(&completion, &ctx(), &TestSealer);
            assert_eq!(out["status"], status, "{finish}");
            assert_eq!(out["incomplete_details"]["reason"], reason, "{finish}");
            assert_eq!(out["output"][0]["status"], item, "{finish}");
            if finish == "error" {
                assert_eq!(
                    out["error"],
                    json!({"code": "rate_limit_exceeded", "message": "slow down"})
                );
                assert_eq!(out["error_type"], "rate_limit_exceeded");
            } else {
                assert!(out["error"].is_null());
            }
        }
    }

    #[test]
    fn reasoning_text_is_never_sealed_in_the_clear() {
        let completion = json!({"model": "m/x", "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "a",
        "reasoning_details": [
            {"type": "reasoning.summary", "summary": "plan", "format": "openai-responses-v1", "index": 0},
            {"type": "reasoning.encrypted", "data": "opaque", "format": "openai-responses-v1", "index": 1},
            {"type": "reasoning.text", "text": "", "format": "unknown", "index": 2},
        ]}}]});
        let out = response_from_chat(&completion, &ctx(), &TestSealer);
        let item = &out["output"][0];
        assert_eq!(
            item["summary"],
            json!([{"type": "summary_text", "text": "plan"}])
        );
        let sealed = item["encrypted_content"].as_str().expect("sealed");
        assert!(!sealed.contains("plan"), "{sealed}");
        let opened: Value =
            serde_json::from_slice(&TestSealer.open(sealed).expect("opens")).expect("json");
        // Empty details carry nothing and are left out.
        assert_eq!(opened.as_array().map(Vec::len), Some(2));

        // Reasoning text without details: readable, nothing to seal.
        let completion = json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "a", "reasoning": "thought"}}]});
        let out = response_from_chat(&completion, &ctx(), &TestSealer);
        assert_eq!(out["output"][0]["summary"][0]["text"], "thought");
        assert!(out["output"][0].get("encrypted_content").is_none());
        assert_eq!(
            out["model"], "m/x",
            "the requested model when the completion names none"
        );
    }

    #[test]
    fn usage_maps_with_cost() {
        let usage = usage_from_chat(&json!({
            "prompt_tokens": 100, "completion_tokens": 20, "cost": 0.5, "is_byok": true,
            "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 10},
            "completion_tokens_details": {"reasoning_tokens": 5},
            "cost_details": {"upstream_inference_cost": null, "upstream_inference_prompt_cost": 0.2, "upstream_inference_completions_cost": 0.3},
        }));
        assert_eq!(
            usage,
            json!({
                "input_tokens": 100, "input_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 10},
                "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 5},
                "total_tokens": 120, "cost": 0.5, "is_byok": true,
                "cost_details": {"upstream_inference_cost": null, "upstream_inference_input_cost": 0.2, "upstream_inference_output_cost": 0.3},
            })
        );
    }

    #[test]
    fn merging_streamed_details() {
        let mut details = Vec::new();
        for d in [
            json!({"type": "reasoning.text", "text": "a", "index": 0}),
            json!({"type": "reasoning.text", "text": "b", "index": 0}),
            json!({"type": "reasoning.text", "text": "", "signature": "s", "index": 0}),
            json!({"type": "reasoning.encrypted", "data": "d", "index": 1}),
            json!({"type": "reasoning.text", "text": "c"}),
        ] {
            merge_detail(&mut details, &d);
        }
        assert_eq!(
            details,
            vec![
                json!({"type": "reasoning.text", "text": "ab", "signature": "s", "index": 0}),
                json!({"type": "reasoning.encrypted", "data": "d", "index": 1}),
                json!({"type": "reasoning.text", "text": "c"}),
            ]
        );
    }

    fn run(chunks: &[Value]) -> (StreamTranscoder, Vec<Event>) {
        run_with(ctx(), chunks)
    }

    fn run_with(ctx: ResponseContext, chunks: &[Value]) -> (StreamTranscoder, Vec<Event>) {
        let mut t = StreamTranscoder::new(ctx, "m/x", Arc::new(TestSealer));
        let mut events = t.start();
        for c in chunks {
            events.extend(t.chunk(c));
        }
        (t, events)
    }

    /// A context whose request declares a plain function, a namespaced function, a custom tool
    /// in a namespace, given in an `additional_tools` item, and a custom tool of its own.
    fn tools_ctx() -> ResponseContext {
        ResponseContext {
            request: json!({"model": "m/x", "tools": [
                {"type": "function", "name": "plain"},
                {"type": "custom", "name": "apply_patch"},
                {"type": "namespace", "name": "collaboration", "description": "", "tools": [{"type": "function", "name": "spawn_agent"}]},
            ], "input": [
                {"type": "additional_tools", "tools": [
                    {"type": "namespace", "name": "functions", "description": "", "tools": [{"type": "custom", "name": "exec"}]},
                ]},
                {"role": "user", "content": "hi"},
            ]}),
            ..ctx()
        }
    }

    #[test]
    fn calls_render_as_the_tools_were_declared() {
        // (chat tool name, chat arguments, expected output item without id and status)
        let cases = [
            (
                "plain",
                r#"{"a":1}"#,
                json!({"type": "function_call", "call_id": "c", "name": "plain", "arguments": "{\"a\":1}"}),
            ),
            (
                "unknown",
                "{}",
                json!({"type": "function_call", "call_id": "c", "name": "unknown", "arguments": "{}"}),
            ),
            (
                "apply_patch",
                r#"{"input":"*** Begin Patch"}"#,
                json!({"type": "custom_tool_call", "call_id": "c", "name": "apply_patch", "input": "*** Begin Patch"}),
            ),
            (
                "collaboration__spawn_agent",
                r#"{"task_name":"t"}"#,
                json!({"type": "function_call", "call_id": "c", "namespace": "collaboration", "name": "spawn_agent", "arguments": "{\"task_name\":\"t\"}"}),
            ),
            (
                "functions__exec",
                r#"{"input":"text(1)"}"#,
                json!({"type": "custom_tool_call", "call_id": "c", "namespace": "functions", "name": "exec", "input": "text(1)"}),
            ),
            // The member's own name, when no other tool has it, is that member.
            (
                "exec",
                r#"{"input":"text(2)"}"#,
                json!({"type": "custom_tool_call", "call_id": "c", "namespace": "functions", "name": "exec", "input": "text(2)"}),
            ),
            // Arguments not of the declared shape are handed on as the input.
            (
                "functions__exec",
                "text(3)",
                json!({"type": "custom_tool_call", "call_id": "c", "namespace": "functions", "name": "exec", "input": "text(3)"}),
            ),
        ];
        for (name, arguments, expected) in cases {
            let completion = json!({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": name, "arguments": arguments}}]}}]});
            let out = response_from_chat(&completion, &tools_ctx(), &TestSealer);
            let mut item = out["output"][0].clone();
            let prefix = if expected["type"] == "custom_tool_call" {
                "ctc_"
            } else {
                "fc_"
            };
            assert!(
                item["id"].as_str().is_some_and(|id| id.starts_with(prefix)),
                "{name}: {item}"
            );
            assert_eq!(item["status"], "completed");
            for key in ["id", "status"] {
                item.as_object_mut().map(|i| i.remove(key));
            }
            assert_eq!(item, expected, "{name}");

            // The stream renders the same item, in whatever fragments the arguments come.
            let mut chunks = vec![json!({"choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "id": "c", "function": {"name": name, "arguments": ""}}]}}]})];
            let mut rest = arguments;
            while !rest.is_empty() {
                let cut = rest.char_indices().nth(3).map_or(rest.len(), |(i, _)| i);
                chunks.push(json!({"choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": 0, "function": {"arguments": &rest[..cut]}}]}}]}));
                rest = &rest[cut..];
            }
            chunks.push(
                json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            );
            let (mut t, mut events) = run_with(tools_ctx(), &chunks);
            events.extend(t.finish(&json!({}), 12));
            let last = &events.last().expect("events").1["response"]["output"][0];
            assert_eq!(last, &out["output"][0], "{name}: streamed");
            let custom = expected["type"] == "custom_tool_call";
            let (delta, done) = if custom {
                (
                    "response.custom_tool_call_input.delta",
                    "response.custom_tool_call_input.done",
                )
            } else {
                (
                    "response.function_call_arguments.delta",
                    "response.function_call_arguments.done",
                )
            };
            let streamed: String = events
                .iter()
                .filter(|e| e.0 == delta)
                .map(|e| e.1["delta"].as_str().expect("delta"))
                .collect();
            let whole = if custom {
                &expected["input"]
            } else {
                &expected["arguments"]
            };
            assert_eq!(
                streamed,
                whole.as_str().expect("text"),
                "{name}: the deltas add up"
            );
            let done = events.iter().find(|e| e.0 == done).expect("a done event");
            if custom {
                assert_eq!(done.1["input"], *whole, "{name}");
            } else {
                assert_eq!(done.1["arguments"], *whole, "{name}");
                assert_eq!(done.1["name"], expected["name"], "{name}");
            }
            assert_eq!(
                events[2].1["item"]["type"], expected["type"],
                "{name}: added"
            );
            assert_eq!(
                events[2].1["item"].get("namespace"),
                expected.get("namespace"),
                "{name}: added"
            );
        }
    }

    #[test]
    fn late_input_for_a_closed_custom_call_still_counts() {
        let (mut t, mut events) = run_with(
            tools_ctx(),
            &[
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "functions__exec", "arguments": "{\"input\":\"a"}}]}}]}),
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "plain", "arguments": "{}"}}]}}]}),
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "b\"}"}}]}}]}),
            ],
        );
        events.extend(t.finish(&json!({}), 12));
        let output = &events.last().expect("events").1["response"]["output"];
        assert_eq!(output[0]["input"], "ab");
        assert_eq!(output[1]["arguments"], "{}");
    }

    #[test]
    fn an_unfinished_custom_call_fails_incomplete() {
        let (mut t, mut events) = run_with(
            tools_ctx(),
            &[
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** Beg"}}]}}]}),
            ],
        );
        events.extend(t.error(502, "reset"));
        let output = &events.last().expect("events").1["response"]["output"];
        assert_eq!(
            output[0],
            json!({"type": "custom_tool_call", "id": "ctc_gen-1_0", "call_id": "c1", "name": "apply_patch",
                   "input": "*** Beg", "status": "incomplete"})
        );
        assert!(!events
            .iter()
            .any(|e| e.0 == "response.custom_tool_call_input.done"));
    }

    #[test]
    fn a_stream_cut_by_the_token_limit_is_incomplete() {
        let (mut t, mut events) = run(&[
            json!({"choices": [{"index": 0, "delta": {"content": "Once"}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}),
        ]);
        events.extend(t.finish(&json!({"prompt_tokens": 1, "completion_tokens": 1}), 12));
        let (kind, last) = events.last().expect("events");
        assert_eq!(*kind, "response.incomplete");
        assert_eq!(last["response"]["status"], "incomplete");
        assert_eq!(
            last["response"]["incomplete_details"]["reason"],
            "max_output_tokens"
        );
        assert_eq!(last["response"]["output"][0]["status"], "incomplete");
        assert_eq!(last["response"]["completed_at"], 12);
    }

    #[test]
    fn an_error_chunk_fails_the_stream() {
        let (mut t, mut events) = run(&[
            json!({"choices": [{"index": 0, "delta": {"content": "Hi"}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "error",
                   "error": {"code": 503, "message": "overloaded"}}]}),
        ]);
        events.extend(t.finish(&json!({}), 12));
        let kinds: Vec<&str> = events.iter().map(|e| e.0).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "error",
                "response.failed",
            ]
        );
        assert_eq!(events[5].1["code"], "server_error");
        assert_eq!(events[6].1["response"]["error"]["message"], "overloaded");
        assert_eq!(events[6].1["response"]["error_type"], "provider_overloaded");
        assert_eq!(
            events[6].1["response"]["output"][0]["content"][0]["text"],
            "Hi"
        );
    }

    #[test]
    fn refusals_and_late_arguments() {
        let (mut t, mut events) = run(&[
            json!({"choices": [{"index": 0, "delta": {"content": "Well"}}]}),
            json!({"choices": [{"index": 0, "delta": {"refusal": "No."}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{\"a\""}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "g", "arguments": "{}"}}]}}]}),
            // More arguments for the first call after the second opened.
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]}),
        ]);
        events.extend(t.finish(&json!({}), 12));
        let kinds: Vec<&str> = events.iter().map(|e| e.0).collect();
        assert!(
            kinds.contains(&"response.refusal.delta") && kinds.contains(&"response.refusal.done")
        );
        let output = &events.last().expect("events").1["response"]["output"];
        assert_eq!(
            output[0]["content"],
            json!([
                {"type": "output_text", "text": "Well", "annotations": []},
                {"type": "refusal", "refusal": "No."},
            ])
        );
        assert_eq!(
            output[1]["call_id"], "call_gen-1_0",
            "a call without an id gets one"
        );
        assert_eq!(output[1]["arguments"], "{\"a\":1}");
        assert_eq!(output[2]["name"], "g");
        for (i, (_, data)) in events.iter().enumerate() {
            assert_eq!(data["sequence_number"], i);
        }
    }

    #[test]
    fn error_bodies() {
        let cases = [
            (400, "invalid_request_error", "invalid_request"),
            (401, "authentication_error", "authentication"),
            (402, "insufficient_quota", "payment_required"),
            (429, "rate_limit_error", "rate_limit_exceeded"),
            (502, "server_error", "provider_unavailable"),
        ];
        for (status, kind, error_type) in cases {
            let body = error_body(status, "m");
            assert_eq!(body["error"]["code"], status);
            assert_eq!(body["error"]["type"], kind);
            assert_eq!(body["error"]["metadata"]["error_type"], error_type);
            assert_eq!(body["error"]["message"], "m");
        }
    }
}
