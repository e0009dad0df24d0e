//! One nested value as a small tree, read from an Arrow cell or from JSON text. Both writers
//! (`json_out`, `proto_out`) work from this tree, so a struct column, a map column and the JSON
//! text of a push body give the same stored value.
use std::fmt;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::text;

/// The element kind an Arrow list declares, kept so an empty list still has a type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    Bool,
    Int,
    Float,
    Str,
    Bytes,
    Time,
}

/// A nested value. Object entries keep their order (a struct's field order, a JSON object's
/// key order); the writers sort where the stored form asks for it.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    /// Seconds since the epoch (a timestamp or date inside a struct).
    Time(i64),
    /// The elements and, when an Arrow type said so, their kind.
    List(Vec<Node>, Option<Leaf>),
    Object(Vec<(String, Node)>),
    /// A map with typed keys (Feast's `SCALAR_MAP`), entries in the order given.
    ScalarMap(Vec<(Key, Node)>),
}

/// A `SCALAR_MAP` key: every kind Feast's `MapKey` holds. Int, float and bool keys are stored
/// as the JSON text of the key (an object's key); the others as a tagged object
/// (`{"bytes": base64}`, `{"uuid": text}`, `{"decimal": text}`, `{"timestamp": seconds}`) in a
/// list of `[key, value]` pairs, since JSON text alone cannot tell them apart.
#[derive(Clone, Debug, PartialEq)]
pub enum Key {
    Int(i64),
    Float(f64),
    Bool(bool),
    Bytes(Vec<u8>),
    /// The canonical text `str(uuid.UUID(...))` gives: lower-case, hyphenated.
    Uuid(String),
    /// The text as given (Feast stores `str(Decimal)`: `1.50` stays `1.50`).
    Decimal(String),
    /// Whole seconds since the epoch (Feast's `unix_timestamp_key`).
    Time(i64),
}

/// The tags of the keys JSON has no type for, in their stored (pair) form.
pub const KEY_TAGS: [&str; 4] = ["bytes", "uuid", "decimal", "timestamp"];

impl Key {
    /// The key a node stands for: an int, a finite float, a bool, bytes or a timestamp (from an
    /// Arrow map column), or a one-entry tagged object (`{"uuid": "..."}`, see [`Key`]).
    pub fn of(node: &Node) -> Result<Self, String> {
        Ok(match node {
            Node::Int(v) => Self::Int(*v),
            Node::Float(v) if v.is_finite() => Self::Float(*v),
            Node::Bool(v) => Self::Bool(*v),
            Node::Bytes(b) => Self::Bytes(b.clone()),
            Node::Time(v) => Self::Time(*v),
            Node::Object(entries) => match entries.as_slice() {
                [(tag, value)] => tagged(tag, value)?,
                _ => {
                    return Err(format!(
                        "a key object has {} entries; a typed key is one of {}",
                        entries.len(),
                        tag_list()
                    ))
                }
            },
            other => {
                return Err(format!(
                    "a key is {}; a SCALAR_MAP's keys are ints, floats, bools or one of {}",
                    other.kind(),
                    tag_list()
                ))
            }
        })
    }

    /// Whether the key is stored as the JSON text of an object key (int, float, bool).
    pub fn is_number(&self) -> bool {
        matches!(self, Self::Int(_) | Self::Float(_) | Self::Bool(_))
    }

    /// Python's equality of dict keys: `1`, `1.0` and `True` are one key.
    fn number(&self) -> Option<f64> {
        match *self {
            Self::Int(v) => Some(v as f64),
            Self::Float(v) => Some(v),
            Self::Bool(v) => Some(f64::from(u8::from(v))),
            _ => None,
        }
    }

    // Exact equality is the point: Python compares dict keys exactly (`1 == 1.0 == True`).
    #[allow(clippy::float_cmp)]
    pub fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Int(a), Self::Int(b)) => a == b,
            (a, b) if a.is_number() && b.is_number() => a.number() == b.number(),
            (a, b) => a == b,
        }
    }
}

fn tag_list() -> String {
    KEY_TAGS.map(|t| format!("{{\"{t}\": ...}}")).join(", ")
}

/// A tagged key object's key, its text checked as Python's `base64`, `uuid.UUID` and
/// `decimal.Decimal` read it.
fn tagged(tag: &str, value: &Node) -> Result<Key, String> {
    match (tag, value) {
        ("bytes", Node::Str(text)) => BASE64
            .decode(text)
            .map(Key::Bytes)
            .map_err(|e| format!("key {{\"bytes\": {text:?}}} is not base64 ({e})")),
        ("uuid", Node::Str(text)) => text::uuid_text(text)
            .map(Key::Uuid)
            .ok_or_else(|| format!("key {{\"uuid\": {text:?}}} is not a UUID")),
        ("decimal", Node::Str(text)) if text::is_decimal(text) => Ok(Key::Decimal(text.clone())),
        ("decimal", Node::Str(text)) => {
            Err(format!("key {{\"decimal\": {text:?}}} is not a decimal"))
        }
        ("timestamp", Node::Int(v)) => Ok(Key::Time(*v)),
        ("bytes" | "uuid" | "decimal", other) => Err(format!(
            "key {{\"{tag}\": ...}} holds {}; expected a string",
            other.kind()
        )),
        ("timestamp", other) => Err(format!(
            "key {{\"timestamp\": ...}} holds {}; expected whole epoch seconds",
            other.kind()
        )),
        _ => Err(format!(
            "key {{\"{tag}\": ...}} has an unknown tag; a typed key is one of {}",
            tag_list()
        )),
    }
}

/// Adds an entry as a Python dict does: a key already present keeps its place, takes the value.
pub fn insert_keyed(entries: &mut Vec<(Key, Node)>, key: Key, value: Node) {
    if let Some(slot) = entries.iter_mut().find(|(k, _)| k.same(&key)) {
        slot.1 = value;
    } else {
        entries.push((key, value));
    }
}

/// A `SCALAR_MAP` value from what a user or a store gives for one: an object whose keys are
/// the JSON text of int, float or bool keys (`{"1": "a", "2.5": "b", "true": "c"}`, what
/// `json.dumps` writes for a dict with such keys), a list of `[key, value]` pairs (keys as JSON
/// numbers, bools or tagged objects, see [`Key`]), or a typed map.
pub fn scalar_map(node: Node) -> Result<Node, String> {
    let bad_key = |key: &str| {
        format!(
            "key {key:?} is not an int, a float or a bool (a SCALAR_MAP's keys are typed: Feast \
             refuses string keys; bytes, UUID, decimal and datetime keys are given as \
             [key, value] pairs with keys such as {{\"uuid\": \"...\"}})"
        )
    };
    match node {
        Node::ScalarMap(_) | Node::Null => Ok(node),
        Node::Object(entries) => {
            let mut out = Vec::with_capacity(entries.len());
            for (text, value) in entries {
                let key = Node::from_json(&text)
                    .ok()
                    .as_ref()
                    .and_then(|k| Key::of(k).ok().filter(Key::is_number))
                    .ok_or_else(|| bad_key(&text))?;
                insert_keyed(&mut out, key, value);
            }
            Ok(Node::ScalarMap(out))
        }
        Node::List(items, _) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let Node::List(mut pair, _) = item else {
                    return Err(format!(
                        "element {i} is {}; expected a [key, value] pair",
                        item.kind()
                    ));
                };
                if pair.len() != 2 {
                    return Err(format!(
                        "element {i} has {} items; expected a [key, value] pair",
                        pair.len()
                    ));
                }
                let value = pair.pop().expect("two items");
                let key = pair.pop().expect("two items");
                let key = match &key {
                    Node::Str(s) => return Err(bad_key(s)),
                    other => Key::of(other).map_err(|e| format!("element {i}: {e}"))?,
                };
                insert_keyed(&mut out, key, value);
            }
            Ok(Node::ScalarMap(out))
        }
        other => Err(format!("{} is not a map", other.kind())),
    }
}

impl Node {
    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "a bool",
            Self::Int(_) => "an integer",
            Self::Float(_) => "a float",
            Self::Str(_) => "a string",
            Self::Bytes(_) => "bytes",
            Self::Time(_) => "a timestamp",
            Self::List(..) => "a list",
            Self::Object(_) => "an object",
            Self::ScalarMap(_) => "a map with typed keys",
        }
    }

    /// Parses JSON text. Big integers beyond int64 are refused (Feast's protobuf has no room
    /// for them); a repeated object key keeps its last value, as Python's `json` does.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let mut de = serde_json::Deserializer::from_str(text);
        let node = Self::deserialize(&mut de).map_err(|e| format!("not valid JSON: {e}"))?;
        de.end().map_err(|e| format!("not valid JSON: {e}"))?;
        Ok(node)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        i64::try_from(v)
            .map(Node::Int)
            .map_err(|_| E::custom(format!("integer {v} does not fit in int64")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items, None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<(String, Node)> = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((key, value)) = map.next_entry::<String, Node>()? {
            if let Some(slot) = entries.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = value;
            } else {
                entries.push((key, value));
            }
        }
        Ok(Node::Object(entries))
    }
}

/// The leaf kind of an Arrow element type, if it is a leaf.
pub fn leaf_of(data_type: &DataType) -> Option<Leaf> {
    Some(match data_type {
        DataType::Boolean => Leaf::Bool,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => Leaf::Int,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => Leaf::Float,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Leaf::Str,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Leaf::Bytes,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => Leaf::Time,
        _ => return None,
    })
}

/// Whether an Arrow type can be read by [`from_arrow`].
pub fn readable(data_type: &DataType) -> bool {
    match data_type {
        DataType::Null => true,
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            readable(f.data_type())
        }
        DataType::Struct(fields) => fields.iter().all(|f| readable(f.data_type())),
        DataType::Map(entries, _) => readable(entries.data_type()),
        other => leaf_of(other).is_some(),
    }
}

fn seconds(value: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => value,
        TimeUnit::Millisecond => value.div_euclid(1_000),
        TimeUnit::Microsecond => value.div_euclid(1_000_000),
        TimeUnit::Nanosecond => value.div_euclid(1_000_000_000),
    }
}

/// The value of one Arrow cell (a null cell is `Node::Null`). `readable(array.data_type())`
/// must hold; other types give an error.
pub fn from_arrow(array: &dyn Array, i: usize) -> Result<Node, String> {
    if array.is_null(i) {
        return Ok(Node::Null);
    }
    Ok(match array.data_type() {
        DataType::Null => Node::Null,
        DataType::Boolean => Node::Bool(array.as_boolean().value(i)),
        DataType::Int8 => Node::Int(i64::from(array.as_primitive::<Int8Type>().value(i))),
        DataType::Int16 => Node::Int(i64::from(array.as_primitive::<Int16Type>().value(i))),
        DataType::Int32 => Node::Int(i64::from(array.as_primitive::<Int32Type>().value(i))),
        DataType::Int64 => Node::Int(array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Node::Int(i64::from(array.as_primitive::<UInt8Type>().value(i))),
        DataType::UInt16 => Node::Int(i64::from(array.as_primitive::<UInt16Type>().value(i))),
        DataType::UInt32 => Node::Int(i64::from(array.as_primitive::<UInt32Type>().value(i))),
        DataType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(i);
            Node::Int(i64::try_from(v).map_err(|_| format!("{v} does not fit in int64"))?)
        }
        DataType::Float16 => Node::Float(array.as_primitive::<Float16Type>().value(i).to_f64()),
        DataType::Float32 => Node::Float(f64::from(array.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => Node::Float(array.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Node::Str(array.as_string::<i32>().value(i).to_owned()),
        DataType::LargeUtf8 => Node::Str(array.as_string::<i64>().value(i).to_owned()),
        DataType::Utf8View => Node::Str(array.as_string_view().value(i).to_owned()),
        DataType::Binary => Node::Bytes(array.as_binary::<i32>().value(i).to_vec()),
        DataType::LargeBinary => Node::Bytes(array.as_binary::<i64>().value(i).to_vec()),
        DataType::BinaryView => Node::Bytes(array.as_binary_view().value(i).to_vec()),
        DataType::Timestamp(unit, _) => {
            let v = match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(i),
                TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(i),
                TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(i),
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(i),
            };
            Node::Time(seconds(v, *unit))
        }
        DataType::Date32 => {
            Node::Time(i64::from(array.as_primitive::<Date32Type>().value(i)) * 86_400)
        }
        DataType::Date64 => Node::Time(
            array
                .as_primitive::<Date64Type>()
                .value(i)
                .div_euclid(1_000),
        ),
        DataType::List(f) => {
            let list = array.as_list::<i32>();
            items(list.value(i).as_ref(), leaf_of(f.data_type()))?
        }
        DataType::LargeList(f) => {
            let list = array.as_list::<i64>();
            items(list.value(i).as_ref(), leaf_of(f.data_type()))?
        }
        DataType::FixedSizeList(f, _) => {
            let list = array.as_fixed_size_list();
            items(list.value(i).as_ref(), leaf_of(f.data_type()))?
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let mut entries = Vec::with_capacity(fields.len());
            for (field, child) in fields.iter().zip(s.columns()) {
                entries.push((field.name().clone(), from_arrow(child.as_ref(), i)?));
            }
            Node::Object(entries)
        }
        DataType::Map(..) => map_node(array, i)?,
        other => return Err(format!("Arrow type {other} has no nested value form")),
    })
}

/// A map cell: string keys make an object, int, float or bool keys a typed map.
fn map_node(array: &dyn Array, i: usize) -> Result<Node, String> {
    let map = array.as_map();
    let entries = map.value(i);
    let keys = entries.column(0);
    let values = entries.column(1);
    match leaf_of(keys.data_type()) {
        // An empty map is an empty object whatever its key type (a ScalarMap takes it too).
        _ if entries.is_empty() => return Ok(Node::Object(Vec::new())),
        Some(Leaf::Str) => {}
        Some(Leaf::Int | Leaf::Float | Leaf::Bool | Leaf::Bytes | Leaf::Time) => {
            let mut out = Vec::with_capacity(entries.len());
            for j in 0..entries.len() {
                let key = Key::of(&from_arrow(keys.as_ref(), j)?)?;
                insert_keyed(&mut out, key, from_arrow(values.as_ref(), j)?);
            }
            return Ok(Node::ScalarMap(out));
        }
        _ => {
            return Err(format!(
                "map keys are {}; a Map has string keys, a ScalarMap int, float, bool, \
                 binary or timestamp keys",
                keys.data_type()
            ))
        }
    }
    let mut out: Vec<(String, Node)> = Vec::with_capacity(entries.len());
    for j in 0..entries.len() {
        let Node::Str(key) = from_arrow(keys.as_ref(), j)? else {
            return Err("a map key is null".to_owned());
        };
        let value = from_arrow(values.as_ref(), j)?;
        if let Some(slot) = out.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            out.push((key, value));
        }
    }
    Ok(Node::Object(out))
}

fn items(values: &dyn Array, leaf: Option<Leaf>) -> Result<Node, String> {
    let nodes = (0..values.len())
        .map(|j| from_arrow(values, j))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Node::List(nodes, leaf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_object_order_and_last_duplicate() {
        let node = Node::from_json(r#"{"b": 1, "a": [true, 2.5, "x"], "b": null}"#).unwrap();
        assert_eq!(
            node,
            Node::Object(vec![
                ("b".into(), Node::Null),
                (
                    "a".into(),
                    Node::List(
                        vec![Node::Bool(true), Node::Float(2.5), Node::Str("x".into())],
                        None
                    )
                ),
            ])
        );
    }

    #[test]
    fn json_refuses_bad_text_and_big_integers() {
        assert!(Node::from_json("{not json")
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(Node::from_json("[1] 2").is_err());
        assert!(Node::from_json("18446744073709551615")
            .unwrap_err()
            .contains("does not fit in int64"));
        assert_eq!(Node::from_json("-5").unwrap(), Node::Int(-5));
    }
}
