//! Feast `Value` protobuf bytes back to the JSON text the online stores hold for nested values
//! (the read side of `proto_out`, and what a Redis written by Feast itself holds). Any valid
//! Value reads: map entries in wire order, sets as arrays, bytes as base64 text (JSON has no
//! bytes), timestamps as epoch seconds (Feast's null timestamp as `null`), `json_val` parsed.
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::json_out::{self, write_float};
use super::node::{Key, Node};
use crate::response::write_string;

const NULL_TIMESTAMP: i64 = i64::MIN;

/// One field as read from the wire.
#[derive(Clone, Copy)]
pub enum Wire<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Fixed32([u8; 4]),
    Len(&'a [u8]),
}

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".to_owned())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or("truncated field")?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// The next field, or `None` at the end.
    pub fn field(&mut self) -> Result<Option<(u32, Wire<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| "field number too large")?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(self.take(8)?.try_into().expect("8 bytes")),
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
                Wire::Len(self.take(n)?)
            }
            5 => Wire::Fixed32(self.take(4)?.try_into().expect("4 bytes")),
            w => return Err(format!("unsupported wire type {w}")),
        };
        Ok(Some((field, wire)))
    }
}

/// The set oneof field of a Value (the last on the wire) or `None` for an empty Value.
pub fn oneof(buf: &[u8]) -> Result<Option<(u32, Wire<'_>)>, String> {
    let mut reader = Reader::new(buf);
    let mut last = None;
    while let Some(field) = reader.field()? {
        last = Some(field);
    }
    Ok(last)
}

fn message(wire: Wire<'_>) -> Result<&[u8], String> {
    match wire {
        Wire::Len(b) => Ok(b),
        _ => Err("expected a length-delimited message".to_owned()),
    }
}

fn text(b: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(b).map_err(|e| format!("string is not UTF-8: {e}"))
}

/// Writes a Value as JSON (`null` for an empty one).
pub fn write_value(buf: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let Some((field, wire)) = oneof(buf)? else {
        out.extend_from_slice(b"null");
        return Ok(());
    };
    match (field, wire) {
        (1, Wire::Len(b)) => write_base64(b, out),
        (2 | 36 | 37 | 44, Wire::Len(b)) => write_string(out, text(b)?),
        (3, Wire::Varint(v)) => write_int(out, i64::from(v as i32)),
        (4, Wire::Varint(v)) => write_int(out, v as i64),
        (8, Wire::Varint(v)) => write_time(out, v as i64),
        (5, Wire::Fixed64(b)) => write_float(out, f64::from_le_bytes(b)),
        (6, Wire::Fixed32(b)) => write_float(out, f64::from(f32::from_le_bytes(b))),
        (7, Wire::Varint(v)) => out.extend_from_slice(if v != 0 { b"true" } else { b"false" }),
        (19, _) => out.extend_from_slice(b"null"),
        (20 | 34, w) => write_map(message(w)?, out)?,
        (47, w) => write_scalar_map(message(w)?, false, out)?,
        (21 | 35, w) => write_array(message(w)?, out, write_map)?,
        (32, Wire::Len(b)) => write_json_text(text(b)?, out),
        (33, w) => write_array(message(w)?, out, |b, o| {
            write_json_text(text(b)?, o);
            Ok(())
        })?,
        (42 | 43, w) => write_array(message(w)?, out, write_value)?,
        (11..=18 | 22..=29 | 38..=41 | 45 | 46, w) => write_elements(field, message(w)?, out)?,
        (f, _) => return Err(format!("oneof field {f} has no JSON form here")),
    }
    Ok(())
}

fn write_int(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn write_time(out: &mut Vec<u8>, v: i64) {
    if v == NULL_TIMESTAMP {
        out.extend_from_slice(b"null");
    } else {
        write_int(out, v);
    }
}

fn write_base64(b: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(BASE64.encode(b).as_bytes());
    out.push(b'"');
}

/// Feast's SDK parses `json_val` and keeps the text when it is not JSON: the same here.
fn write_json_text(text: &str, out: &mut Vec<u8>) {
    match Node::from_json(text) {
        Ok(node) if json_out::write(&node, false, &mut Vec::new()).is_ok() => {
            json_out::write(&node, false, out).expect("checked above");
        }
        _ => write_string(out, text),
    }
}

/// A `Map` body as a JSON object, entries in wire order.
fn write_map(body: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    write_map_ordered(body, &[], out)
}

/// A `ScalarMap` body as JSON, entries in wire order. A feature's own value (`top`) is written as
/// `json_out` writes a `SCALAR_MAP` (`json_out::write_scalar_map`). A map nested inside a value
/// is an object with every key as its text: the stored form of a nested map has string keys,
/// so it still writes back as a `Map` rather than failing.
fn write_scalar_map(body: &[u8], top: bool, out: &mut Vec<u8>) -> Result<(), String> {
    let mut reader = Reader::new(body);
    let mut entries: Vec<(Key, &[u8])> = Vec::new();
    while let Some((field, wire)) = reader.field()? {
        if field != 1 {
            continue;
        }
        let mut entry = Reader::new(message(wire)?);
        // A key left out (no field set) reads as int 0, as proto3 reads an empty MapKey.
        let (mut key, mut value): (Key, &[u8]) = (Key::Int(0), &[]);
        while let Some((f, w)) = entry.field()? {
            match f {
                1 => key = scalar_key(message(w)?)?,
                2 => value = message(w)?,
                _ => {}
            }
        }
        entries.push((key, value));
    }
    json_out::write_scalar_map(&entries, top, out, |value, o| write_value(value, o))
}

/// A `MapKey` message as its key (the last field set wins, as protobuf reads a oneof).
fn scalar_key(body: &[u8]) -> Result<Key, String> {
    let mut reader = Reader::new(body);
    let mut key = Key::Int(0);
    while let Some((field, wire)) = reader.field()? {
        key = match (field, wire) {
            (1, Wire::Varint(v)) => Key::Int(i64::from(v as i32)),
            (2, Wire::Varint(v)) => Key::Int(v as i64),
            (3, Wire::Fixed32(b)) => Key::Float(f64::from(f32::from_le_bytes(b))),
            (4, Wire::Fixed64(b)) => Key::Float(f64::from_le_bytes(b)),
            (5, Wire::Varint(v)) => Key::Bool(v != 0),
            (6, Wire::Varint(v)) => Key::Time(v as i64),
            (7, Wire::Len(b)) => Key::Bytes(b.to_vec()),
            (8 | 9, Wire::Len(b)) => Key::Uuid(text(b)?.to_owned()),
            (10, Wire::Len(b)) => Key::Decimal(text(b)?.to_owned()),
            (f, _) => return Err(format!("a ScalarMap key has unknown field {f}")),
        };
    }
    Ok(key)
}

/// A `Map` body's entries: (key, Value bytes), in wire order.
fn map_entries(body: &[u8]) -> Result<Vec<(&str, &[u8])>, String> {
    let mut reader = Reader::new(body);
    let mut entries = Vec::new();
    while let Some((field, wire)) = reader.field()? {
        if field != 1 {
            continue;
        }
        let (mut key, mut value): (&str, &[u8]) = ("", &[]);
        let mut entry = Reader::new(message(wire)?);
        while let Some((f, w)) = entry.field()? {
            match f {
                1 => key = text(message(w)?)?,
                2 => value = message(w)?,
                _ => {}
            }
        }
        entries.push((key, value));
    }
    Ok(entries)
}

/// A `Map` body as a JSON object: the keys named in `order` first, in that order (a Struct's
/// declared fields), then the others in wire order.
fn write_map_ordered(body: &[u8], order: &[String], out: &mut Vec<u8>) -> Result<(), String> {
    let entries = map_entries(body)?;
    let rank = |key: &str| order.iter().position(|o| o == key).unwrap_or(order.len());
    let mut sorted: Vec<&(&str, &[u8])> = entries.iter().collect();
    if !order.is_empty() {
        sorted.sort_by_key(|(k, _)| rank(k));
    }
    out.push(b'{');
    for (i, (key, value)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, key);
        out.push(b':');
        write_value(value, out)?;
    }
    out.push(b'}');
    Ok(())
}

/// Writes a Value as JSON with a Struct's (or a Struct list's elements') keys in `order`.
pub fn write_value_ordered(buf: &[u8], order: &[String], out: &mut Vec<u8>) -> Result<(), String> {
    match oneof(buf)? {
        Some((20 | 34, w)) if !order.is_empty() => write_map_ordered(message(w)?, order, out),
        Some((47, w)) => write_scalar_map(message(w)?, true, out),
        Some((21 | 35, w)) if !order.is_empty() => {
            write_array(message(w)?, out, |b, o| write_map_ordered(b, order, o))
        }
        _ => write_value(buf, out),
    }
}

/// The repeated field 1 of a message as a JSON array, each element written by `each`.
fn write_array(
    body: &[u8],
    out: &mut Vec<u8>,
    each: impl Fn(&[u8], &mut Vec<u8>) -> Result<(), String>,
) -> Result<(), String> {
    let mut reader = Reader::new(body);
    out.push(b'[');
    let mut first = true;
    while let Some((field, wire)) = reader.field()? {
        if field != 1 {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        each(message(wire)?, out)?;
    }
    out.push(b']');
    Ok(())
}

/// A scalar list or set message (`field` is its Value oneof) as a JSON array; numbers may be
/// packed or not.
fn write_elements(field: u32, body: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    // The scalar field whose element form the list/set holds.
    let scalar = match field {
        11..=18 => field - 10,
        22..=29 => field - 21,
        _ => 2,
    };
    let mut reader = Reader::new(body);
    let mut first = true;
    out.push(b'[');
    let mut sep = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
    };
    while let Some((f, wire)) = reader.field()? {
        if f != 1 {
            continue;
        }
        match (scalar, wire) {
            (1, Wire::Len(b)) => {
                sep(out);
                write_base64(b, out);
            }
            (2, Wire::Len(b)) => {
                sep(out);
                write_string(out, text(b)?);
            }
            (3 | 4 | 7 | 8, Wire::Varint(v)) => {
                sep(out);
                write_scalar_varint(scalar, v, out);
            }
            (5, Wire::Fixed64(b)) => {
                sep(out);
                write_float(out, f64::from_le_bytes(b));
            }
            (6, Wire::Fixed32(b)) => {
                sep(out);
                write_float(out, f64::from(f32::from_le_bytes(b)));
            }
            (3 | 4 | 7 | 8, Wire::Len(b)) => {
                let mut packed = Reader::new(b);
                while packed.pos < b.len() {
                    let v = packed.varint()?;
                    sep(out);
                    write_scalar_varint(scalar, v, out);
                }
            }
            (5, Wire::Len(b)) if b.len() % 8 == 0 => {
                for c in b.chunks_exact(8) {
                    sep(out);
                    write_float(out, f64::from_le_bytes(c.try_into().expect("8 bytes")));
                }
            }
            (6, Wire::Len(b)) if b.len() % 4 == 0 => {
                for c in b.chunks_exact(4) {
                    sep(out);
                    let v = f32::from_le_bytes(c.try_into().expect("4 bytes"));
                    write_float(out, f64::from(v));
                }
            }
            _ => {
                return Err(format!(
                    "a list element of oneof field {field} has the wrong wire type"
                ))
            }
        }
    }
    out.push(b']');
    Ok(())
}

fn write_scalar_varint(scalar: u32, v: u64, out: &mut Vec<u8>) {
    match scalar {
        3 => write_int(out, i64::from(v as i32)),
        7 => out.extend_from_slice(if v != 0 { b"true" } else { b"false" }),
        8 => write_time(out, v as i64),
        _ => write_int(out, v as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nested::proto_out;

    fn round_trip(json: &str) -> String {
        let mut bytes = Vec::new();
        proto_out::write_value(&Node::from_json(json).unwrap(), &mut bytes).unwrap();
        let mut out = Vec::new();
        write_value(&bytes, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn maps_come_back_with_sorted_keys() {
        assert_eq!(
            round_trip(
                r#"{"b": [1, 2], "a": {"y": null, "x": [{"k": "v"}]}, "c": [true], "d": 1.5}"#
            ),
            r#"{"a":{"x":[{"k":"v"}],"y":null},"b":[1,2],"c":[true],"d":1.5}"#
        );
    }

    #[test]
    fn values_written_by_feast_read() {
        // Feast's bytes for {"c": true, "b": 1, "d": None, "a": 2.5} (tests/golden/nested_values.json).
        let hex = "a201290a070a0163120238010a070a0162120220010a050a016412000a0e0a01611209290000000000000440";
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let mut out = Vec::new();
        write_value(&bytes, &mut out).unwrap();
        assert_eq!(out, br#"{"c":true,"b":1,"d":null,"a":2.5}"#);
    }

    #[test]
    fn truncated_bytes_are_an_error() {
        let mut out = Vec::new();
        assert!(write_value(&[0xa2, 0x01, 0x09, 0x0a], &mut out).is_err());
    }
}
