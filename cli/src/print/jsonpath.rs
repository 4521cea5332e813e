//! kubectl's `-o jsonpath=TEMPLATE`: text with `{expression}` blocks, `{range EXPR}...{end}`
//! loops and `{"\n"}` literals, as client-go's jsonpath package reads them. The paths
//! themselves are evaluated by jsonpath-rust (already in the tree through kube); only the
//! template layer is ours, because no maintained crate implements kubectl's template syntax.
//!
//! As kubectl (whose `--allow-missing-template-keys` defaults to true): a path that matches
//! nothing prints nothing; several matches print space-separated; strings print bare, other
//! values as compact JSON.

use jsonpath_rust::JsonPath;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TemplateError {
    #[error("jsonpath template: unclosed {{ at byte {0}")]
    Unclosed(usize),
    #[error("jsonpath template: {{end}} without {{range}}")]
    EndWithoutRange,
    #[error("jsonpath template: {{range}} without {{end}}")]
    RangeWithoutEnd,
    #[error("jsonpath template: bad string literal {0}")]
    Literal(String),
    #[error("jsonpath template: bad path {path:?}: {reason}")]
    Path { path: String, reason: String },
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Path(String),
    Range(String, Vec<Node>),
}

/// A parsed template, checked once before any request is made.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template(Vec<Node>);

impl Template {
    pub(crate) fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut stack: Vec<(String, Vec<Node>)> = Vec::new();
        let mut nodes = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                nodes.push(Node::Text(rest[..open].to_string()));
            }
            let close =
                closing_brace(&rest[open..]).ok_or(TemplateError::Unclosed(offset + open))?;
            let inner = rest[open + 1..open + close].trim();
            if let Some(path) = inner.strip_prefix("range ") {
                let path = rooted(path.trim())?;
                stack.push((path, std::mem::take(&mut nodes)));
            } else if inner == "end" {
                let (path, outer) = stack.pop().ok_or(TemplateError::EndWithoutRange)?;
                let body = std::mem::replace(&mut nodes, outer);
                nodes.push(Node::Range(path, body));
            } else if inner.starts_with('"') || inner.starts_with('\'') {
                nodes.push(Node::Text(literal(inner)?));
            } else {
                nodes.push(Node::Path(rooted(inner)?));
            }
            offset += open + close + 1;
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            nodes.push(Node::Text(rest.to_string()));
        }
        if !stack.is_empty() {
            return Err(TemplateError::RangeWithoutEnd);
        }
        Ok(Template(nodes))
    }

    pub(crate) fn render(&self, value: &Value) -> String {
        let mut out = String::new();
        render_nodes(&self.0, value, &mut out);
        out
    }
}

fn render_nodes(nodes: &[Node], value: &Value, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Path(path) => {
                let shown: Vec<String> = query(value, path).into_iter().map(show).collect();
                out.push_str(&shown.join(" "));
            }
            Node::Range(path, body) => {
                for item in query(value, path) {
                    render_nodes(body, item, out);
                }
            }
        }
    }
}

/// A query that matches nothing (or that jsonpath-rust refuses at run time) prints nothing.
fn query<'a>(value: &'a Value, path: &str) -> Vec<&'a Value> {
    value.query(path).unwrap_or_default()
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The length of `{...}` starting at text[0] == '{', skipping braces inside quotes.
fn closing_brace(text: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match (quote, c) {
            (Some(_), _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '}') => return Some(i),
            (None, _) => {}
        }
    }
    None
}

/// kubectl's paths start at `.` (or `@` inside a range, `$` also accepted): RFC 9535 wants `$`.
fn rooted(path: &str) -> Result<String, TemplateError> {
    let rooted = match path {
        "" | "." | "@" | "$" => "$".to_string(),
        p if p.starts_with('$') => p.to_string(),
        p if p.starts_with('@') => format!("${}", &p[1..]),
        p if p.starts_with('.') || p.starts_with('[') => format!("${p}"),
        p => format!("$.{p}"),
    };
    // Checked now, so a typo fails before any request rather than printing nothing.
    Value::Null
        .query(&rooted)
        .map(|_| rooted.clone())
        .map_err(|e| TemplateError::Path {
            path: path.to_string(),
            reason: e.to_string(),
        })
}

fn literal(text: &str) -> Result<String, TemplateError> {
    let bad = || TemplateError::Literal(text.to_string());
    let quote = text.chars().next().ok_or_else(bad)?;
    let body = text
        .strip_prefix(quote)
        .and_then(|t| t.strip_suffix(quote))
        .ok_or_else(bad)?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next().ok_or_else(bad)? {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            other => other,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(template: &str, value: &Value) -> String {
        Template::parse(template).unwrap().render(value)
    }

    fn list() -> Value {
        json!({"items": [
            {"metadata": {"name": "a"}, "status": {"phase": "Completed", "archive": {"sizeBytes": 10}}},
            {"metadata": {"name": "b"}, "status": {"phase": "Failed"}}
        ]})
    }

    #[test]
    fn paths_as_kubectl_prints_them() {
        let list = list();
        assert_eq!(render("{.items[0].metadata.name}", &list), "a");
        assert_eq!(render("{.items[*].metadata.name}", &list), "a b");
        assert_eq!(
            render("size={.items[0].status.archive.sizeBytes}", &list),
            "size=10"
        );
        assert_eq!(render("{.items[1].status.archive}", &list), "");
        assert_eq!(render("{.items[0].metadata}", &list), r#"{"name":"a"}"#);
    }

    #[test]
    fn ranges_literals_and_filters() {
        let list = list();
        assert_eq!(
            render(
                r#"{range .items[*]}{.metadata.name}{"\t"}{@.status.phase}{"\n"}{end}"#,
                &list
            ),
            "a\tCompleted\nb\tFailed\n"
        );
        assert_eq!(
            render(
                r#"{.items[?(@.status.phase=="Failed")].metadata.name}"#,
                &list
            ),
            "b"
        );
        assert_eq!(render(r#"{'}'}"#, &list), "}");
    }

    #[test]
    fn mistakes_fail_before_anything_is_asked() {
        assert_eq!(
            Template::parse("{.a").unwrap_err(),
            TemplateError::Unclosed(0)
        );
        assert_eq!(
            Template::parse("{range .items[*]}x").unwrap_err(),
            TemplateError::RangeWithoutEnd
        );
        assert_eq!(
            Template::parse("{end}").unwrap_err(),
            TemplateError::EndWithoutRange
        );
        assert!(matches!(
            Template::parse("{.items[}").unwrap_err(),
            TemplateError::Path { .. }
        ));
    }
}
