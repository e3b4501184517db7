//! Canonical JSON: the byte encoding that manifests and audit events are hashed over.
//!
//! Rules (documented in docs/audit.md): objects have their keys sorted by their UTF-8 bytes,
//! no insignificant white space, strings escaped as serde_json escapes them (`"`, `\`, and
//! control characters; everything else verbatim UTF-8), integers in decimal, floats in the
//! shortest form that round-trips. Key order is imposed here rather than trusted to
//! serde_json's map type, so a feature flag elsewhere in the build cannot change a hash.

use serde::Serialize;
use serde_json::Value;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Encodes `value` canonically.
pub fn to_canonical_string(value: &Value) -> String {
    let mut out = String::with_capacity(128);
    write_value(value, &mut out);
    out
}

/// Serializes any value through serde_json and encodes it canonically.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<String> {
    let v = serde_json::to_value(value).map_err(|e| Error::invalid(e.to_string()))?;
    Ok(to_canonical_string(&v))
}

/// The SHA-256 of a value's canonical encoding.
pub fn canonical_digest<T: Serialize>(value: &T) -> Result<Digest> {
    Ok(Digest::of(canonical_json(value)?.as_bytes()))
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_value(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

/// Writes a JSON string literal exactly as serde_json would.
pub fn write_string(s: &str, out: &mut String) {
    // serde_json's escaping is the documented one; reuse it for strings.
    out.push_str(&Value::String(s.to_owned()).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_sorted_and_compact() {
        let v = json!({"b": 1, "a": {"d": [1, 2, {"z": null, "y": true}], "c": "x"}});
        assert_eq!(
            to_canonical_string(&v),
            r#"{"a":{"c":"x","d":[1,2,{"y":true,"z":null}]},"b":1}"#
        );
    }

    #[test]
    fn strings_escaped() {
        let v = json!({"k": "line\nquote\" é"});
        assert_eq!(to_canonical_string(&v), "{\"k\":\"line\\nquote\\\" é\"}");
    }

    #[test]
    fn same_value_same_digest_regardless_of_insertion_order() {
        let a = json!({"x": 1, "y": 2});
        let b: Value = serde_json::from_str(r#"{"y": 2, "x": 1}"#).unwrap();
        assert_eq!(canonical_digest(&a).unwrap(), canonical_digest(&b).unwrap());
    }
}
