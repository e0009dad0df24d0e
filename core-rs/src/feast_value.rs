//! Feast `feast.types.Value` and `google.protobuf.Timestamp` protobuf codecs, written by hand
//! (docs/feast-compatibility.md §2.2, §2.6). Plain Rust over Arrow columns; no pyo3.
//!
//! Encoding writes standard proto3 bytes: a null cell is an empty Value (zero bytes); a set oneof
//! is written even when it holds the default (`bool_val=false` is `3800`); numeric lists are
//! packed, string and bytes lists are not. Decoding accepts any valid protobuf: unknown fields are
//! skipped, the last oneof field wins, packed and unpacked repeated numbers are both read.
use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array,
    Int64Array, ListArray, NullBufferBuilder, StringArray, TimestampMicrosecondArray,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type};

use crate::columns::{
    bytes_column, integers_as_i32, integers_as_i64, integral_floats, timestamp_nanos,
    timestamp_seconds, validity, BytesColumn,
};
use crate::error::CoreError;

/// The Feast value types these codecs handle (`ValueType` enum numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    Scalar(Kind),
    List(Kind),
}

/// The element kind of a scalar or list value type (shared with the packed rows).
pub use crate::value_type::Scalar as Kind;

impl Kind {
    /// The Value oneof field of the scalar.
    fn scalar_field(self) -> u32 {
        match self {
            Self::Bytes => 1,
            Self::String => 2,
            Self::Int32 => 3,
            Self::Int64 => 4,
            Self::Double => 5,
            Self::Float => 6,
            Self::Bool => 7,
            Self::UnixTimestamp => 8,
            Self::Json => 32,
        }
    }

    /// Oneof fields accepted when decoding: the own field first, then lossless neighbours.
    fn accepts(self, list: bool, field: u32) -> bool {
        if list {
            // A set (22-29) holds the same message as its list (11-18); UUIDs and decimals
            // are strings in their own oneofs (nested.rs writes them for `layout: feast`).
            let own = self.list_field();
            return field == own
                || ((11..=18).contains(&own) && field == own + 11)
                || (self == Self::String && matches!(field, 38..=41 | 45 | 46));
        }
        let own = self.scalar_field();
        field == own
            || matches!(
                (self, field),
                (Self::Int64 | Self::Int32, 3 | 4)
                    | (Self::Double | Self::Float, 5 | 6)
                    | (Self::Json, 2)
                    | (Self::String, 36 | 37 | 44)
            )
    }

    /// The Value oneof field of the list.
    fn list_field(self) -> u32 {
        match self {
            Self::Bytes => 11,
            Self::String => 12,
            Self::Int32 => 13,
            Self::Int64 => 14,
            Self::Double => 15,
            Self::Float => 16,
            Self::Bool => 17,
            Self::UnixTimestamp => 18,
            Self::Json => 33,
        }
    }
}

impl ValueType {
    pub fn from_code(code: i64) -> Result<Self, CoreError> {
        let found = match code {
            11..=18 => Kind::from_code(code - 10).map(Self::List),
            // JSON_LIST: a StringList in `json_list_val` (Feast keeps each element's text).
            33 => Some(Self::List(Kind::Json)),
            _ => Kind::from_code(code).map(Self::Scalar),
        };
        found.ok_or_else(|| {
            CoreError::unsupported(
                "",
                format!(
                    "value type {code} is not supported by the value codec \
                     (supported: 1-8, 11-18, 32, 33)"
                ),
            )
        })
    }

    pub fn name(self) -> String {
        match self {
            Self::Scalar(k) => k.name().to_owned(),
            Self::List(k) => format!("{}_LIST", k.name()),
        }
    }

    /// The Arrow type `decode_values` returns and `encode_values` takes natively.
    pub fn arrow_type(self) -> DataType {
        match self {
            Self::Scalar(k) => k.arrow_type(),
            Self::List(k) => DataType::List(Arc::new(Field::new_list_field(k.arrow_type(), true))),
        }
    }
}

fn oneof_name(field: u32) -> String {
    let name = match field {
        1 => "bytes_val",
        2 => "string_val",
        3 => "int32_val",
        4 => "int64_val",
        5 => "double_val",
        6 => "float_val",
        7 => "bool_val",
        8 => "unix_timestamp_val",
        11 => "bytes_list_val",
        12 => "string_list_val",
        13 => "int32_list_val",
        14 => "int64_list_val",
        15 => "double_list_val",
        16 => "float_list_val",
        17 => "bool_list_val",
        18 => "unix_timestamp_list_val",
        20 => "map_val",
        21 => "map_list_val",
        32 => "json_val",
        33 => "json_list_val",
        22 => "bytes_set_val",
        23 => "string_set_val",
        24 => "int32_set_val",
        25 => "int64_set_val",
        26 => "double_set_val",
        27 => "float_set_val",
        28 => "bool_set_val",
        29 => "unix_timestamp_set_val",
        34 => "struct_val",
        35 => "struct_list_val",
        36 => "uuid_val",
        37 => "time_uuid_val",
        38 => "uuid_list_val",
        39 => "time_uuid_list_val",
        40 => "uuid_set_val",
        41 => "time_uuid_set_val",
        42 => "list_val",
        43 => "set_val",
        44 => "decimal_val",
        45 => "decimal_list_val",
        46 => "decimal_set_val",
        47 => "scalar_map_val",
        _ => return format!("oneof field {field}"),
    };
    name.to_owned()
}

// ---------------------------------------------------------------------------------------------
// Protobuf wire primitives

#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn varint_len(v: u64) -> usize {
    // 1 byte per started group of 7 bits; 0 takes one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Writes a field key (field number + wire type).
#[inline]
fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// One field value as read from the wire.
#[derive(Clone, Copy, Debug)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(format!("truncated varint at byte {}", self.pos));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(format!("varint longer than 10 bytes at byte {}", self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("field of {n} bytes runs past the end at byte {}", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next field: its number and value.
    fn field(&mut self) -> Result<(u32, Wire<'a>), String> {
        let key = self.varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| "field number too large".to_owned())?;
        if field == 0 {
            return Err(format!("field number 0 at byte {}", self.pos));
        }
        let value = match (key & 7) as u8 {
            VARINT => Wire::Varint(self.varint()?),
            FIXED64 => Wire::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().expect("8"))),
            LEN => {
                let n = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
                Wire::Len(self.take(n)?)
            }
            FIXED32 => Wire::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().expect("4"))),
            w => return Err(format!("unsupported wire type {w} (field {field})")),
        };
        Ok((field, value))
    }
}

/// The Value's set oneof field (the last one on the wire), or `None` for an empty/null Value.
fn read_oneof(buf: &[u8]) -> Result<Option<(u32, Wire<'_>)>, String> {
    let mut reader = Reader::new(buf);
    let mut found = None;
    while !reader.done() {
        let (field, value) = reader.field()?;
        // Fields 1-8, 11-29 and 32-48 are all members of the `val` oneof.
        if matches!(field, 1..=8 | 11..=29 | 32..=48) {
            found = Some((field, value));
        }
    }
    Ok(match found {
        Some((19, _)) | None => None, // null_val
        other => other,
    })
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// The values of one column (or of a list column's child), indexable by element.
enum Elements<'a> {
    /// `INT64`, `INT32` (sign-extended as protobuf does), `UNIX_TIMESTAMP` seconds.
    Varint(Cow<'a, [i64]>),
    Bool(BooleanBuffer),
    F64(Cow<'a, [f64]>),
    F32(Cow<'a, [f32]>),
    Bytes(BytesColumn<'a>),
}

impl Elements<'_> {
    /// Bytes the element takes after its field key.
    #[inline]
    fn len(&self, i: usize) -> usize {
        match self {
            Self::Varint(v) => varint_len(v[i] as u64),
            Self::Bool(_) => 1,
            Self::F64(_) => 8,
            Self::F32(_) => 4,
            Self::Bytes(b) => {
                let n = b.get(i).len();
                varint_len(n as u64) + n
            }
        }
    }

    #[inline]
    fn write(&self, i: usize, out: &mut Vec<u8>) {
        match self {
            Self::Varint(v) => put_varint(out, v[i] as u64),
            Self::Bool(b) => out.push(u8::from(b.value(i))),
            Self::F64(v) => out.extend_from_slice(&v[i].to_le_bytes()),
            Self::F32(v) => out.extend_from_slice(&v[i].to_le_bytes()),
            Self::Bytes(b) => {
                let s = b.get(i);
                put_varint(out, s.len() as u64);
                out.extend_from_slice(s);
            }
        }
    }

    fn wire(&self) -> u8 {
        match self {
            Self::Varint(_) | Self::Bool(_) => VARINT,
            Self::F64(_) => FIXED64,
            Self::F32(_) => FIXED32,
            Self::Bytes(_) => LEN,
        }
    }

    /// NaN floats: Feast writes them as an empty Value (tests/golden/values.json); kept in
    /// lists.
    fn is_nan(&self, i: usize) -> bool {
        match self {
            Self::F64(v) => v[i].is_nan(),
            Self::F32(v) => v[i].is_nan(),
            _ => false,
        }
    }

    fn byte_estimate(&self, n: usize) -> usize {
        match self {
            Self::Bytes(b) => b.total_len() + 2 * n,
            Self::F64(_) => 8 * n,
            _ => 4 * n,
        }
    }
}

fn unsupported_input(array: &dyn Array, value_type: &str, column: &str) -> CoreError {
    CoreError::unsupported(
        column,
        format!(
            "an Arrow {} column cannot be encoded as {value_type}",
            array.data_type()
        ),
    )
}

fn merge_nulls(a: Option<&NullBuffer>, b: Option<&NullBuffer>) -> Option<NullBuffer> {
    NullBuffer::union(a, b)
}

/// A float64, float32 or integer column as `f64`.
fn float64s<'a>(array: &'a dyn Array, column: &str) -> Result<Option<Cow<'a, [f64]>>, CoreError> {
    Ok(match array.data_type() {
        DataType::Float64 => Some(Cow::Borrowed(
            &array.as_primitive::<Float64Type>().values()[..],
        )),
        DataType::Float32 => Some(Cow::Owned(
            array
                .as_primitive::<Float32Type>()
                .values()
                .iter()
                .map(|&x| f64::from(x))
                .collect(),
        )),
        _ => integers_as_i64(array, column)?
            .map(|v| Cow::Owned(v.iter().map(|&x| x as f64).collect())),
    })
}

/// A float32, float64 (rounded to the nearest float32, as numpy's `astype` does) or integer
/// column as `f32`.
fn float32s<'a>(array: &'a dyn Array, column: &str) -> Result<Option<Cow<'a, [f32]>>, CoreError> {
    Ok(match array.data_type() {
        DataType::Float32 => Some(Cow::Borrowed(
            &array.as_primitive::<Float32Type>().values()[..],
        )),
        DataType::Float64 => Some(Cow::Owned(
            array
                .as_primitive::<Float64Type>()
                .values()
                .iter()
                .map(|&x| x as f32)
                .collect(),
        )),
        _ => integers_as_i64(array, column)?
            .map(|v| Cow::Owned(v.iter().map(|&x| x as f32).collect())),
    })
}

/// Reads a column's values for `kind`; also returns the rows that are null beyond the Arrow
/// validity (NaN in a float column holding integers).
fn elements<'a>(
    array: &'a dyn Array,
    kind: Kind,
    column: &str,
) -> Result<(Elements<'a>, Option<NullBuffer>), CoreError> {
    let fail = || unsupported_input(array, kind.name(), column);
    let integral = |min: f64, max: f64| -> Result<_, CoreError> {
        match integral_floats(array, column, min, max)? {
            Some((values, nulls)) => Ok((Elements::Varint(Cow::Owned(values)), nulls)),
            None => Err(fail()),
        }
    };
    Ok(match kind {
        Kind::Int64 => match integers_as_i64(array, column)? {
            Some(v) => (Elements::Varint(v), None),
            // 2^63 is the first float that does not fit.
            None => integral(-9_223_372_036_854_775_808.0, 9_223_372_036_854_774_784.0)?,
        },
        Kind::Int32 => match integers_as_i32(array, column)? {
            Some(v) => (
                Elements::Varint(Cow::Owned(v.iter().map(|&x| i64::from(x)).collect())),
                None,
            ),
            None => integral(f64::from(i32::MIN), f64::from(i32::MAX))?,
        },
        Kind::UnixTimestamp => match timestamp_seconds(array) {
            Some(s) => (Elements::Varint(s), None),
            None => (
                Elements::Varint(integers_as_i64(array, column)?.ok_or_else(fail)?),
                None,
            ),
        },
        Kind::Double => (
            Elements::F64(float64s(array, column)?.ok_or_else(fail)?),
            None,
        ),
        Kind::Float => (
            Elements::F32(float32s(array, column)?.ok_or_else(fail)?),
            None,
        ),
        Kind::Bool => match array.as_any().downcast_ref::<BooleanArray>() {
            Some(b) => (Elements::Bool(b.values().clone()), None),
            None => return Err(fail()),
        },
        Kind::String | Kind::Json => (
            Elements::Bytes(bytes_column(array, true).ok_or_else(fail)?),
            None,
        ),
        Kind::Bytes => (
            Elements::Bytes(bytes_column(array, false).ok_or_else(fail)?),
            None,
        ),
    })
}

/// Builds a `BinaryArray` (never null: a null cell is zero bytes) from one buffer and offsets.
fn binary_array(data: Vec<u8>, offsets: Vec<i32>) -> BinaryArray {
    BinaryArray::new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        data.into(),
        None,
    )
}

fn check_size(total: usize) -> Result<i32, CoreError> {
    i32::try_from(total).map_err(|_| {
        CoreError::InvalidArgument(
            "the encoded column exceeds 2 GiB, the limit of one Arrow binary array; \
             encode it in smaller batches"
                .to_owned(),
        )
    })
}

/// Encodes every cell of `array` as a Feast Value; a null cell (or a NaN float) gives zero bytes.
pub fn encode_values(
    array: &dyn Array,
    value_type: ValueType,
    column: &str,
) -> Result<BinaryArray, CoreError> {
    match value_type {
        ValueType::Scalar(kind) => encode_scalars(array, kind, column),
        ValueType::List(kind) => encode_lists(array, kind, column),
    }
}

fn encode_scalars(array: &dyn Array, kind: Kind, column: &str) -> Result<BinaryArray, CoreError> {
    let (values, extra_nulls) = elements(array, kind, column)?;
    let nulls = merge_nulls(validity(array).as_ref(), extra_nulls.as_ref());
    let mut key = Vec::with_capacity(2);
    put_key(&mut key, kind.scalar_field(), values.wire());
    let n = array.len();
    let mut data = Vec::with_capacity(values.byte_estimate(n) + key.len() * n);
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0i32);
    for i in 0..n {
        if nulls.as_ref().is_none_or(|b| b.is_valid(i)) && !values.is_nan(i) {
            data.extend_from_slice(&key);
            values.write(i, &mut data);
        }
        offsets.push(check_size(data.len())?);
    }
    Ok(binary_array(data, offsets))
}

fn list_parts(array: &dyn Array) -> Option<(Vec<usize>, &ArrayRef)> {
    match array.data_type() {
        DataType::List(_) => {
            let a = array.as_any().downcast_ref::<ListArray>()?;
            Some((
                a.value_offsets().iter().map(|&o| o as usize).collect(),
                a.values(),
            ))
        }
        DataType::LargeList(_) => {
            let a = array
                .as_any()
                .downcast_ref::<arrow::array::LargeListArray>()?;
            Some((
                a.value_offsets().iter().map(|&o| o as usize).collect(),
                a.values(),
            ))
        }
        DataType::FixedSizeList(_, size) => {
            let a = array
                .as_any()
                .downcast_ref::<arrow::array::FixedSizeListArray>()?;
            let size = *size as usize;
            let start = a.offset() * size;
            Some((
                (0..=a.len()).map(|i| start + i * size).collect(),
                a.values(),
            ))
        }
        _ => None,
    }
}

fn encode_lists(array: &dyn Array, kind: Kind, column: &str) -> Result<BinaryArray, CoreError> {
    let name = format!("{}_LIST", kind.name());
    let (offsets_in, child) =
        list_parts(array).ok_or_else(|| unsupported_input(array, &name, column))?;
    let (values, extra_nulls) = elements(child.as_ref(), kind, column).map_err(|e| match e {
        CoreError::UnsupportedType { .. } => unsupported_input(array, &name, column),
        other => other,
    })?;
    let child_nulls = merge_nulls(validity(child.as_ref()).as_ref(), extra_nulls.as_ref());
    let nulls = validity(array);
    let packed = values.wire() != LEN;
    let mut key = Vec::with_capacity(2);
    put_key(&mut key, kind.list_field(), LEN);
    let n = array.len();
    let mut data = Vec::with_capacity(values.byte_estimate(offsets_in[n] - offsets_in[0]) + 4 * n);
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0i32);
    for row in 0..n {
        if nulls.as_ref().is_none_or(|b| b.is_valid(row)) {
            let range = offsets_in[row]..offsets_in[row + 1];
            if let Some(cn) = &child_nulls {
                if range.clone().any(|i| cn.is_null(i)) {
                    return Err(CoreError::invalid(
                        column,
                        row,
                        format!("a Feast {name} cannot hold a null element"),
                    ));
                }
            }
            data.extend_from_slice(&key);
            if packed {
                let payload: usize = range.clone().map(|i| values.len(i)).sum();
                if payload == 0 {
                    data.push(0);
                } else {
                    put_varint(&mut data, (1 + varint_len(payload as u64) + payload) as u64);
                    data.push(0x0a); // field 1, length-delimited (packed)
                    put_varint(&mut data, payload as u64);
                    for i in range {
                        values.write(i, &mut data);
                    }
                }
            } else {
                let inner: usize = range.clone().map(|i| 1 + values.len(i)).sum();
                put_varint(&mut data, inner as u64);
                for i in range {
                    data.push(0x0a); // field 1, length-delimited
                    values.write(i, &mut data);
                }
            }
        }
        offsets.push(check_size(data.len())?);
    }
    Ok(binary_array(data, offsets))
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Decoded elements, one per scalar row (a placeholder for null rows) or per list element.
enum Sink {
    I64(Vec<i64>),
    I32(Vec<i32>),
    F64(Vec<f64>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    Bytes { data: Vec<u8>, offsets: Vec<i32> },
}

impl Sink {
    fn new(kind: Kind, capacity: usize) -> Self {
        match kind {
            Kind::Int64 | Kind::UnixTimestamp => Self::I64(Vec::with_capacity(capacity)),
            Kind::Int32 => Self::I32(Vec::with_capacity(capacity)),
            Kind::Double => Self::F64(Vec::with_capacity(capacity)),
            Kind::Float => Self::F32(Vec::with_capacity(capacity)),
            Kind::Bool => Self::Bool(Vec::with_capacity(capacity)),
            Kind::Bytes | Kind::String | Kind::Json => Self::Bytes {
                data: Vec::new(),
                offsets: vec![0],
            },
        }
    }

    fn push_default(&mut self) {
        match self {
            Self::I64(v) => v.push(0),
            Self::I32(v) => v.push(0),
            Self::F64(v) => v.push(0.0),
            Self::F32(v) => v.push(0.0),
            Self::Bool(v) => v.push(false),
            Self::Bytes { data, offsets } => offsets.push(data.len() as i32),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::I64(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::F64(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::Bool(v) => v.len(),
            Self::Bytes { offsets, .. } => offsets.len() - 1,
        }
    }

    /// Appends one element read from the wire; `field` is the Value oneof it came from (for the
    /// lenient numeric conversions), `kind` the requested element kind.
    fn push(&mut self, kind: Kind, field: u32, wire: Wire<'_>) -> Result<(), String> {
        match (self, wire) {
            (Self::I64(v), Wire::Varint(x)) => {
                // int32_val is a sign-extended varint; reading it as i64 is exact.
                let x = x as i64;
                if kind == Kind::UnixTimestamp {
                    v.push(x.checked_mul(1_000_000).ok_or_else(|| {
                        format!("unix_timestamp_val {x} s is outside the timestamp[us] range")
                    })?);
                } else {
                    v.push(if field == 3 { i64::from(x as i32) } else { x });
                }
            }
            (Self::I32(v), Wire::Varint(x)) => {
                let x = x as i64;
                v.push(if field == 3 {
                    x as i32
                } else {
                    i32::try_from(x).map_err(|_| format!("int64_val {x} does not fit in INT32"))?
                });
            }
            (Self::F64(v), Wire::Fixed64(x)) => v.push(f64::from_bits(x)),
            (Self::F64(v), Wire::Fixed32(x)) => v.push(f64::from(f32::from_bits(x))),
            (Self::F32(v), Wire::Fixed32(x)) => v.push(f32::from_bits(x)),
            (Self::F32(v), Wire::Fixed64(x)) => v.push(f64::from_bits(x) as f32),
            (Self::Bool(v), Wire::Varint(x)) => v.push(x != 0),
            (Self::Bytes { data, offsets }, Wire::Len(s)) => {
                if kind != Kind::Bytes {
                    std::str::from_utf8(s)
                        .map_err(|e| format!("{} is not valid UTF-8: {e}", oneof_name(field)))?;
                }
                data.extend_from_slice(s);
                offsets
                    .push(i32::try_from(data.len()).map_err(|_| "decoded column exceeds 2 GiB")?);
            }
            (_, wire) => {
                return Err(format!(
                    "{} has an unexpected wire encoding {wire:?}",
                    oneof_name(field)
                ))
            }
        }
        Ok(())
    }

    /// Appends every element of a `*List` message.
    fn push_list(&mut self, kind: Kind, field: u32, message: &[u8]) -> Result<(), String> {
        let mut reader = Reader::new(message);
        while !reader.done() {
            let (f, wire) = reader.field()?;
            if f != 1 {
                continue;
            }
            match (wire, kind) {
                (Wire::Len(s), Kind::Bytes | Kind::String | Kind::Json) => {
                    self.push(kind, field, Wire::Len(s))?;
                }
                // A packed run of numbers.
                (Wire::Len(s), _) => {
                    let mut packed = Reader::new(s);
                    while !packed.done() {
                        let w = match kind {
                            Kind::Double => Wire::Fixed64(u64::from_le_bytes(
                                packed.take(8)?.try_into().expect("8"),
                            )),
                            Kind::Float => Wire::Fixed32(u32::from_le_bytes(
                                packed.take(4)?.try_into().expect("4"),
                            )),
                            _ => Wire::Varint(packed.varint()?),
                        };
                        self.push(kind, field, w)?;
                    }
                }
                (w, _) => self.push(kind, field, w)?,
            }
        }
        Ok(())
    }

    fn into_array(self, kind: Kind, nulls: Option<NullBuffer>) -> Result<ArrayRef, CoreError> {
        Ok(match self {
            Self::I64(v) if kind == Kind::UnixTimestamp => {
                Arc::new(TimestampMicrosecondArray::new(v.into(), nulls).with_timezone("UTC"))
            }
            Self::I64(v) => Arc::new(Int64Array::new(v.into(), nulls)),
            Self::I32(v) => Arc::new(Int32Array::new(v.into(), nulls)),
            Self::F64(v) => Arc::new(Float64Array::new(v.into(), nulls)),
            Self::F32(v) => Arc::new(Float32Array::new(v.into(), nulls)),
            Self::Bool(v) => Arc::new(BooleanArray::new(BooleanBuffer::from(v), nulls)),
            Self::Bytes { data, offsets } => {
                let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
                if kind == Kind::Bytes {
                    Arc::new(BinaryArray::new(offsets, data.into(), nulls))
                } else {
                    // UTF-8 was checked per element, naming the row.
                    Arc::new(
                        StringArray::try_new(offsets, data.into(), nulls)
                            .map_err(|e| CoreError::InvalidArgument(e.to_string()))?,
                    )
                }
            }
        })
    }
}

/// Decodes Feast Value bytes (`binary`, `large_binary` or `binary_view`) into the Arrow type of
/// `value_type`. Zero bytes, `null_val`, a null cell and (for `UNIX_TIMESTAMP`) Feast's
/// `INT64_MIN` null sentinel decode to null.
pub fn decode_values(
    array: &dyn Array,
    value_type: ValueType,
    column: &str,
) -> Result<ArrayRef, CoreError> {
    let cells = bytes_column(array, false).ok_or_else(|| {
        CoreError::unsupported(
            column,
            format!(
                "Feast Values are decoded from a binary column, got Arrow {}",
                array.data_type()
            ),
        )
    })?;
    let in_nulls = validity(array);
    let n = array.len();
    let (kind, list) = match value_type {
        ValueType::Scalar(k) => (k, false),
        ValueType::List(k) => (k, true),
    };
    let mut sink = Sink::new(kind, n);
    let mut nulls = NullBufferBuilder::new(n);
    let mut list_offsets: Vec<i32> = Vec::with_capacity(if list { n + 1 } else { 0 });
    if list {
        list_offsets.push(0);
    }
    let expected = || {
        if list {
            oneof_name(kind.list_field())
        } else {
            oneof_name(kind.scalar_field())
        }
    };
    for row in 0..n {
        let bytes = cells.get(row);
        let oneof = if in_nulls.as_ref().is_none_or(|b| b.is_valid(row)) {
            read_oneof(bytes).map_err(|e| {
                CoreError::decode(column, row, format!("not a valid feast.types.Value: {e}"))
            })?
        } else {
            None
        };
        let decoded = match oneof {
            None => None,
            Some((field, _)) if !kind.accepts(list, field) => {
                return Err(CoreError::decode(
                    column,
                    row,
                    format!(
                        "expected {} for {}, found {}",
                        expected(),
                        value_type.name(),
                        oneof_name(field)
                    ),
                ))
            }
            // Feast's materialization writes a null UNIX_TIMESTAMP as INT64_MIN.
            Some((8, Wire::Varint(x))) if !list && x as i64 == i64::MIN => None,
            Some(found) => Some(found),
        };
        match decoded {
            None => {
                nulls.append_null();
                if !list {
                    sink.push_default();
                }
            }
            Some((field, wire)) => {
                nulls.append_non_null();
                let result = match (list, wire) {
                    (false, w) => sink.push(kind, field, w),
                    (true, Wire::Len(message)) => sink.push_list(kind, field, message),
                    (true, w) => Err(format!(
                        "{} has an unexpected wire encoding {w:?}",
                        oneof_name(field)
                    )),
                };
                result.map_err(|e| CoreError::decode(column, row, e))?;
            }
        }
        if list {
            list_offsets.push(
                i32::try_from(sink.len())
                    .map_err(|_| CoreError::InvalidArgument("too many list elements".into()))?,
            );
        }
    }
    let nulls = nulls.finish();
    if list {
        let child = sink.into_array(kind, None)?;
        let field = Arc::new(Field::new_list_field(kind.arrow_type(), true));
        let offsets = OffsetBuffer::new(ScalarBuffer::from(list_offsets));
        Ok(Arc::new(ListArray::new(field, offsets, child, nulls)))
    } else {
        sink.into_array(kind, nulls)
    }
}

// ---------------------------------------------------------------------------------------------
// google.protobuf.Timestamp (the Redis `_ts:<view>` field)

/// Appends one Timestamp message: seconds (field 1) and nanos (field 2), each omitted when zero,
/// so the epoch is zero bytes.
pub fn put_timestamp(out: &mut Vec<u8>, seconds: i64, nanos: i32) {
    if seconds != 0 {
        out.push(0x08);
        put_varint(out, seconds as u64);
    }
    if nanos != 0 {
        out.push(0x10);
        put_varint(out, i64::from(nanos) as u64);
    }
}

/// Encodes a timestamp column (any unit and zone, or int64 nanoseconds) as Timestamp messages.
/// Nulls are an error: an event time is required.
pub fn encode_timestamps(array: &dyn Array, column: &str) -> Result<BinaryArray, CoreError> {
    let nanos: Vec<i128> = match timestamp_nanos(array) {
        Some(v) => v,
        None => integers_as_i64(array, column)?
            .ok_or_else(|| unsupported_input(array, "a Timestamp", column))?
            .iter()
            .map(|&v| i128::from(v))
            .collect(),
    };
    if let Some(row) = crate::columns::first_null(array) {
        return Err(CoreError::invalid(
            column,
            row,
            "an event timestamp cannot be null",
        ));
    }
    let n = nanos.len();
    let mut data = Vec::with_capacity(12 * n);
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0i32);
    for &t in &nanos {
        // Floor division keeps nanos in 0..1e9 (pre-epoch: negative seconds, positive nanos).
        let seconds = t.div_euclid(1_000_000_000) as i64;
        let sub = t.rem_euclid(1_000_000_000) as i32;
        put_timestamp(&mut data, seconds, sub);
        offsets.push(check_size(data.len())?);
    }
    Ok(binary_array(data, offsets))
}

/// Reads one Timestamp message as (seconds, nanos); unknown fields are skipped.
pub fn read_timestamp(bytes: &[u8]) -> Result<(i64, i32), String> {
    let mut reader = Reader::new(bytes);
    let (mut seconds, mut nanos) = (0i64, 0i32);
    while !reader.done() {
        match reader.field()? {
            (1, Wire::Varint(v)) => seconds = v as i64,
            (2, Wire::Varint(v)) => nanos = v as i64 as i32,
            (1 | 2, w) => return Err(format!("Timestamp field has wire encoding {w:?}")),
            _ => {}
        }
    }
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(format!("Timestamp nanos {nanos} is outside 0..999999999"));
    }
    Ok((seconds, nanos))
}

/// Decodes Timestamp messages into `timestamp[us, UTC]` (nanoseconds are truncated to whole
/// microseconds; Feast writes multiples of 1000). Zero bytes are the epoch; a null cell is null.
pub fn decode_timestamps(array: &dyn Array, column: &str) -> Result<ArrayRef, CoreError> {
    let cells = bytes_column(array, false).ok_or_else(|| {
        CoreError::unsupported(
            column,
            format!(
                "Timestamps are decoded from a binary column, got Arrow {}",
                array.data_type()
            ),
        )
    })?;
    let nulls = validity(array);
    let mut out = Vec::with_capacity(array.len());
    for row in 0..array.len() {
        if nulls.as_ref().is_some_and(|b| b.is_null(row)) {
            out.push(0);
            continue;
        }
        let (seconds, nanos) = read_timestamp(cells.get(row)).map_err(|e| {
            CoreError::decode(
                column,
                row,
                format!("not a valid google.protobuf.Timestamp: {e}"),
            )
        })?;
        let micros = seconds
            .checked_mul(1_000_000)
            .and_then(|m| m.checked_add(i64::from(nanos / 1000)))
            .ok_or_else(|| {
                CoreError::decode(
                    column,
                    row,
                    format!("{seconds} s is outside the timestamp[us] range"),
                )
            })?;
        out.push(micros);
    }
    Ok(Arc::new(
        TimestampMicrosecondArray::new(out.into(), nulls).with_timezone("UTC"),
    ))
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use arrow::array::{
        BinaryArray, BooleanArray, Float64Array, Int64Array, LargeListArray, StringArray,
        TimestampNanosecondArray, UInt64Array,
    };
    use arrow::datatypes::{Float32Type, Int64Type};

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn vt(code: i64) -> ValueType {
        ValueType::from_code(code).unwrap()
    }

    #[test]
    fn varints() {
        for (v, want) in [
            (0u64, "00"),
            (1, "01"),
            (127, "7f"),
            (128, "8001"),
            (300, "ac02"),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(hex(&out), want);
            assert_eq!(varint_len(v), out.len());
        }
        assert_eq!(varint_len(u64::MAX), 10);
    }

    #[test]
    fn scalars_and_nulls() {
        let a = Int64Array::from(vec![Some(1001), None, Some(-1)]);
        let out = encode_values(&a, vt(4), "x").unwrap();
        assert_eq!(hex(out.value(0)), "20e907");
        assert_eq!(out.value(1), b"");
        assert_eq!(hex(out.value(2)), "20ffffffffffffffffff01");
        let b = BooleanArray::from(vec![false, true]);
        let out = encode_values(&b, vt(7), "b").unwrap();
        assert_eq!(hex(out.value(0)), "3800");
        let f = Float64Array::from(vec![0.2, f64::NAN]);
        let out = encode_values(&f, vt(6), "f").unwrap();
        assert_eq!(hex(out.value(0)), "35cdcc4c3e");
        assert_eq!(out.value(1), b"", "NaN is an empty Value");
        let back = decode_values(&out, vt(6), "f").unwrap();
        assert_eq!(
            back.as_primitive::<Float32Type>().value(0).to_bits(),
            0.2f32.to_bits()
        );
        assert!(back.is_null(1));
    }

    #[test]
    fn lists_packed_and_unpacked() {
        let a = LargeListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            Some(vec![]),
            None,
        ]);
        let out = encode_values(&a, vt(14), "l").unwrap();
        assert_eq!(hex(out.value(0)), "72040a020102");
        assert_eq!(hex(out.value(1)), "7200");
        assert_eq!(out.value(2), b"");
        // The same list written unpacked (as some writers do) decodes the same.
        // An empty cell is null, not an empty list.
        let empty = BinaryArray::from_vec(vec![&[][..]]);
        assert!(decode_values(&empty, vt(14), "l").unwrap().is_null(0));
        let unpacked = unhex("720408010802");
        let cells = BinaryArray::from_vec(vec![&unpacked[..]]);
        let back = decode_values(&cells, vt(14), "l").unwrap();
        let list = back.as_list::<i32>();
        let values = list.value(0);
        assert_eq!(values.as_primitive::<Int64Type>().values(), &[1, 2]);
    }

    #[test]
    fn null_elements_in_lists_are_rejected() {
        let a = arrow::array::ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            Some(vec![Some(1)]),
            Some(vec![Some(1), None]),
        ]);
        let err = encode_values(&a, vt(14), "l").unwrap_err();
        assert_eq!(
            err.to_string(),
            "column 'l' row 1: a Feast INT64_LIST cannot hold a null element"
        );
    }

    #[test]
    fn unknown_fields_are_skipped_and_last_oneof_wins() {
        // field 100 (varint 5), then int64_val 1, then an unknown length-delimited field 101.
        let bytes = unhex("a006052001aa060161");
        let cells = BinaryArray::from_vec(vec![&bytes[..]]);
        let out = decode_values(&cells, vt(4), "c").unwrap();
        assert_eq!(out.as_primitive::<Int64Type>().value(0), 1);
        // string_val "a" then int64_val 7: the later oneof member wins.
        let bytes = unhex("1201612007");
        let cells = BinaryArray::from_vec(vec![&bytes[..]]);
        let out = decode_values(&cells, vt(4), "c").unwrap();
        assert_eq!(out.as_primitive::<Int64Type>().value(0), 7);
    }

    #[test]
    fn garbage_is_an_error_naming_the_row() {
        let good = unhex("2001");
        for (bad, detail) in [
            ("20ff", "truncated varint at byte 2"),
            ("0a05ab", "field of 5 bytes runs past the end at byte 2"),
            ("0b", "unsupported wire type 3 (field 1)"),
            ("00", "field number 0 at byte 1"),
        ] {
            let bad = unhex(bad);
            let cells = BinaryArray::from_vec(vec![&good[..], &bad[..]]);
            let err = decode_values(&cells, vt(4), "trips").unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("column 'trips' row 1: not a valid feast.types.Value: {detail}")
            );
        }
        let bad_utf8 = unhex("1202c328");
        let cells = BinaryArray::from_vec(vec![&bad_utf8[..]]);
        assert!(decode_values(&cells, vt(2), "s").is_err());
        let wrong = unhex("120161");
        let cells = BinaryArray::from_vec(vec![&wrong[..]]);
        let err = decode_values(&cells, vt(5), "d").unwrap_err();
        assert_eq!(
            err.to_string(),
            "column 'd' row 0: expected double_val for DOUBLE, found string_val"
        );
    }

    #[test]
    fn integer_inputs_are_range_checked() {
        let a = UInt64Array::from(vec![1, u64::MAX]);
        let err = encode_values(&a, vt(4), "n").unwrap_err();
        assert!(err.to_string().starts_with("column 'n' row 1: "));
        let f = Float64Array::from(vec![1.0, 2.5]);
        let err = encode_values(&f, vt(3), "n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "column 'n' row 1: 2.5 is not an integer in range"
        );
        let s = StringArray::from(vec!["1"]);
        let err = encode_values(&s, vt(4), "n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "column 'n': an Arrow Utf8 column cannot be encoded as INT64"
        );
    }

    #[test]
    fn int64_min_unix_timestamp_is_null() {
        let feast_null = unhex("4080808080808080808001");
        let cells = BinaryArray::from_vec(vec![&feast_null[..]]);
        assert!(decode_values(&cells, vt(8), "t").unwrap().is_null(0));
    }

    #[test]
    fn event_timestamps() {
        let ts = TimestampNanosecondArray::from(vec![1_704_106_800_500_000_000, -500_000_000, 0]);
        let out = encode_timestamps(&ts, "ts").unwrap();
        assert_eq!(hex(out.value(0)), "08b0b6caac061080cab5ee01");
        assert_eq!(hex(out.value(1)), "08ffffffffffffffffff011080cab5ee01");
        assert_eq!(out.value(2), b"");
        let back = decode_timestamps(&out, "ts").unwrap();
        let back = back.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        assert_eq!(back.values(), &[1_704_106_800_500_000, -500_000, 0]);
        let with_null = TimestampNanosecondArray::from(vec![Some(1), None]);
        let err = encode_timestamps(&with_null, "ts").unwrap_err();
        assert_eq!(
            err.to_string(),
            "column 'ts' row 1: an event timestamp cannot be null"
        );
        let bad = unhex("1080ca");
        let cells = BinaryArray::from_vec(vec![&bad[..]]);
        assert!(decode_timestamps(&cells, "ts").is_err());
    }

    #[test]
    fn json_lists_keep_each_elements_text() {
        // Feast 0.67: ['{"a": 1}', '[1]'] as JSON_LIST (tests/golden/nested_values.json kind).
        let texts = StringArray::from(vec!["{\"a\": 1}", "[1]"]);
        let field = Arc::new(Field::new_list_field(DataType::Utf8, true));
        let offsets = OffsetBuffer::new(ScalarBuffer::from(vec![0i32, 2]));
        let a = ListArray::new(field, offsets, Arc::new(texts), None);
        let out = encode_values(&a, vt(33), "j").unwrap();
        assert_eq!(hex(out.value(0)), "8a020f0a087b2261223a20317d0a035b315d");
        let back = decode_values(&out, vt(33), "j").unwrap();
        let list = back.as_list::<i32>();
        let values = list.value(0);
        let strings = values.as_string::<i32>();
        assert_eq!((strings.value(0), strings.value(1)), ("{\"a\": 1}", "[1]"));
    }

    #[test]
    fn unsupported_value_types() {
        for code in [0, 19, 20, 21, 22, 34, 99] {
            assert!(ValueType::from_code(code).is_err(), "{code}");
        }
    }
}
