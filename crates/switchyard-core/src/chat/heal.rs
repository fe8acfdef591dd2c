//! Response healing (the `response-healing` plugin): a model asked for JSON that answered with
//! something almost JSON (wrapped in a Markdown fence or prose, with trailing commas, cut off
//! before its closing brackets) gets its answer repaired into the JSON it meant.

use serde_json::Value;

/// The JSON in `text`, repaired; `None` when `text` is already valid JSON or holds none that
/// can be recovered.
pub fn heal_json(text: &str) -> Option<String> {
    if serde_json::from_str::<Value>(text).is_ok() {
        return None;
    }
    let start = text.find(['{', '['])?;
    let body = &text[start..];
    let mut out = String::with_capacity(body.len() + 8);
    let mut open: Vec<char> = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    for c in body.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                open.push(if c == '{' { '}' } else { ']' });
                out.push(c);
            }
            '}' | ']' => {
                if open.pop() != Some(c) {
                    return None;
                }
                drop_trailing_comma(&mut out);
                out.push(c);
                if open.is_empty() {
                    break;
                }
            }
            _ => out.push(c),
        }
    }
    if in_string {
        if escaped {
            out.pop();
        }
        out.push('"');
    }
    if !open.is_empty() {
        drop_trailing_comma(&mut out);
        let trimmed = out.trim_end();
        // A key left without its value gets `null`.
        if trimmed.ends_with(':') {
            out.push_str(" null");
        }
        while let Some(close) = open.pop() {
            drop_trailing_comma(&mut out);
            out.push(close);
        }
    }
    serde_json::from_str::<Value>(&out).ok().map(|_| out)
}

/// Removes a comma (and the blanks after it) that ends `out`.
fn drop_trailing_comma(out: &mut String) {
    let kept = out.trim_end().len();
    if out[..kept].ends_with(',') {
        out.truncate(kept - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::heal_json;

    #[test]
    fn repairs_what_models_get_wrong() {
        let cases = [
            ("```json\n{\"a\": 1}\n```", "{\"a\": 1}"),
            (
                "Here it is: {\"a\": [1, 2]} Hope this helps!",
                "{\"a\": [1, 2]}",
            ),
            ("{\"a\": 1, \"b\": [1, 2,],}", "{\"a\": 1, \"b\": [1, 2]}"),
            ("{\"a\": {\"b\": \"cut", "{\"a\": {\"b\": \"cut\"}}"),
            ("[{\"a\": 1}, {\"b\":", "[{\"a\": 1}, {\"b\": null}]"),
            ("{\"a\": \"x}\\\"y\"", "{\"a\": \"x}\\\"y\"}"),
        ];
        for (broken, want) in cases {
            assert_eq!(heal_json(broken).as_deref(), Some(want), "{broken}");
        }
    }

    #[test]
    fn leaves_valid_and_hopeless_text_alone() {
        for text in ["{\"a\": 1}", "[1]", "no json here", "{\"a\": 1]", ""] {
            assert_eq!(heal_json(text), None, "{text}");
        }
    }
}
