//! A nested value as compact JSON text, formatted as orjson formats it (the SDK and the server
//! parse it with orjson; the server's Rust response path embeds it as is).
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::node::{Key, Node};
use crate::response::write_string;

/// Appends `node` as JSON. `sort_keys` orders every object's keys (a Map's stored form, as
/// Feast's protobuf map reads back); otherwise objects keep their order (a Struct's fields).
/// Bytes have no JSON form and are refused; a timestamp is written as epoch seconds (what
/// Feast's server answers for one); a non-finite float is `null`, as orjson writes it.
pub fn write(node: &Node, sort_keys: bool, out: &mut Vec<u8>) -> Result<(), String> {
    match node {
        Node::Null => out.extend_from_slice(b"null"),
        Node::Bool(v) => out.extend_from_slice(if *v { b"true" } else { b"false" }),
        Node::Int(v) | Node::Time(v) => {
            out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes());
        }
        Node::Float(v) => write_float(out, *v),
        Node::Str(s) => write_string(out, s),
        Node::Bytes(_) => return Err("bytes inside a nested value have no JSON form".to_owned()),
        Node::List(items, _) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, sort_keys, out)?;
            }
            out.push(b']');
        }
        Node::Object(entries) => {
            let mut order: Vec<&(String, Node)> = entries.iter().collect();
            if sort_keys {
                order.sort_by(|a, b| a.0.cmp(&b.0));
            }
            out.push(b'{');
            for (i, (key, value)) in order.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, key);
                out.push(b':');
                write(value, sort_keys, out)?;
            }
            out.push(b'}');
        }
        Node::ScalarMap(entries) => {
            write_scalar_map(entries, true, out, |value, o| write(value, sort_keys, o))?;
        }
    }
    Ok(())
}

/// A `SCALAR_MAP`'s entries in their stored form, in the order given (a `SCALAR_MAP` is a list
/// of entries in Feast, not a sorted map): an object whose keys are the JSON text of int, float
/// and bool keys (`json.dumps` of a dict with such keys), or, when `tagged_pairs` and a key is
/// of another kind, `[key, value]` pairs with those keys tagged (`write_key`). Without
/// `tagged_pairs` such a key is an object key of its untagged text (`write_key_text`).
/// `value` writes each value.
pub fn write_scalar_map<V>(
    entries: &[(Key, V)],
    tagged_pairs: bool,
    out: &mut Vec<u8>,
    mut value: impl FnMut(&V, &mut Vec<u8>) -> Result<(), String>,
) -> Result<(), String> {
    let pairs = tagged_pairs && !entries.iter().all(|(k, _)| k.is_number());
    out.push(if pairs { b'[' } else { b'{' });
    for (i, (key, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if pairs {
            out.push(b'[');
            write_key(key, out);
            out.push(b',');
        } else {
            write_key_text(key, out);
            out.push(b':');
        }
        value(v, out)?;
        if pairs {
            out.push(b']');
        }
    }
    out.push(if pairs { b']' } else { b'}' });
    Ok(())
}

/// A key as a JSON object key: an int, float or bool key's JSON text in quotes, another key's
/// text untagged (bytes as base64, a timestamp as epoch seconds).
pub fn write_key_text(key: &Key, out: &mut Vec<u8>) {
    match key {
        Key::Uuid(t) | Key::Decimal(t) => write_string(out, t),
        Key::Bytes(b) => {
            out.push(b'"');
            out.extend_from_slice(BASE64.encode(b).as_bytes());
            out.push(b'"');
        }
        Key::Time(v) => {
            out.push(b'"');
            out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes());
            out.push(b'"');
        }
        number => {
            out.push(b'"');
            write_key(number, out);
            out.push(b'"');
        }
    }
}

/// A `SCALAR_MAP` key as JSON: `1`, `2.5`, `true` (no escaping needed inside quotes, where an
/// object key puts them), or a tagged object: `{"bytes":"<base64>"}`, `{"uuid":"<text>"}`,
/// `{"decimal":"<text>"}`, `{"timestamp":<seconds>}`.
pub fn write_key(key: &Key, out: &mut Vec<u8>) {
    match key {
        Key::Int(v) => out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes()),
        Key::Float(v) => write_float(out, *v),
        Key::Bool(v) => out.extend_from_slice(if *v { b"true" } else { b"false" }),
        Key::Bytes(b) => {
            out.extend_from_slice(b"{\"bytes\":\"");
            out.extend_from_slice(BASE64.encode(b).as_bytes());
            out.extend_from_slice(b"\"}");
        }
        Key::Uuid(t) => {
            out.extend_from_slice(b"{\"uuid\":");
            write_string(out, t);
            out.push(b'}');
        }
        Key::Decimal(t) => {
            out.extend_from_slice(b"{\"decimal\":");
            write_string(out, t);
            out.push(b'}');
        }
        Key::Time(v) => {
            out.extend_from_slice(b"{\"timestamp\":");
            out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes());
            out.push(b'}');
        }
    }
}

/// orjson's float form: the shortest round-trip digits; NaN and the infinities become `null`.
pub fn write_float(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        out.extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(json: &str, sort: bool) -> String {
        let mut out = Vec::new();
        write(&Node::from_json(json).unwrap(), sort, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn compact_with_orjson_numbers_and_escapes() {
        assert_eq!(
            text(
                r#"{ "z": [1, 2.0, 1e20, -0.5], "a": "q\"\n" , "m": {"y": null, "b": true}}"#,
                false
            ),
            r#"{"z":[1,2.0,1e+20,-0.5],"a":"q\"\n","m":{"y":null,"b":true}}"#
        );
    }

    #[test]
    fn sorting_reaches_nested_objects() {
        assert_eq!(
            text(r#"{"b": {"d": 1, "c": 2}, "a": [{"y": 1, "x": 2}]}"#, true),
            r#"{"a":[{"x":2,"y":1}],"b":{"c":2,"d":1}}"#
        );
    }

    #[test]
    fn scalar_maps_with_typed_keys_are_tagged_pairs() {
        let node = super::super::node::scalar_map(
            Node::from_json(
                r#"[[1, "a"], [{"bytes": "AP8="}, 2], [{"uuid": "6F1C1C1E8A3B4C4F9D550C8F5D9A1B2C"}, null],
                   [{"decimal": "1.50"}, [1]], [{"timestamp": -5}, {"x": 1}]]"#,
            )
            .unwrap(),
        )
        .unwrap();
        let mut out = Vec::new();
        write(&node, false, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"[[1,"a"],[{"bytes":"AP8="},2],[{"uuid":"6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c"},null],[{"decimal":"1.50"},[1]],[{"timestamp":-5},{"x":1}]]"#
        );
        let numbers =
            super::super::node::scalar_map(Node::from_json("[[1, 2], [2.5, true]]").unwrap())
                .unwrap();
        let mut out = Vec::new();
        write(&numbers, false, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"1":2,"2.5":true}"#);
    }

    #[test]
    fn bytes_are_refused() {
        let mut out = Vec::new();
        let err = write(&Node::Bytes(vec![0]), false, &mut out).unwrap_err();
        assert!(err.contains("no JSON form"));
    }
}
