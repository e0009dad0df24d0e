//! Feast's nested and text-backed value types, from whole Arrow columns (plain Rust; no pyo3).
//!
//! - `json_text`: `MAP`, `MAP_LIST`, `STRUCT`, `STRUCT_LIST`, `VALUE_LIST`, `VALUE_SET` and
//!   `SCALAR_MAP` cells as the compact JSON text the packed layout and `SQLite` store (a Map's
//!   keys sorted, a Struct's fields in order). Takes struct, map, list, `large_list` and
//!   fixed-size list columns or string columns of JSON text (what push bodies and Feast's own
//!   `DataFrames` hold).
//!   A `SCALAR_MAP` keeps its int, float and bool keys typed (`Node::ScalarMap`), entries in order.
//! - `encode_feast` / `decode_feast`: the Feast `Value` protobuf of every such type and of the
//!   sets, UUIDs, decimals and zoned timestamps (`zoned`), byte-identical to Feast 0.67
//!   (`layout: feast`). Decoding gives the Arrow form the other layouts read (JSON text, lists,
//!   strings, `<isoformat>[<zone>]` text).
//! - `check_text`: UUID and decimal text checked as Python parses it.
//!
//! Every error names the column and the row; nothing is written when one cell is bad.
pub mod json_out;
pub mod node;
pub mod proto_in;
pub mod proto_out;
mod sets;
mod shape;
pub mod text;
pub mod zoned;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, StringArray};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::DataType;

use crate::error::CoreError;
use crate::feast_value::{self, ValueType};
use node::{Leaf, Node};
use proto_out::{put_bytes, put_message};
pub use sets::unique_sets;
use sets::{set_error, set_name, sort_unique, write_set};

/// How one nested value type is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nested {
    Map,
    MapList,
    Struct,
    StructList,
    ValueList,
    ValueSet,
    ScalarMap,
}

impl Nested {
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            20 => Self::Map,
            21 => Self::MapList,
            34 => Self::Struct,
            35 => Self::StructList,
            42 => Self::ValueList,
            43 => Self::ValueSet,
            47 => Self::ScalarMap,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Map => "MAP",
            Self::MapList => "MAP_LIST",
            Self::Struct => "STRUCT",
            Self::StructList => "STRUCT_LIST",
            Self::ValueList => "VALUE_LIST",
            Self::ValueSet => "VALUE_SET",
            Self::ScalarMap => "SCALAR_MAP",
        }
    }

    /// A Map's stored JSON has its keys sorted (Feast's protobuf map has no order to keep).
    fn sorts_keys(self) -> bool {
        matches!(self, Self::Map | Self::MapList | Self::ScalarMap)
    }
}

/// Whether a column holds text (JSON text, a stored nested value).
pub fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Cell `i` of a text column (`is_text`).
pub fn text_at(array: &dyn Array, i: usize) -> &str {
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(i),
        DataType::LargeUtf8 => array.as_string::<i64>().value(i),
        _ => array.as_string_view().value(i),
    }
}

/// The cells of a column as nodes: parsed JSON text, or read from a nested Arrow column.
struct Cells<'a> {
    array: &'a dyn Array,
    text: bool,
}

impl<'a> Cells<'a> {
    fn new(array: &'a dyn Array, type_name: &str, column: &str) -> Result<Self, CoreError> {
        let text = is_text(array.data_type());
        if !text && !node::readable(array.data_type()) {
            return Err(CoreError::unsupported(
                column,
                format!(
                    "a {type_name} feature is written from a struct, map or list column or \
                     from JSON text, got Arrow {}",
                    array.data_type()
                ),
            ));
        }
        Ok(Self { array, text })
    }

    fn get(&self, i: usize) -> Result<Node, String> {
        if self.array.is_null(i) {
            Ok(Node::Null)
        } else if self.text {
            Node::from_json(text_at(self.array, i))
        } else {
            node::from_arrow(self.array, i)
        }
    }
}

fn unknown_type(code: i64, column: &str) -> CoreError {
    CoreError::unsupported(
        column,
        format!("value type {code} is not a nested or text-backed Feast type"),
    )
}

/// The JSON text column a MAP/STRUCT/... feature is stored as. `declared` is the feature's
/// Arrow type (a Struct's fields, a list's element), checked against every value.
pub fn json_text(
    array: &dyn Array,
    value_type: i64,
    declared: Option<&DataType>,
    column: &str,
) -> Result<StringArray, CoreError> {
    let nested = Nested::from_code(value_type).ok_or_else(|| unknown_type(value_type, column))?;
    let cells = Cells::new(array, nested.name(), column)?;
    let n = array.len();
    let mut data = Vec::with_capacity(n * 32);
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0i32);
    let mut valid = Vec::with_capacity(n);
    // Every value is also put through the protobuf writer: what Feast refuses to store (a list
    // mixing kinds, an untyped empty list) is refused on every layout, not only `feast`.
    let mut scratch = Vec::new();
    for i in 0..n {
        let mut node = cell(&cells, i, nested).map_err(|e| bad(column, i, nested, &e))?;
        valid.push(node != Node::Null);
        if node != Node::Null {
            shape::check(&node, nested, declared).map_err(|e| bad(column, i, nested, &e))?;
            scratch.clear();
            write_nested(&node, nested, &mut scratch).map_err(|e| bad(column, i, nested, &e))?;
            if matches!(nested, Nested::ValueList | Nested::ValueSet) {
                empty_inner_to_null(&mut node);
            }
            json_out::write(&node, nested.sorts_keys(), &mut data)
                .map_err(|e| bad(column, i, nested, &e))?;
        }
        offsets.push(offset(data.len())?);
    }
    Ok(text_column(data, offsets, valid))
}

/// One cell as the node its type asks for: transport text unwrapped, a `SCALAR_MAP`'s keys typed.
fn cell(cells: &Cells<'_>, i: usize, nested: Nested) -> Result<Node, String> {
    let mut node = cells.get(i)?;
    unwrap_transport_text(&mut node, nested)?;
    if nested == Nested::ScalarMap {
        node = node::scalar_map(node)?;
    }
    Ok(node)
}

/// Feast's remote client sends a Map or Struct value as the JSON text of the object (and a
/// `MapList` or `StructList` as a list of such texts), so its writes arrive as strings where an
/// object is expected: each such string is read as the JSON it holds.
fn unwrap_transport_text(node: &mut Node, nested: Nested) -> Result<(), String> {
    fn parse(node: &mut Node) -> Result<(), String> {
        if let Node::Str(text) = node {
            let parsed = Node::from_json(text).map_err(|e| {
                format!("a string is not an object (nor the JSON text of one: {e})")
            })?;
            *node = parsed;
        }
        Ok(())
    }
    match (nested, node) {
        (Nested::Map | Nested::Struct | Nested::ScalarMap, node) => parse(node),
        (Nested::MapList | Nested::StructList, Node::List(items, _)) => {
            items.iter_mut().try_for_each(parse)
        }
        _ => Ok(()),
    }
}

/// Feast stores an empty inner collection of a `VALUE_LIST` as an empty Value, read back as
/// `None`: the JSON text says `null` for it too, so every layout reads the same.
fn empty_inner_to_null(node: &mut Node) {
    if let Node::List(items, _) = node {
        for item in items {
            if matches!(item, Node::List(inner, _) if inner.is_empty()) {
                *item = Node::Null;
            }
        }
    }
}

/// The elements of a JSON array as one JSON text cell each (`null` elements as null cells):
/// a push body's nested column, serialized once as a whole (`orjson.dumps(values)`), split
/// here, so every value keeps its own keys (Arrow's struct inference would fill in missing
/// ones with nulls and refuse mixed ones) and is checked by `json_text` with its row.
pub fn json_array_cells(text: &str, column: &str) -> Result<StringArray, CoreError> {
    let items = match Node::from_json(text) {
        Ok(Node::List(items, _)) => items,
        Ok(other) => {
            return Err(CoreError::unsupported(
                column,
                format!("expected a JSON array, got {}", other.kind()),
            ))
        }
        Err(e) => return Err(CoreError::unsupported(column, e)),
    };
    let mut data = Vec::with_capacity(text.len());
    let mut offsets = Vec::with_capacity(items.len() + 1);
    offsets.push(0i32);
    let mut valid = Vec::with_capacity(items.len());
    for (row, item) in items.iter().enumerate() {
        valid.push(*item != Node::Null);
        if *item != Node::Null {
            json_out::write(item, false, &mut data)
                .map_err(|e| CoreError::invalid(column, row, e))?;
        }
        offsets.push(offset(data.len())?);
    }
    Ok(text_column(data, offsets, valid))
}

/// Appends stored JSON text as the compact JSON value it holds (what orjson prints after
/// parsing it); text that is not JSON goes out as a string, as Feast's SDK returns it.
pub fn embed_json(text: &str, out: &mut Vec<u8>) {
    let start = out.len();
    let written = Node::from_json(text).and_then(|node| json_out::write(&node, false, out));
    if written.is_err() {
        out.truncate(start);
        crate::response::write_string(out, text);
    }
}

fn bad(column: &str, row: usize, nested: Nested, detail: &str) -> CoreError {
    CoreError::invalid(
        column,
        row,
        format!("not a {} value: {detail}", nested.name()),
    )
}

/// A string column of the cells written into `data` (null where `valid` says so).
fn text_column(data: Vec<u8>, offsets: Vec<i32>, valid: Vec<bool>) -> StringArray {
    let nulls = NullBuffer::from(valid);
    StringArray::new(
        OffsetBuffer::new(offsets.into()),
        data.into(),
        (nulls.null_count() > 0).then_some(nulls),
    )
}

fn offset(len: usize) -> Result<i32, CoreError> {
    i32::try_from(len)
        .map_err(|_| CoreError::InvalidArgument("encoded column exceeds 2 GiB".to_owned()))
}

/// Whether `value_type` is one `encode_feast`/`decode_feast` handle (beyond `feast_value`'s).
pub fn is_native(value_type: i64) -> bool {
    Nested::from_code(value_type).is_some()
        || value_type == ZONED_TIMESTAMP
        || (22..=29).contains(&value_type)
        || (text_kind(value_type).is_some() && !matches!(value_type, 32 | 33))
}

/// Feast's `ZONED_TIMESTAMP` value type (`zoned`).
pub const ZONED_TIMESTAMP: i64 = 48;

/// `JSON`, `UUID`/`TIME_UUID`/`DECIMAL` and their lists and sets: (checker, type name, shape).
type TextKind = (fn(&str) -> bool, &'static str, Shape);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    One,
    List,
    Set,
}

fn text_kind(code: i64) -> Option<TextKind> {
    let uuid: fn(&str) -> bool = text::is_uuid;
    let decimal: fn(&str) -> bool = text::is_decimal;
    let json: fn(&str) -> bool = text::is_json;
    Some(match code {
        32 => (json, "JSON", Shape::One),
        33 => (json, "JSON_LIST", Shape::List),
        36 => (uuid, "UUID", Shape::One),
        37 => (uuid, "TIME_UUID", Shape::One),
        44 => (decimal, "DECIMAL", Shape::One),
        38 => (uuid, "UUID_LIST", Shape::List),
        39 => (uuid, "TIME_UUID_LIST", Shape::List),
        45 => (decimal, "DECIMAL_LIST", Shape::List),
        40 => (uuid, "UUID_SET", Shape::Set),
        41 => (uuid, "TIME_UUID_SET", Shape::Set),
        46 => (decimal, "DECIMAL_SET", Shape::Set),
        _ => return None,
    })
}

/// Checks the text of a JSON/UUID/DECIMAL (or list/set of them) column; a string or list-of-string
/// column. Null cells and null elements pass (they are stored as nulls).
pub fn check_text(array: &dyn Array, value_type: i64, column: &str) -> Result<(), CoreError> {
    let (ok, name, shape) =
        text_kind(value_type).ok_or_else(|| unknown_type(value_type, column))?;
    let what = match name.as_bytes()[0] {
        b'D' => "a decimal",
        b'J' => "JSON",
        _ => "a UUID",
    };
    let check = |row: usize, s: &str| {
        if ok(s) {
            Ok(())
        } else {
            Err(CoreError::invalid(
                column,
                row,
                format!("{s:?} is not {what} ({name})"),
            ))
        }
    };
    let each = |values: &dyn Array, row: usize| -> Result<(), CoreError> {
        for j in 0..values.len() {
            if values.is_valid(j) {
                check(row, text_at(values, j))?;
            }
        }
        Ok(())
    };
    match (shape, array.data_type()) {
        (Shape::One, t) if is_text(t) => {
            for i in 0..array.len() {
                if array.is_valid(i) {
                    check(i, text_at(array, i))?;
                }
            }
        }
        (Shape::List | Shape::Set, DataType::List(f)) if is_text(f.data_type()) => {
            let list = array.as_list::<i32>();
            for i in 0..array.len() {
                if list.is_valid(i) {
                    each(list.value(i).as_ref(), i)?;
                }
            }
        }
        (Shape::List | Shape::Set, DataType::LargeList(f)) if is_text(f.data_type()) => {
            let list = array.as_list::<i64>();
            for i in 0..array.len() {
                if list.is_valid(i) {
                    each(list.value(i).as_ref(), i)?;
                }
            }
        }
        (_, t) => {
            return Err(CoreError::unsupported(
                column,
                format!("a {name} feature is written from text, got Arrow {t}"),
            ))
        }
    }
    Ok(())
}

/// The Value oneof field a type's values are written in.
fn feast_field(value_type: i64) -> u32 {
    u32::try_from(value_type).expect("checked by the caller")
}

/// Feast Value bytes (zero bytes for null) for a column of a nested, set, UUID or decimal type:
/// what Feast's SDK writes for the same values. Nested features take what `json_text` takes
/// (its JSON text output included); sets, UUIDs and decimals take their list/string columns.
pub fn encode_feast(
    array: &dyn Array,
    value_type: i64,
    column: &str,
) -> Result<BinaryArray, CoreError> {
    let n = array.len();
    let mut data = Vec::with_capacity(n * 32);
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0i32);
    if value_type == ZONED_TIMESTAMP {
        return zoned::encode_feast(array, column);
    }
    if let Some(nested) = Nested::from_code(value_type) {
        let cells = Cells::new(array, nested.name(), column)?;
        for i in 0..n {
            let node = cell(&cells, i, nested).map_err(|e| bad(column, i, nested, &e))?;
            if node != Node::Null {
                shape::check(&node, nested, None).map_err(|e| bad(column, i, nested, &e))?;
                write_nested(&node, nested, &mut data).map_err(|e| bad(column, i, nested, &e))?;
            }
            offsets.push(offset(data.len())?);
        }
    } else if (22..=29).contains(&value_type) {
        let name = set_name(value_type);
        let cells = Cells::new(array, name, column)?;
        if cells.text {
            return Err(CoreError::unsupported(
                column,
                format!("a {name} feature is written from a list column, got Arrow string"),
            ));
        }
        for i in 0..n {
            let node = cells.get(i).map_err(|e| set_error(column, i, name, &e))?;
            if let Node::List(items, _) = node {
                write_set(items, value_type, &mut data)
                    .map_err(|e| set_error(column, i, name, &e))?;
            }
            offsets.push(offset(data.len())?);
        }
    } else if let Some((_, name, shape)) = text_kind(value_type) {
        check_text(array, value_type, column)?;
        let field = feast_field(value_type);
        for i in 0..n {
            if array.is_valid(i) {
                let node =
                    node::from_arrow(array, i).map_err(|e| set_error(column, i, name, &e))?;
                match (shape, node) {
                    (Shape::One, Node::Str(s)) => put_bytes(&mut data, field, s.as_bytes()),
                    (Shape::List | Shape::Set, Node::List(mut items, _)) => {
                        if items.contains(&Node::Null) {
                            return Err(set_error(column, i, name, "a null element"));
                        }
                        if shape == Shape::Set {
                            sort_unique(&mut items);
                        }
                        put_message(&mut data, field, |m| {
                            proto_out::write_elements(&items, Leaf::Str, m);
                            Ok::<(), CoreError>(())
                        })?;
                    }
                    _ => {}
                }
            }
            offsets.push(offset(data.len())?);
        }
    } else {
        return Err(unknown_type(value_type, column));
    }
    Ok(BinaryArray::new(
        OffsetBuffer::new(offsets.into()),
        data.into(),
        None,
    ))
}

fn write_nested(node: &Node, nested: Nested, out: &mut Vec<u8>) -> Result<(), String> {
    let items = |node: &Node| match node {
        Node::List(items, _) => items.clone(),
        _ => Vec::new(),
    };
    match nested {
        Nested::Map | Nested::Struct => {
            let Node::Object(entries) = node else {
                return Err(format!("{} is not an object", node.kind()));
            };
            let field = if nested == Nested::Map { 20 } else { 34 };
            put_message(out, field, |m| proto_out::write_map(entries, m))
        }
        Nested::MapList | Nested::StructList => {
            let field = if nested == Nested::MapList { 21 } else { 35 };
            put_message(out, field, |m| proto_out::write_map_list(&items(node), m))
        }
        Nested::ValueList | Nested::ValueSet => {
            let field = if nested == Nested::ValueList { 42 } else { 43 };
            put_message(out, field, |m| proto_out::write_repeated(&items(node), m))
        }
        Nested::ScalarMap => {
            let Node::ScalarMap(entries) = node else {
                return Err(format!("{} is not a map with typed keys", node.kind()));
            };
            put_message(out, 47, |m| proto_out::write_scalar_map(entries, m))
        }
    }
}

/// Feast Value bytes back to the Arrow form the other layouts read for `value_type`: JSON text
/// for nested types, the list type for sets, strings for UUIDs and decimals (and their lists).
/// `declared` (the feature's Arrow type) puts a Struct's fields back in their declared order.
pub fn decode_feast(
    array: &dyn Array,
    value_type: i64,
    declared: Option<&DataType>,
    column: &str,
) -> Result<ArrayRef, CoreError> {
    if value_type == ZONED_TIMESTAMP {
        let cells = binary_cells(array, column)?;
        let values: Vec<Option<&[u8]>> = (0..array.len())
            .map(|i| array.is_valid(i).then(|| cells.get(i)))
            .collect();
        return Ok(Arc::new(zoned::decode_feast(&values, column)?));
    }
    let stored = match value_type {
        22..=29 => value_type - 11,
        36 | 37 | 44 => 2,
        38..=41 | 45 | 46 => 12,
        _ => {
            let nested =
                Nested::from_code(value_type).ok_or_else(|| unknown_type(value_type, column))?;
            let order = declared.map(struct_order).unwrap_or_default();
            return Ok(Arc::new(decode_nested(array, nested, &order, column)?));
        }
    };
    feast_value::decode_values(array, ValueType::from_code(stored)?, column)
}

/// The field names of a struct type, or of a list's struct elements.
fn struct_order(t: &DataType) -> Vec<String> {
    match t {
        DataType::Struct(fields) => fields.iter().map(|f| f.name().clone()).collect(),
        DataType::List(f) | DataType::LargeList(f) => struct_order(f.data_type()),
        _ => Vec::new(),
    }
}

fn binary_cells<'a>(
    array: &'a dyn Array,
    column: &str,
) -> Result<crate::columns::BytesColumn<'a>, CoreError> {
    crate::columns::bytes_column(array, false).ok_or_else(|| {
        CoreError::unsupported(
            column,
            format!(
                "Feast Values are decoded from a binary column, got Arrow {}",
                array.data_type()
            ),
        )
    })
}

fn decode_nested(
    array: &dyn Array,
    nested: Nested,
    order: &[String],
    column: &str,
) -> Result<StringArray, CoreError> {
    let cells = binary_cells(array, column)?;
    let accepted: &[u32] = match nested {
        Nested::Map | Nested::Struct => &[20, 34],
        Nested::ScalarMap => &[47],
        Nested::MapList | Nested::StructList => &[21, 35],
        Nested::ValueList | Nested::ValueSet => &[42, 43],
    };
    let n = array.len();
    let mut data = Vec::with_capacity(n * 32);
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0i32);
    let mut valid = Vec::with_capacity(n);
    for row in 0..n {
        let bytes = if array.is_valid(row) {
            cells.get(row)
        } else {
            &[]
        };
        let oneof = proto_in::oneof(bytes).map_err(|e| {
            CoreError::decode(column, row, format!("not a valid feast.types.Value: {e}"))
        })?;
        match oneof {
            None | Some((19, _)) => valid.push(false),
            Some((field, _)) if accepted.contains(&field) => {
                proto_in::write_value_ordered(bytes, order, &mut data)
                    .map_err(|e| CoreError::decode(column, row, e))?;
                valid.push(true);
            }
            Some((field, _)) => {
                return Err(CoreError::decode(
                    column,
                    row,
                    format!(
                        "expected a {} Value, found oneof field {field}",
                        nested.name()
                    ),
                ))
            }
        }
        offsets.push(offset(data.len())?);
    }
    Ok(text_column(data, offsets, valid))
}

#[cfg(test)]
mod tests;
