//! Local `$ref` resolution with cycle detection.
//!
//! Recursive schemas (an object whose property refers back to it) are legal; what cannot be
//! resolved is a chain of nodes that are nothing but `$ref`s and comes back to itself, or a
//! reference to a place that does not exist.

use serde_json::Value;

use super::diagnostics::Diagnostics;
use super::document::{child, Document};

/// Why a reference cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefError {
    /// Not `#/...`.
    External(String),
    /// Points nowhere.
    Dangling(String),
    /// Comes back to itself; the chain is given.
    Circular(Vec<String>),
}

impl std::fmt::Display for RefError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefError::External(r) => write!(f, "$ref {r:?} points outside this file: only local references (\"#/...\") are supported; inline the referenced part"),
            RefError::Dangling(r) => write!(f, "$ref {r:?} does not resolve: nothing exists at that path in this file"),
            RefError::Circular(chain) => write!(f, "circular $ref: {} (each only refers to the next): replace one with the definition itself", chain.join(" -> ")),
        }
    }
}

/// The `$ref` string of a node that is a reference object.
pub fn ref_of(value: &Value) -> Option<&str> {
    value.get("$ref").and_then(Value::as_str)
}

/// Turns `#/a/b` into the pointer `/a/b`.
fn pointer_of(reference: &str) -> Result<&str, RefError> {
    reference
        .strip_prefix('#')
        .filter(|p| p.is_empty() || p.starts_with('/'))
        .ok_or_else(|| RefError::External(reference.to_string()))
}

/// Follows `$ref`s from the node at `pointer` until a node that is not a reference.
/// Returns that node and its pointer.
pub fn resolve<'a>(doc: &'a Document, pointer: &str) -> Result<(&'a Value, String), RefError> {
    let mut current = pointer.to_string();
    let mut seen = vec![current.clone()];
    loop {
        let value = doc
            .get(&current)
            .ok_or_else(|| RefError::Dangling(format!("#{current}")))?;
        let Some(reference) = ref_of(value) else {
            return Ok((value, current));
        };
        let target = pointer_of(reference)?.to_string();
        if doc.get(&target).is_none() {
            return Err(RefError::Dangling(reference.to_string()));
        }
        if seen.contains(&target) {
            let mut chain: Vec<String> = seen.iter().map(|p| format!("#{p}")).collect();
            chain.push(format!("#{target}"));
            return Err(RefError::Circular(chain));
        }
        seen.push(target.clone());
        current = target;
    }
}

/// True for the pointer of a path item (`/paths/<template>`): the one kind of reference the
/// gateway follows itself, so the loader reports its problems as errors where it follows it.
pub fn is_path_item(pointer: &str) -> bool {
    pointer
        .strip_prefix("/paths/")
        .is_some_and(|rest| !rest.contains('/'))
}

/// Checks every local `$ref` in the document except path items (the loader follows those and
/// reports their problems as errors, once): a chain that loops is an error, a reference to
/// nothing or to another file a warning.
pub fn check_all(doc: &Document, diagnostics: &mut Diagnostics) {
    let mut stack = vec![(String::new(), &doc.value)];
    let mut reported_cycles: Vec<Vec<String>> = Vec::new();
    while let Some((pointer, value)) = stack.pop() {
        match value {
            Value::Object(map) => {
                if ref_of(value).is_some() && is_path_item(&pointer) {
                    // Reported by the loader when it follows the path item.
                } else if let Some(reference) = ref_of(value) {
                    match resolve(doc, &pointer) {
                        Ok(_) => {}
                        Err(err @ RefError::External(_)) => {
                            // Only a problem where the gateway follows it (path items, an
                            // error reported by the loader); elsewhere the user should know.
                            diagnostics.warn(
                                &doc.file,
                                doc.line(&child(&pointer, "$ref")),
                                err.to_string(),
                            );
                        }
                        Err(RefError::Circular(chain))
                            if chain
                                .iter()
                                .any(|p| is_path_item(p.trim_start_matches('#'))) =>
                        {
                            // A loop through a path item: the loader reports it there.
                        }
                        Err(RefError::Circular(mut chain)) => {
                            // Report each loop once, whichever member we met first.
                            chain.pop();
                            let mut key = chain.clone();
                            key.sort();
                            if !reported_cycles.contains(&key) {
                                reported_cycles.push(key);
                                let err = RefError::Circular({
                                    let mut c = chain.clone();
                                    c.push(chain[0].clone());
                                    c
                                });
                                diagnostics.error(&doc.file, doc.line(&pointer), err.to_string());
                            }
                        }
                        Err(err @ RefError::Dangling(_)) => {
                            // Schemas are not used by the gateway, and real definitions carry
                            // stale schema references: a warning here, an error where the
                            // gateway itself follows a reference (path items, endpoints).
                            let _ = reference;
                            diagnostics.warn(
                                &doc.file,
                                doc.line(&child(&pointer, "$ref")),
                                err.to_string(),
                            );
                        }
                    }
                }
                for (key, item) in map {
                    stack.push((child(&pointer, key), item));
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    stack.push((format!("{pointer}/{i}"), item));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Document {
        Document::parse("t.yaml", text).unwrap()
    }

    #[test]
    fn resolves_chains_and_allows_recursive_schemas() {
        let d = doc("a: {$ref: '#/b'}\nb: {$ref: '#/c'}\nc: {x: 1}\nnode: {properties: {next: {$ref: '#/node'}}}\n");
        let (value, pointer) = resolve(&d, "/a").unwrap();
        assert_eq!(value["x"], 1);
        assert_eq!(pointer, "/c");
        let mut diags = Diagnostics::default();
        check_all(&d, &mut diags);
        assert!(diags.is_ok(), "{:?}", diags.errors);
    }

    #[test]
    fn reports_cycles_and_dangling_refs_with_lines() {
        let d =
            doc("openapi: 3.0.0\na: {$ref: '#/b'}\nb: {$ref: '#/a'}\nc:\n  $ref: '#/nowhere'\n");
        assert!(matches!(resolve(&d, "/a"), Err(RefError::Circular(_))));
        let mut diags = Diagnostics::default();
        check_all(&d, &mut diags);
        assert_eq!(diags.errors.len(), 1, "{:?}", diags.errors);
        assert!(
            diags.errors[0].to_string().contains("circular $ref"),
            "{:?}",
            diags.errors
        );
        assert!(
            diags.warnings[0].to_string().starts_with("t.yaml:5:"),
            "{:?}",
            diags.warnings
        );
        assert!(
            diags.warnings[0].to_string().contains("does not resolve"),
            "{:?}",
            diags.warnings
        );
    }
}
