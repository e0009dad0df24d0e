//! Sets: Feast stores `list(set(values))`; Repast writes each row's elements deduplicated and
//! sorted, in the set's own oneof for `layout: feast` and as a list elsewhere, so every layout
//! holds and reads back the same elements in the same order.
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, UInt32Array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::DataType;

use super::node::{self, Leaf, Node};
use super::proto_out::{self, put_bytes, put_message};
use super::{feast_field, offset, unknown_type};
use crate::error::CoreError;

pub(super) fn set_name(code: i64) -> &'static str {
    [
        "BYTES_SET",
        "STRING_SET",
        "INT32_SET",
        "INT64_SET",
        "DOUBLE_SET",
        "FLOAT_SET",
        "BOOL_SET",
        "UNIX_TIMESTAMP_SET",
    ][usize::try_from(code - 22).expect("22..=29")]
}

pub(super) fn set_error(column: &str, row: usize, name: &str, detail: &str) -> CoreError {
    CoreError::invalid(column, row, format!("not a {name} value: {detail}"))
}

/// The order of set elements: numbers by value, text and bytes bytewise; equal means one
/// element (Python's set takes 0.0 and -0.0 as one).
fn node_order(a: &Node, b: &Node) -> std::cmp::Ordering {
    fn rank(n: &Node) -> (u8, f64, i64, &[u8]) {
        match n {
            Node::Bool(b) => (0, 0.0, i64::from(*b), &[]),
            Node::Int(v) | Node::Time(v) => (1, 0.0, *v, &[]),
            // -0.0 ranks as 0.0 so the two compare equal.
            Node::Float(v) => (2, *v + 0.0, 0, &[]),
            Node::Str(s) => (3, 0.0, 0, s.as_bytes()),
            Node::Bytes(b) => (3, 0.0, 0, b),
            _ => (4, 0.0, 0, &[]),
        }
    }
    let (ra, rb) = (rank(a), rank(b));
    ra.0.cmp(&rb.0)
        .then(ra.1.total_cmp(&rb.1))
        .then(ra.2.cmp(&rb.2))
        .then(ra.3.cmp(rb.3))
}

/// Deduplicates and sorts set elements, so equal sets give equal bytes.
pub(super) fn sort_unique(items: &mut Vec<Node>) {
    items.sort_by(node_order);
    items.dedup_by(|a, b| node_order(a, b).is_eq());
}

/// A `*_SET` value's body: its elements deduplicated and sorted, in the set's oneof.
pub(super) fn write_set(mut items: Vec<Node>, code: i64, out: &mut Vec<u8>) -> Result<(), String> {
    let (kind, wanted) = match code {
        22 => (Leaf::Bytes, "bytes"),
        23 => (Leaf::Str, "a string"),
        24 | 25 => (Leaf::Int, "an integer"),
        26 | 27 => (Leaf::Float, "a float"),
        28 => (Leaf::Bool, "a bool"),
        _ => (Leaf::Time, "a timestamp"),
    };
    for (j, item) in items.iter_mut().enumerate() {
        let ok = match (&*item, kind) {
            (Node::Int(v), Leaf::Float) => {
                *item = Node::Float(*v as f64);
                true
            }
            (Node::Int(v), Leaf::Int) if code == 24 => i32::try_from(*v).is_ok(),
            (n, k) => node_leaf(n) == Some(k),
        };
        if !ok {
            return Err(format!("element {j} is {}, expected {wanted}", item.kind()));
        }
    }
    sort_unique(&mut items);
    let field = feast_field(code);
    if code == 27 {
        // FloatSet holds float32s (fixed32), not the doubles a Node carries.
        let mut packed = Vec::with_capacity(items.len() * 4);
        for item in &items {
            if let Node::Float(v) = item {
                packed.extend_from_slice(&(*v as f32).to_le_bytes());
            }
        }
        return put_message(out, field, |m| {
            if !packed.is_empty() {
                put_bytes(m, 1, &packed);
            }
            Ok(())
        });
    }
    put_message(out, field, |m| {
        proto_out::write_elements(&items, kind, m);
        Ok(())
    })
}

fn node_leaf(node: &Node) -> Option<Leaf> {
    Some(match node {
        Node::Bool(_) => Leaf::Bool,
        Node::Int(_) => Leaf::Int,
        Node::Float(_) => Leaf::Float,
        Node::Str(_) => Leaf::Str,
        Node::Bytes(_) => Leaf::Bytes,
        Node::Time(_) => Leaf::Time,
        _ => return None,
    })
}

/// A set feature's list column (`*_SET`, `UUID_SET`, `DECIMAL_SET`) with every row's elements
/// deduplicated and sorted, as Feast stores a set: every layout then holds (and reads back) the
/// same elements in the same order. A null element is refused, as Feast refuses it.
pub fn unique_sets(
    array: &dyn Array,
    value_type: i64,
    column: &str,
) -> Result<ArrayRef, CoreError> {
    let name = match value_type {
        22..=29 => set_name(value_type),
        40 => "UUID_SET",
        41 => "TIME_UUID_SET",
        46 => "DECIMAL_SET",
        _ => return Err(unknown_type(value_type, column)),
    };
    let (field, values, starts): (_, &ArrayRef, Vec<usize>) = match array.data_type() {
        DataType::List(f) => {
            let list = array.as_list::<i32>();
            let starts = list.value_offsets().iter().map(|&o| o as usize).collect();
            (f.clone(), list.values(), starts)
        }
        other => {
            return Err(CoreError::unsupported(
                column,
                format!("a {name} feature is written from a list column, got Arrow {other}"),
            ))
        }
    };
    let mut indices: Vec<u32> = Vec::with_capacity(values.len());
    let mut offsets: Vec<i32> = Vec::with_capacity(array.len() + 1);
    offsets.push(0);
    for row in 0..array.len() {
        if array.is_valid(row) {
            let mut items = Vec::with_capacity(starts[row + 1] - starts[row]);
            for j in starts[row]..starts[row + 1] {
                let node = node::from_arrow(values.as_ref(), j)
                    .map_err(|e| set_error(column, row, name, &e))?;
                if node == Node::Null {
                    return Err(set_error(column, row, name, "a null element"));
                }
                items.push((node, j));
            }
            items.sort_by(|a, b| node_order(&a.0, &b.0));
            items.dedup_by(|a, b| node_order(&a.0, &b.0).is_eq());
            for (_, j) in items {
                indices.push(u32::try_from(j).map_err(|_| {
                    CoreError::InvalidArgument("set column exceeds 4 G elements".to_owned())
                })?);
            }
        }
        offsets.push(offset(indices.len())?);
    }
    let taken = arrow::compute::take(values.as_ref(), &UInt32Array::from(indices), None)
        .map_err(|e| CoreError::InvalidArgument(e.to_string()))?;
    Ok(Arc::new(ListArray::new(
        field,
        OffsetBuffer::new(offsets.into()),
        taken,
        array.logical_nulls(),
    )))
}
