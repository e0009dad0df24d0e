//! Nested values as Feast `Value` protobuf bytes, as Feast 0.67's SDK builds them from the
//! same Python values (docs/feast-compatibility.md): a dict is a `Map` of `Value`s whose types
//! are inferred from each element (int → `int64_val`, float → `double_val`, str, bool, bytes,
//! datetime → `unix_timestamp_val` seconds, dict → `map_val`, list of dicts → `map_list_val`,
//! list of one scalar kind → that kind's list). Map entries are written in protobuf's
//! deterministic order (`upb_key_order`; Feast's own order is its runtime's hash order, which
//! varies between processes); sets are written deduplicated and sorted for the same reason.
use super::node::{Key, Leaf, Node};

pub const WIRE_VARINT: u8 = 0;
pub const WIRE_FIXED64: u8 = 1;
pub const WIRE_LEN: u8 = 2;
pub const WIRE_FIXED32: u8 = 5;

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

/// Writes a length-delimited field whose body `body` appends to `out`.
pub fn put_message<E>(
    out: &mut Vec<u8>,
    field: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    let mut inner = Vec::new();
    body(&mut inner)?;
    put_key(out, field, WIRE_LEN);
    put_varint(out, inner.len() as u64);
    out.extend_from_slice(&inner);
    Ok(())
}

pub fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, WIRE_LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The body of a `Value` for `node` (nothing for null: Feast's empty Value).
pub fn write_value(node: &Node, out: &mut Vec<u8>) -> Result<(), String> {
    match node {
        Node::Null => {}
        Node::Bool(v) => {
            put_key(out, 7, WIRE_VARINT);
            out.push(u8::from(*v));
        }
        Node::Int(v) => {
            put_key(out, 4, WIRE_VARINT);
            put_varint(out, *v as u64);
        }
        // Feast writes a NaN as an empty Value (`python_values_to_proto_values`).
        Node::Float(v) if v.is_nan() => {}
        Node::Float(v) => {
            put_key(out, 5, WIRE_FIXED64);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Node::Str(s) => put_bytes(out, 2, s.as_bytes()),
        Node::Bytes(b) => put_bytes(out, 1, b),
        Node::Time(v) => {
            put_key(out, 8, WIRE_VARINT);
            put_varint(out, *v as u64);
        }
        Node::Object(entries) => put_message(out, 20, |m| write_map(entries, m))?,
        Node::ScalarMap(entries) => put_message(out, 47, |m| write_scalar_map(entries, m))?,
        Node::List(items, leaf) => write_list(items, *leaf, out)?,
    }
    Ok(())
}

/// The body of a `ScalarMap` message: one `ScalarMapEntry { MapKey key = 1; Value value = 2 }`
/// per entry, in the order given (Feast keeps the dict's order). An int key is `int64_key`,
/// a float `double_key`, a bool `bool_key`, a timestamp `unix_timestamp_key`, bytes
/// `bytes_key`, a UUID `uuid_key` and a decimal `decimal_key` (their text), as Feast converts
/// Python's `int`, `float`, `bool`, `datetime`, `bytes`, `uuid.UUID` and `decimal.Decimal`.
pub fn write_scalar_map(entries: &[(Key, Node)], out: &mut Vec<u8>) -> Result<(), String> {
    for (key, value) in entries {
        put_message(out, 1, |entry| {
            put_message(entry, 1, |k| {
                match key {
                    Key::Int(v) => {
                        put_key(k, 2, WIRE_VARINT);
                        put_varint(k, *v as u64);
                    }
                    Key::Float(v) => {
                        put_key(k, 4, WIRE_FIXED64);
                        k.extend_from_slice(&v.to_le_bytes());
                    }
                    Key::Bool(v) => {
                        put_key(k, 5, WIRE_VARINT);
                        k.push(u8::from(*v));
                    }
                    Key::Time(v) => {
                        put_key(k, 6, WIRE_VARINT);
                        put_varint(k, *v as u64);
                    }
                    Key::Bytes(b) => put_bytes(k, 7, b),
                    Key::Uuid(t) => put_bytes(k, 8, t.as_bytes()),
                    Key::Decimal(t) => put_bytes(k, 10, t.as_bytes()),
                }
                Ok::<(), String>(())
            })?;
            put_message(entry, 2, |v| write_value(value, v))
        })?;
    }
    Ok(())
}

/// protobuf's (upb's) deterministic order of string map keys: bytewise on the common prefix,
/// and where one key is a prefix of the other, the longer first (`"ab"` before `"a"`, `""`
/// last), as Feast's Python runtime sorts them.
pub fn upb_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    let n = a.len().min(b.len());
    a.as_bytes()[..n]
        .cmp(&b.as_bytes()[..n])
        .then_with(|| b.len().cmp(&a.len()))
}

/// The body of a `Map` message: one `val` entry per key, in protobuf's deterministic order.
pub fn write_map(entries: &[(String, Node)], out: &mut Vec<u8>) -> Result<(), String> {
    let mut order: Vec<&(String, Node)> = entries.iter().collect();
    order.sort_by(|a, b| upb_key_order(&a.0, &b.0));
    for (key, value) in order {
        put_message(out, 1, |entry| {
            put_bytes(entry, 1, key.as_bytes());
            put_message(entry, 2, |v| {
                write_value(value, v).map_err(|e| format!("key '{key}': {e}"))
            })
        })?;
    }
    Ok(())
}

/// The body of a `MapList` message from a list whose elements must all be objects.
pub fn write_map_list(items: &[Node], out: &mut Vec<u8>) -> Result<(), String> {
    for (i, item) in items.iter().enumerate() {
        let Node::Object(entries) = item else {
            return Err(format!(
                "element {i} is {}; a list of maps holds only maps",
                item.kind()
            ));
        };
        put_message(out, 1, |m| write_map(entries, m))?;
    }
    Ok(())
}

fn leaf(node: &Node) -> Result<Leaf, String> {
    Ok(match node {
        Node::Bool(_) => Leaf::Bool,
        Node::Int(_) => Leaf::Int,
        Node::Float(_) => Leaf::Float,
        Node::Str(_) => Leaf::Str,
        Node::Bytes(_) => Leaf::Bytes,
        Node::Time(_) => Leaf::Time,
        Node::Null => return Err("a list inside a nested value holds a null".to_owned()),
        Node::List(..) => {
            return Err("a list of lists inside a nested value has no Feast type".to_owned())
        }
        Node::Object(_) => return Err("a list mixes maps with other values".to_owned()),
        Node::ScalarMap(_) => {
            return Err("a list of maps with typed keys has no Feast type".to_owned())
        }
    })
}

/// The `Value` list oneof field of a leaf kind (`*_list_val`).
fn list_field(kind: Leaf) -> u32 {
    match kind {
        Leaf::Bytes => 11,
        Leaf::Str => 12,
        Leaf::Int => 14,
        Leaf::Float => 15,
        Leaf::Bool => 17,
        Leaf::Time => 18,
    }
}

/// A list inside a nested value (or a `VALUE_LIST` element): its kind is its elements' kind,
/// which must be one throughout; a list of objects is a `map_list_val`.
fn write_list(items: &[Node], declared: Option<Leaf>, out: &mut Vec<u8>) -> Result<(), String> {
    if matches!(items.first(), Some(Node::Object(_))) {
        return put_message(out, 21, |m| write_map_list(items, m));
    }
    let kind = match (items.first(), declared) {
        (Some(first), _) => leaf(first)?,
        (None, Some(kind)) => kind,
        (None, None) => {
            return Err("an empty list inside a nested value has no element type".to_owned())
        }
    };
    for (i, item) in items.iter().enumerate() {
        let k = leaf(item)?;
        if k != kind {
            return Err(format!(
                "a list mixes {} and {} (element {i})",
                items[0].kind(),
                item.kind()
            ));
        }
    }
    put_message(out, list_field(kind), |m| {
        write_elements(items, kind, m);
        Ok::<(), String>(())
    })
}

/// The body of a `*List`/`*Set` message holding `items` (all of `kind`).
pub fn write_elements(items: &[Node], kind: Leaf, out: &mut Vec<u8>) {
    match kind {
        Leaf::Str | Leaf::Bytes => {
            for item in items {
                match item {
                    Node::Str(s) => put_bytes(out, 1, s.as_bytes()),
                    Node::Bytes(b) => put_bytes(out, 1, b),
                    _ => {}
                }
            }
        }
        _ if items.is_empty() => {}
        _ => {
            let mut packed = Vec::with_capacity(items.len() * 8);
            for item in items {
                match item {
                    Node::Bool(v) => packed.push(u8::from(*v)),
                    Node::Int(v) | Node::Time(v) => put_varint(&mut packed, *v as u64),
                    Node::Float(v) => packed.extend_from_slice(&v.to_le_bytes()),
                    _ => {}
                }
            }
            put_bytes(out, 1, &packed);
        }
    }
}

/// A `VALUE_LIST`/`VALUE_SET` value's `RepeatedValue` body: one `Value` per inner collection;
/// a null or empty one is an empty Value, one holding lists nests another `list_val`.
pub fn write_repeated(items: &[Node], out: &mut Vec<u8>) -> Result<(), String> {
    for (i, item) in items.iter().enumerate() {
        put_message(out, 1, |v| match item {
            Node::Null => Ok(()),
            Node::List(inner, _) if inner.is_empty() => Ok(()),
            Node::List(inner, _) if inner.iter().any(|n| matches!(n, Node::List(..))) => {
                put_message(v, 42, |r| write_repeated(inner, r))
            }
            Node::List(inner, leaf) => write_list(inner, *leaf, v),
            other => Err(format!(
                "element {i} is {}; a list of lists holds lists",
                other.kind()
            )),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(node: &Node) -> String {
        let mut out = Vec::new();
        write_value(node, &mut out).unwrap();
        out.iter().fold(String::new(), |mut s, x| {
            let _ = std::fmt::Write::write_fmt(&mut s, format_args!("{x:02x}"));
            s
        })
    }

    #[test]
    fn maps_match_the_reference_sample() {
        // docs/feast-compatibility.md: {"a": int64 1} → a201090a070a016112022001
        let node = Node::from_json(r#"{"a": 1}"#).unwrap();
        assert_eq!(hex(&node), "a201090a070a016112022001");
        assert_eq!(hex(&Node::from_json("{}").unwrap()), "a20100");
    }

    #[test]
    fn map_entries_are_sorted_and_nulls_are_empty_values() {
        let node = Node::from_json(r#"{"b": null, "a": "x"}"#).unwrap();
        assert_eq!(hex(&node), "a201110a080a016112031201780a050a01621200");
    }

    #[test]
    fn keys_sort_as_upb_sorts_them() {
        // Recorded from Feast's runtime: ['B', 'aa', 'abc', 'ab', 'a', 'b', 'é', ''].
        let mut keys = vec!["", "a", "ab", "abc", "aa", "B", "b", "é"];
        keys.sort_by(|a, b| upb_key_order(a, b));
        assert_eq!(keys, ["B", "aa", "abc", "ab", "a", "b", "é", ""]);
    }

    #[test]
    fn lists_need_one_kind() {
        let mut out = Vec::new();
        let mixed = Node::from_json(r#"{"a": [1, "x"]}"#).unwrap();
        assert!(write_value(&mixed, &mut out).unwrap_err().contains("mixes"));
        let empty = Node::from_json(r#"{"a": []}"#).unwrap();
        assert!(write_value(&empty, &mut out)
            .unwrap_err()
            .contains("no element type"));
        let typed = Node::List(vec![], Some(Leaf::Int));
        assert_eq!(hex(&typed), "7200");
    }
}
