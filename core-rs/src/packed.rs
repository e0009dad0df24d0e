//! Packed rows: the value of one Redis hash field per feature view in the `packed` layout
//! (plain Rust over Arrow columns; no pyo3). Format, documented in docs/internals.md:
//!
//! ```text
//! byte 0       format version, 0x01
//! bytes 1..9   event time, microseconds since the epoch, i64 big-endian with the sign bit
//!              flipped: comparing these 8 bytes as a byte string orders the event times
//! bytes 9..    one MessagePack array, one element per feature in schema order
//! ```
//!
//! Elements: nil for null; int (smallest form) for INT32, INT64 and `UNIX_TIMESTAMP` (seconds);
//! float 32 for FLOAT; float 64 for DOUBLE; bool; str for STRING and JSON; bin for BYTES; an
//! array of those for the list types. The Lua merge script (`packed_merge.lua`) splices these
//! elements byte for byte, so the decoder only ever sees what this encoder wrote; it still
//! accepts any numeric form for a numeric feature.
//!
//! The `MessagePack` subset is hand-rolled: it is ~150 lines, allocation-free on the hot path, and
//! lets the decoder write straight into Arrow builders without an intermediate value tree.
use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryBuilder, BooleanBuilder, Float32Builder,
    Float64Builder, Int32Builder, Int64Builder, ListArray, NullBufferBuilder, StringBuilder,
    TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer};
use arrow::datatypes::{
    DataType, Field, Float16Type, Float32Type, Float64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};

use crate::columns::{
    bytes_column, integers_as_i32, integers_as_i64, integral_floats, timestamp_seconds, validity,
    BytesColumn,
};
use crate::error::CoreError;

/// The first byte of every packed row.
pub const VERSION: u8 = 0x01;
/// Version byte plus the 8 timestamp bytes.
pub const HEADER_LEN: usize = 9;

const SIGN_BIT: u64 = 1 << 63;

/// The event-time bytes of a packed row: big-endian with the sign bit flipped, so that byte
/// order is time order.
pub fn timestamp_bytes(micros: i64) -> [u8; 8] {
    ((micros as u64) ^ SIGN_BIT).to_be_bytes()
}

/// Inverse of [`timestamp_bytes`].
pub fn timestamp_from_bytes(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ SIGN_BIT) as i64
}

pub use crate::value_type::Scalar;

/// A feature's type: Feast `ValueType` numbers 1..8 and 32 (scalars), 11..18 and 33 (lists).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureType {
    pub scalar: Scalar,
    pub list: bool,
}

impl FeatureType {
    pub fn from_code(code: i64) -> Result<Self, CoreError> {
        let scalar = Scalar::from_code;
        let found = match code {
            11..=18 => scalar(code - 10).map(|scalar| Self { scalar, list: true }),
            33 => Some(Self {
                scalar: Scalar::Json,
                list: true,
            }),
            _ => scalar(code).map(|scalar| Self {
                scalar,
                list: false,
            }),
        };
        found.ok_or_else(|| {
            CoreError::unsupported(
                "",
                format!(
                    "value type {code} has no packed encoding \
                     (use 1..8, 11..18, 32 (JSON) or 33 (JSON_LIST))"
                ),
            )
        })
    }

    pub fn name(self) -> String {
        if self.list {
            format!("{}_LIST", self.scalar.name())
        } else {
            self.scalar.name().to_owned()
        }
    }

    /// The Arrow type decoded values take.
    pub fn arrow_type(self) -> DataType {
        if self.list {
            DataType::List(Arc::new(Field::new_list_field(
                self.scalar.arrow_type(),
                true,
            )))
        } else {
            self.scalar.arrow_type()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MessagePack writing

#[inline]
fn write_nil(out: &mut Vec<u8>) {
    out.push(0xc0);
}

#[inline]
fn write_bool(out: &mut Vec<u8>, v: bool) {
    out.push(if v { 0xc3 } else { 0xc2 });
}

#[inline]
fn write_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        if v < 128 {
            out.push(v as u8);
        } else if v <= 0xff {
            out.extend_from_slice(&[0xcc, v as u8]);
        } else if v <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        } else if v <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(v as u64).to_be_bytes());
        }
    } else if v >= -32 {
        out.push(v as u8);
    } else if v >= -128 {
        out.extend_from_slice(&[0xd0, v as u8]);
    } else if v >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

#[inline]
fn write_f32(out: &mut Vec<u8>, v: f32) {
    out.push(0xca);
    out.extend_from_slice(&v.to_be_bytes());
}

#[inline]
fn write_f64(out: &mut Vec<u8>, v: f64) {
    out.push(0xcb);
    out.extend_from_slice(&v.to_be_bytes());
}

/// A str (`fix`, 8, 16, 32 markers) or bin (8, 16, 32) header followed by the bytes.
#[inline]
fn write_raw(out: &mut Vec<u8>, bytes: &[u8], string: bool) {
    let n = bytes.len();
    if string && n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[if string { 0xd9 } else { 0xc4 }, n as u8]);
    } else if n <= 0xffff {
        out.push(if string { 0xda } else { 0xc5 });
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(if string { 0xdb } else { 0xc6 });
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

#[inline]
fn write_array_header(out: &mut Vec<u8>, n: usize) {
    if n < 16 {
        out.push(0x90 | n as u8);
    } else if n <= 0xffff {
        out.push(0xdc);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// One column's values in the form they are written; values at null slots are unspecified.
enum Values<'a> {
    I32(Cow<'a, [i32]>),
    I64(Cow<'a, [i64]>),
    F32(Cow<'a, [f32]>),
    F64(Cow<'a, [f64]>),
    Bool(BooleanBuffer),
    Str(BytesColumn<'a>),
    Bin(BytesColumn<'a>),
}

/// A scalar column (or a list column's child values) ready to write by row.
struct Leaf<'a> {
    values: Values<'a>,
    nulls: Option<NullBuffer>,
    /// Scalars only: Feast writes a NaN feature as a null (empty) Value, but keeps NaN inside
    /// a list; so do we.
    nan_is_null: bool,
}

impl Leaf<'_> {
    #[inline]
    fn write(&self, i: usize, out: &mut Vec<u8>) {
        if self.nulls.as_ref().is_some_and(|n| n.is_null(i)) {
            write_nil(out);
            return;
        }
        match &self.values {
            Values::I32(v) => write_int(out, i64::from(v[i])),
            Values::I64(v) => write_int(out, v[i]),
            Values::F32(v) if self.nan_is_null && v[i].is_nan() => write_nil(out),
            Values::F32(v) => write_f32(out, v[i]),
            Values::F64(v) if self.nan_is_null && v[i].is_nan() => write_nil(out),
            Values::F64(v) => write_f64(out, v[i]),
            Values::Bool(v) => write_bool(out, v.value(i)),
            Values::Str(v) => write_raw(out, v.get(i), true),
            Values::Bin(v) => write_raw(out, v.get(i), false),
        }
    }
}

enum ListOffsets<'a> {
    I32(&'a [i32]),
    I64(&'a [i64]),
    Fixed(usize),
}

impl ListOffsets<'_> {
    #[inline]
    fn range(&self, row: usize) -> (usize, usize) {
        match self {
            Self::I32(o) => (o[row] as usize, o[row + 1] as usize),
            Self::I64(o) => (o[row] as usize, o[row + 1] as usize),
            Self::Fixed(n) => (row * n, (row + 1) * n),
        }
    }
}

enum ColumnEncoder<'a> {
    Scalar(Leaf<'a>),
    List {
        offsets: ListOffsets<'a>,
        nulls: Option<NullBuffer>,
        child: Leaf<'a>,
    },
}

impl ColumnEncoder<'_> {
    #[inline]
    fn write(&self, row: usize, out: &mut Vec<u8>) {
        match self {
            Self::Scalar(leaf) => leaf.write(row, out),
            Self::List {
                offsets,
                nulls,
                child,
            } => {
                if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                    write_nil(out);
                    return;
                }
                let (start, end) = offsets.range(row);
                write_array_header(out, end - start);
                for i in start..end {
                    child.write(i, out);
                }
            }
        }
    }
}

fn cannot_encode(column: &str, data_type: &DataType, as_type: &str) -> CoreError {
    CoreError::unsupported(
        column,
        format!("Arrow type {data_type} cannot be encoded as {as_type}"),
    )
}

/// Any float or integer column as `f64` (`f32` when `narrow`), `None` for other types.
fn floats<'a>(
    array: &'a dyn Array,
    column: &str,
    narrow: bool,
) -> Result<Option<Values<'a>>, CoreError> {
    Ok(Some(match (array.data_type(), narrow) {
        (DataType::Float32, true) => Values::F32(Cow::Borrowed(
            &array.as_primitive::<Float32Type>().values()[..],
        )),
        (DataType::Float64, false) => Values::F64(Cow::Borrowed(
            &array.as_primitive::<Float64Type>().values()[..],
        )),
        (DataType::Float64, true) => Values::F32(Cow::Owned(
            array
                .as_primitive::<Float64Type>()
                .values()
                .iter()
                .map(|&v| v as f32)
                .collect(),
        )),
        (DataType::Float32, false) => Values::F64(Cow::Owned(
            array
                .as_primitive::<Float32Type>()
                .values()
                .iter()
                .map(|&v| f64::from(v))
                .collect(),
        )),
        (DataType::Float16, _) => {
            let v = array.as_primitive::<Float16Type>().values();
            if narrow {
                Values::F32(Cow::Owned(v.iter().map(|v| v.to_f32()).collect()))
            } else {
                Values::F64(Cow::Owned(v.iter().map(|v| v.to_f64()).collect()))
            }
        }
        _ => match integers_as_i64(array, column)? {
            Some(ints) if narrow => {
                Values::F32(Cow::Owned(ints.iter().map(|&v| v as f32).collect()))
            }
            Some(ints) => Values::F64(Cow::Owned(ints.iter().map(|&v| v as f64).collect())),
            None => return Ok(None),
        },
    }))
}

fn leaf<'a>(array: &'a dyn Array, scalar: Scalar, column: &str) -> Result<Leaf<'a>, CoreError> {
    let mut nulls = validity(array);
    let values = match scalar {
        Scalar::Int32 => match integers_as_i32(array, column)? {
            Some(v) => Some(Values::I32(v)),
            None => integral_floats(array, column, f64::from(i32::MIN), f64::from(i32::MAX))?.map(
                |(v, n)| {
                    nulls = n;
                    Values::I64(Cow::Owned(v))
                },
            ),
        },
        Scalar::Int64 => match integers_as_i64(array, column)? {
            Some(v) => Some(Values::I64(v)),
            // 2^63 is the first float above i64::MAX.
            None => integral_floats(
                array,
                column,
                -9.223_372_036_854_776e18,
                9.223_372_036_854_775e18,
            )?
            .map(|(v, n)| {
                nulls = n;
                Values::I64(Cow::Owned(v))
            }),
        },
        Scalar::UnixTimestamp => match timestamp_seconds(array) {
            Some(v) => Some(Values::I64(v)),
            None => integers_as_i64(array, column)?.map(Values::I64),
        },
        Scalar::Float => floats(array, column, true)?,
        Scalar::Double => floats(array, column, false)?,
        Scalar::Bool => match array.data_type() {
            DataType::Boolean => Some(Values::Bool(array.as_boolean().values().clone())),
            _ => None,
        },
        Scalar::String | Scalar::Json => bytes_column(array, true).map(Values::Str),
        Scalar::Bytes => bytes_column(array, false)
            .or_else(|| bytes_column(array, true))
            .map(Values::Bin),
    };
    match values {
        Some(values) => Ok(Leaf {
            values,
            nulls,
            nan_is_null: true,
        }),
        None => Err(cannot_encode(column, array.data_type(), scalar.name())),
    }
}

fn column_encoder<'a>(
    array: &'a dyn Array,
    feature_type: FeatureType,
    column: &str,
) -> Result<ColumnEncoder<'a>, CoreError> {
    if !feature_type.list {
        return Ok(ColumnEncoder::Scalar(leaf(
            array,
            feature_type.scalar,
            column,
        )?));
    }
    let (offsets, child) = match array.data_type() {
        DataType::List(_) => {
            let a = array.as_list::<i32>();
            (ListOffsets::I32(&a.offsets()[..]), a.values())
        }
        DataType::LargeList(_) => {
            let a = array.as_list::<i64>();
            (ListOffsets::I64(&a.offsets()[..]), a.values())
        }
        DataType::FixedSizeList(_, n) => {
            // Arrow slices the child along with the array, so row 0 starts at child 0.
            let child = array.as_fixed_size_list().values();
            (ListOffsets::Fixed(*n as usize), child)
        }
        other => return Err(cannot_encode(column, other, &feature_type.name())),
    };
    Ok(ColumnEncoder::List {
        offsets,
        nulls: validity(array),
        child: Leaf {
            nan_is_null: false,
            ..leaf(child.as_ref(), feature_type.scalar, column)?
        },
    })
}

/// An event-time column (any unit, any time zone) as microseconds since the epoch, rounded
/// down; `None` for a non-timestamp column.
pub fn timestamp_micros(array: &dyn Array) -> Option<Cow<'_, [i64]>> {
    let scaled = |values: &[i64], per_micro: i64, micros_per: i64| -> Cow<'static, [i64]> {
        Cow::Owned(
            values
                .iter()
                .map(|&v| v.div_euclid(per_micro).saturating_mul(micros_per))
                .collect(),
        )
    };
    Some(match array.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Cow::Borrowed(&array.as_primitive::<TimestampMicrosecondType>().values()[..])
        }
        DataType::Timestamp(TimeUnit::Second, _) => scaled(
            array.as_primitive::<TimestampSecondType>().values(),
            1,
            1_000_000,
        ),
        DataType::Timestamp(TimeUnit::Millisecond, _) => scaled(
            array.as_primitive::<TimestampMillisecondType>().values(),
            1,
            1_000,
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => scaled(
            array.as_primitive::<TimestampNanosecondType>().values(),
            1_000,
            1,
        ),
        _ => return None,
    })
}

/// One plain scalar value, for writers that hold no Arrow column (the small-write path):
/// [`write_cell`] writes it exactly as [`encode_rows`] writes the same value from a column.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    Null,
    Int(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Str(&'a str),
}

/// The header of a packed row (version, event time, array of `features` elements); the
/// elements follow, one [`write_cell`] each.
pub fn begin_row(out: &mut Vec<u8>, micros: i64, features: usize) {
    out.push(VERSION);
    out.extend_from_slice(&timestamp_bytes(micros));
    write_array_header(out, features);
}

/// One element of a packed row: NaN is stored as nil, as from a column.
pub fn write_cell(out: &mut Vec<u8>, cell: Cell<'_>) {
    match cell {
        Cell::Null => write_nil(out),
        Cell::Int(v) => write_int(out, v),
        Cell::F32(v) if v.is_nan() => write_nil(out),
        Cell::F32(v) => write_f32(out, v),
        Cell::F64(v) if v.is_nan() => write_nil(out),
        Cell::F64(v) => write_f64(out, v),
        Cell::Bool(v) => write_bool(out, v),
        Cell::Str(v) => write_raw(out, v.as_bytes(), true),
    }
}

/// Every row's packed bytes in one buffer: row `i` is `data[offsets[i]..offsets[i + 1]]`.
pub struct PackedRows {
    pub data: Vec<u8>,
    pub offsets: Vec<i32>,
}

impl PackedRows {
    /// An Arrow binary array over the buffers, without copying.
    pub fn into_array(self) -> BinaryArray {
        let offsets = OffsetBuffer::new(self.offsets.into());
        BinaryArray::new(offsets, Buffer::from_vec(self.data), None)
    }
}

/// One feature column to encode.
pub struct FeatureColumn<'a> {
    pub name: &'a str,
    pub feature_type: FeatureType,
    pub array: &'a dyn Array,
}

/// Encodes one packed row per input row: the feature columns (in the order of the row's
/// `MessagePack` array) and the event times.
pub fn encode_rows(
    columns: &[FeatureColumn<'_>],
    event_timestamps: &dyn Array,
) -> Result<PackedRows, CoreError> {
    let rows = event_timestamps.len();
    let micros = timestamp_micros(event_timestamps).ok_or_else(|| {
        cannot_encode(
            "event_timestamp",
            event_timestamps.data_type(),
            "an event timestamp",
        )
    })?;
    if let Some(row) = crate::columns::first_null(event_timestamps) {
        return Err(CoreError::invalid(
            "event_timestamp",
            row,
            "an event timestamp cannot be null",
        ));
    }
    let mut encoders = Vec::with_capacity(columns.len());
    for c in columns {
        if c.array.len() != rows {
            return Err(CoreError::InvalidArgument(format!(
                "feature '{}' has {} values for {rows} event timestamps",
                c.name,
                c.array.len()
            )));
        }
        encoders.push(column_encoder(c.array, c.feature_type, c.name)?);
    }

    // A first guess that is exact for numeric rows of small values; the Vec grows otherwise.
    let mut data = Vec::with_capacity(rows * (HEADER_LEN + 3 + 5 * columns.len()));
    let mut offsets = Vec::with_capacity(rows + 1);
    offsets.push(0i32);
    for (row, &ts) in micros.iter().enumerate() {
        data.push(VERSION);
        data.extend_from_slice(&timestamp_bytes(ts));
        write_array_header(&mut data, encoders.len());
        for encoder in &encoders {
            encoder.write(row, &mut data);
        }
        let end = i32::try_from(data.len()).map_err(|_| {
            CoreError::InvalidArgument(format!(
                "packed rows exceed 2 GiB at row {row}; encode fewer rows per call"
            ))
        })?;
        offsets.push(end);
    }
    Ok(PackedRows { data, offsets })
}

// ---------------------------------------------------------------------------------------------
// MessagePack reading

/// One `MessagePack` header; for str, bin, array, map and ext the length that follows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Marker {
    Nil,
    Bool(bool),
    Int(i64),
    /// A uint 64 above `i64::MAX`.
    BigUint(u64),
    F32(f32),
    F64(f64),
    Str(usize),
    Bin(usize),
    Array(usize),
    Map(usize),
    Ext(usize),
}

impl Marker {
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Self::Nil => "nil",
            Self::Bool(_) => "a bool",
            Self::Int(_) | Self::BigUint(_) => "an integer",
            Self::F32(_) | Self::F64(_) => "a float",
            Self::Str(_) => "a str",
            Self::Bin(_) => "a bin",
            Self::Array(_) => "an array",
            Self::Map(_) => "a map",
            Self::Ext(_) => "an ext",
        }
    }
}

pub(crate) struct Reader<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
}

const TRUNCATED: &str = "truncated MessagePack value";

impl<'a> Reader<'a> {
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(TRUNCATED)?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    #[inline]
    fn u8(&mut self) -> Result<u8, String> {
        let b = *self.buf.get(self.pos).ok_or(TRUNCATED)?;
        self.pos += 1;
        Ok(b)
    }

    fn len8(&mut self) -> Result<usize, String> {
        Ok(usize::from(self.u8()?))
    }

    fn len16(&mut self) -> Result<usize, String> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    fn len32(&mut self) -> Result<usize, String> {
        Ok(u32::from_be_bytes(self.array()?) as usize)
    }

    #[inline]
    pub(crate) fn marker(&mut self) -> Result<Marker, String> {
        let b = self.u8()?;
        Ok(match b {
            0x00..=0x7f => Marker::Int(i64::from(b)),
            0x80..=0x8f => Marker::Map(usize::from(b & 0x0f)),
            0x90..=0x9f => Marker::Array(usize::from(b & 0x0f)),
            0xa0..=0xbf => Marker::Str(usize::from(b & 0x1f)),
            0xc0 => Marker::Nil,
            0xc2 => Marker::Bool(false),
            0xc3 => Marker::Bool(true),
            0xc4 => Marker::Bin(self.len8()?),
            0xc5 => Marker::Bin(self.len16()?),
            0xc6 => Marker::Bin(self.len32()?),
            0xc7 => Marker::Ext(self.len8()? + 1),
            0xc8 => Marker::Ext(self.len16()? + 1),
            0xc9 => Marker::Ext(self.len32()? + 1),
            0xca => Marker::F32(f32::from_be_bytes(self.array()?)),
            0xcb => Marker::F64(f64::from_be_bytes(self.array()?)),
            0xcc => Marker::Int(i64::from(self.u8()?)),
            0xcd => Marker::Int(i64::from(u16::from_be_bytes(self.array()?))),
            0xce => Marker::Int(i64::from(u32::from_be_bytes(self.array()?))),
            0xcf => {
                let v = u64::from_be_bytes(self.array()?);
                i64::try_from(v).map_or(Marker::BigUint(v), Marker::Int)
            }
            0xd0 => Marker::Int(i64::from(i8::from_be_bytes(self.array()?))),
            0xd1 => Marker::Int(i64::from(i16::from_be_bytes(self.array()?))),
            0xd2 => Marker::Int(i64::from(i32::from_be_bytes(self.array()?))),
            0xd3 => Marker::Int(i64::from_be_bytes(self.array()?)),
            0xd4 => Marker::Ext(2),
            0xd5 => Marker::Ext(3),
            0xd6 => Marker::Ext(5),
            0xd7 => Marker::Ext(9),
            0xd8 => Marker::Ext(17),
            0xd9 => Marker::Str(self.len8()?),
            0xda => Marker::Str(self.len16()?),
            0xdb => Marker::Str(self.len32()?),
            0xdc => Marker::Array(self.len16()?),
            0xdd => Marker::Array(self.len32()?),
            0xde => Marker::Map(self.len16()?),
            0xdf => Marker::Map(self.len32()?),
            0xe0..=0xff => Marker::Int(i64::from(b as i8)),
            0xc1 => return Err("byte 0xc1 is not a MessagePack marker".to_owned()),
        })
    }

    /// Skips the value whose marker was just read (nested arrays and maps included).
    pub(crate) fn skip(&mut self, marker: Marker) -> Result<(), String> {
        let mut pending: usize = 0;
        let mut marker = marker;
        loop {
            match marker {
                Marker::Str(n) | Marker::Bin(n) | Marker::Ext(n) => {
                    self.take(n)?;
                }
                Marker::Array(n) => pending = pending.saturating_add(n),
                Marker::Map(n) => pending = pending.saturating_add(n.saturating_mul(2)),
                _ => {}
            }
            if pending == 0 {
                return Ok(());
            }
            pending -= 1;
            marker = self.marker()?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

enum LeafBuilder {
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
    Bin(BinaryBuilder),
    Timestamp(TimestampMicrosecondBuilder),
}

pub(crate) fn expected(what: &str, found: Marker) -> String {
    format!("expected {what}, found {}", found.kind())
}

impl LeafBuilder {
    fn new(scalar: Scalar, capacity: usize) -> Self {
        match scalar {
            Scalar::Int32 => Self::I32(Int32Builder::with_capacity(capacity)),
            Scalar::Int64 => Self::I64(Int64Builder::with_capacity(capacity)),
            Scalar::Float => Self::F32(Float32Builder::with_capacity(capacity)),
            Scalar::Double => Self::F64(Float64Builder::with_capacity(capacity)),
            Scalar::Bool => Self::Bool(BooleanBuilder::with_capacity(capacity)),
            Scalar::String | Scalar::Json => Self::Str(StringBuilder::with_capacity(capacity, 0)),
            Scalar::Bytes => Self::Bin(BinaryBuilder::with_capacity(capacity, 0)),
            Scalar::UnixTimestamp => Self::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
        }
    }

    fn append_null(&mut self) {
        match self {
            Self::I32(b) => b.append_null(),
            Self::I64(b) => b.append_null(),
            Self::F32(b) => b.append_null(),
            Self::F64(b) => b.append_null(),
            Self::Bool(b) => b.append_null(),
            Self::Str(b) => b.append_null(),
            Self::Bin(b) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
        }
    }

    /// Appends the value whose marker was just read.
    #[inline]
    fn append(&mut self, marker: Marker, r: &mut Reader<'_>) -> Result<(), String> {
        if marker == Marker::Nil {
            self.append_null();
            return Ok(());
        }
        match (self, marker) {
            (Self::I32(b), Marker::Int(v)) => {
                let v = i32::try_from(v).map_err(|_| format!("{v} does not fit in INT32"))?;
                b.append_value(v);
            }
            (Self::I64(b), Marker::Int(v)) => b.append_value(v),
            (Self::Timestamp(b), Marker::Int(v)) => {
                let micros = v
                    .checked_mul(1_000_000)
                    .ok_or_else(|| format!("{v} seconds is out of the timestamp range"))?;
                b.append_value(micros);
            }
            (Self::F32(b), Marker::F32(v)) => b.append_value(v),
            (Self::F32(b), Marker::F64(v)) => b.append_value(v as f32),
            (Self::F32(b), Marker::Int(v)) => b.append_value(v as f32),
            (Self::F64(b), Marker::F64(v)) => b.append_value(v),
            (Self::F64(b), Marker::F32(v)) => b.append_value(f64::from(v)),
            (Self::F64(b), Marker::Int(v)) => b.append_value(v as f64),
            (Self::F32(b), Marker::BigUint(v)) => b.append_value(v as f32),
            (Self::F64(b), Marker::BigUint(v)) => b.append_value(v as f64),
            (Self::I32(_) | Self::I64(_) | Self::Timestamp(_), Marker::BigUint(v)) => {
                return Err(format!("{v} does not fit in a signed 64-bit integer"))
            }
            (Self::Bool(b), Marker::Bool(v)) => b.append_value(v),
            (Self::Str(b), Marker::Str(n)) => {
                let s = std::str::from_utf8(r.take(n)?)
                    .map_err(|e| format!("str is not valid UTF-8: {e}"))?;
                b.append_value(s);
            }
            (Self::Bin(b), Marker::Bin(n) | Marker::Str(n)) => b.append_value(r.take(n)?),
            (Self::I32(_) | Self::I64(_) | Self::Timestamp(_), m) => {
                return Err(expected("an integer", m))
            }
            (Self::F32(_) | Self::F64(_), m) => return Err(expected("a number", m)),
            (Self::Bool(_), m) => return Err(expected("a bool", m)),
            (Self::Str(_), m) => return Err(expected("a str", m)),
            (Self::Bin(_), m) => return Err(expected("a bin", m)),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::I32(b) => Arc::new(b.finish()),
            Self::I64(b) => Arc::new(b.finish()),
            Self::F32(b) => Arc::new(b.finish()),
            Self::F64(b) => Arc::new(b.finish()),
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Str(b) => Arc::new(b.finish()),
            Self::Bin(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
        }
    }
}

enum ColumnBuilder {
    Scalar(LeafBuilder),
    List {
        scalar: Scalar,
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
        child: LeafBuilder,
    },
}

impl ColumnBuilder {
    fn new(feature_type: FeatureType, capacity: usize) -> Self {
        if feature_type.list {
            let mut offsets = Vec::with_capacity(capacity + 1);
            offsets.push(0);
            Self::List {
                scalar: feature_type.scalar,
                offsets,
                nulls: NullBufferBuilder::new(capacity),
                child: LeafBuilder::new(feature_type.scalar, capacity),
            }
        } else {
            Self::Scalar(LeafBuilder::new(feature_type.scalar, capacity))
        }
    }

    fn append_null(&mut self) {
        match self {
            Self::Scalar(b) => b.append_null(),
            Self::List { offsets, nulls, .. } => {
                offsets.push(*offsets.last().expect("starts with 0"));
                nulls.append_null();
            }
        }
    }

    fn append(&mut self, marker: Marker, r: &mut Reader<'_>) -> Result<(), String> {
        match self {
            Self::Scalar(b) => b.append(marker, r),
            Self::List {
                offsets,
                nulls,
                child,
                ..
            } => {
                let n = match marker {
                    Marker::Nil => {
                        offsets.push(*offsets.last().expect("starts with 0"));
                        nulls.append_null();
                        return Ok(());
                    }
                    Marker::Array(n) => n,
                    m => return Err(expected("an array", m)),
                };
                for _ in 0..n {
                    let m = r.marker()?;
                    child.append(m, r)?;
                }
                let end = offsets.last().expect("starts with 0") + n as i32;
                offsets.push(end);
                nulls.append_non_null();
                Ok(())
            }
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Scalar(b) => b.finish(),
            Self::List {
                scalar,
                offsets,
                nulls,
                child,
            } => {
                let field = Arc::new(Field::new_list_field(scalar.arrow_type(), true));
                let offsets = OffsetBuffer::new(std::mem::take(offsets).into());
                Arc::new(ListArray::new(
                    field,
                    offsets,
                    child.finish(),
                    nulls.finish(),
                ))
            }
        }
    }
}

/// The decoded columns: event times (`timestamp[us, UTC]`, null for a missing row) and one
/// array per selected feature.
pub struct DecodedRows {
    pub event_timestamps: TimestampMicrosecondArray,
    pub columns: Vec<ArrayRef>,
}

/// Decodes packed rows (`None` = no row stored) into the `select`ed features of a view whose
/// features have `feature_types` in schema order. Rows holding fewer elements than the schema
/// (written before the view gained features) yield nulls for the missing ones; elements past
/// the schema are ignored. A corrupt row is an error naming the row.
pub fn decode_rows<'a>(
    rows: impl ExactSizeIterator<Item = Option<&'a [u8]>>,
    feature_types: &[FeatureType],
    select: &[usize],
) -> Result<DecodedRows, CoreError> {
    let capacity = rows.len();
    // Each stored position decodes into at most one builder; repeated selections are copies.
    let mut slot_of = vec![usize::MAX; feature_types.len()];
    let mut builders = Vec::new();
    let mut first_slot = Vec::with_capacity(select.len());
    for &f in select {
        let Some(&t) = feature_types.get(f) else {
            return Err(CoreError::InvalidArgument(format!(
                "selected feature {f} is out of range: the view has {} features",
                feature_types.len()
            )));
        };
        if slot_of[f] == usize::MAX {
            slot_of[f] = builders.len();
            builders.push((f, ColumnBuilder::new(t, capacity)));
        }
        first_slot.push(slot_of[f]);
    }
    let mut ts = TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC");

    for (row, bytes) in rows.enumerate() {
        let Some(bytes) = bytes else {
            ts.append_null();
            for (_, b) in &mut builders {
                b.append_null();
            }
            continue;
        };
        let micros = decode_row(bytes, &slot_of, &mut builders).map_err(|detail| {
            CoreError::decode("", row, format!("corrupt packed row: {detail}"))
        })?;
        ts.append_value(micros);
    }

    let built: Vec<ArrayRef> = builders.iter_mut().map(|(_, b)| b.finish()).collect();
    Ok(DecodedRows {
        event_timestamps: ts.finish(),
        columns: first_slot.iter().map(|&s| Arc::clone(&built[s])).collect(),
    })
}

/// Decodes one row into the builders, returns its event time. On error the builders may hold
/// a partial row; the caller drops them.
fn decode_row(
    bytes: &[u8],
    slot_of: &[usize],
    builders: &mut [(usize, ColumnBuilder)],
) -> Result<i64, String> {
    if bytes.len() < HEADER_LEN + 1 {
        return Err(format!(
            "{} bytes is shorter than a row header",
            bytes.len()
        ));
    }
    if bytes[0] != VERSION {
        return Err(format!("unknown format version 0x{:02x}", bytes[0]));
    }
    let micros = timestamp_from_bytes(bytes[1..HEADER_LEN].try_into().expect("8 bytes"));
    let mut r = Reader {
        buf: bytes,
        pos: HEADER_LEN,
    };
    let n = match r.marker()? {
        Marker::Array(n) => n,
        m => return Err(expected("an array of features", m)),
    };
    // Every element is read, selected or not, so corruption is caught wherever it is.
    for i in 0..n {
        let m = r.marker().map_err(|e| format!("feature {i}: {e}"))?;
        match slot_of.get(i) {
            Some(&s) if s != usize::MAX => builders[s].1.append(m, &mut r),
            _ => r.skip(m),
        }
        .map_err(|e| format!("feature {i}: {e}"))?;
    }
    if r.pos != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the features",
            bytes.len() - r.pos
        ));
    }
    // A short row (written before the view gained features): the rest are null.
    for (f, b) in builders.iter_mut() {
        if *f >= n {
            b.append_null();
        }
    }
    Ok(micros)
}

/// The stored rows of a binary column (any binary layout), `None` for a null row.
pub fn rows_of(array: &dyn Array) -> Option<Vec<Option<&[u8]>>> {
    let column = bytes_column(array, false)?;
    let nulls = validity(array);
    Some(
        (0..array.len())
            .map(|i| {
                if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                    None
                } else {
                    Some(column.get(i))
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
        LargeStringArray, ListArray, StringArray, TimestampMicrosecondArray,
        TimestampNanosecondArray, TimestampSecondArray,
    };
    use arrow::datatypes::{Float64Type as F64, Int64Type as I64};

    use super::*;

    fn ft(code: i64) -> FeatureType {
        FeatureType::from_code(code).unwrap()
    }

    fn encode(columns: &[(&dyn Array, i64)], ts: &dyn Array) -> Result<PackedRows, CoreError> {
        let names: Vec<String> = (0..columns.len()).map(|i| format!("f{i}")).collect();
        let cols: Vec<FeatureColumn<'_>> = columns
            .iter()
            .zip(&names)
            .map(|(&(array, code), name)| FeatureColumn {
                name,
                feature_type: ft(code),
                array,
            })
            .collect();
        encode_rows(&cols, ts)
    }

    fn rows(packed: &PackedRows) -> Vec<&[u8]> {
        packed
            .offsets
            .windows(2)
            .map(|w| &packed.data[w[0] as usize..w[1] as usize])
            .collect()
    }

    fn decode(
        stored: &[Option<&[u8]>],
        codes: &[i64],
        select: &[usize],
    ) -> Result<DecodedRows, CoreError> {
        let types: Vec<FeatureType> = codes.iter().map(|&c| ft(c)).collect();
        decode_rows(stored.iter().copied(), &types, select)
    }

    fn hex(b: &[u8]) -> String {
        use std::fmt::Write;

        b.iter().fold(String::new(), |mut s, x| {
            write!(s, "{x:02x}").expect("writing to a String");
            s
        })
    }

    #[test]
    fn timestamp_bytes_order_like_the_times() {
        let times = [
            i64::MIN,
            -1_000_000,
            -1,
            0,
            1,
            1_700_000_000_000_000,
            i64::MAX,
        ];
        for w in times.windows(2) {
            assert!(timestamp_bytes(w[0]) < timestamp_bytes(w[1]), "{w:?}");
        }
        for t in times {
            assert_eq!(timestamp_from_bytes(timestamp_bytes(t)), t);
        }
        assert_eq!(hex(&timestamp_bytes(0)), "8000000000000000");
        assert_eq!(hex(&timestamp_bytes(-1)), "7fffffffffffffff");
    }

    #[test]
    fn exact_bytes_of_one_row() {
        let ts = TimestampSecondArray::from(vec![1]);
        let packed = encode(
            &[
                (&Int64Array::from(vec![Some(1)]), 4),
                (&Float32Array::from(vec![0.5]), 6),
                (&Float64Array::from(vec![1.5]), 5),
                (&StringArray::from(vec!["ab"]), 2),
                (&Int32Array::from(vec![None::<i32>]), 3),
                (&BooleanArray::from(vec![true]), 7),
                (&BinaryArray::from(vec![&b"\x00"[..]]), 1),
            ],
            &ts,
        )
        .unwrap();
        assert_eq!(
            hex(rows(&packed)[0]),
            // version, 1 s = 1e6 µs with the sign bit flipped, array of 7
            "01\
             80000000000f4240\
             97\
             01\
             ca3f000000\
             cb3ff8000000000000\
             a26162\
             c0\
             c3\
             c40100"
        );
    }

    #[test]
    fn integers_take_the_smallest_form_and_read_back() {
        let values = [
            0,
            127,
            128,
            255,
            256,
            65535,
            65536,
            i64::from(u32::MAX),
            i64::from(u32::MAX) + 1,
            i64::MAX,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i64::from(i32::MIN),
            i64::from(i32::MIN) - 1,
            i64::MIN,
        ];
        let lens = [1, 1, 2, 2, 3, 3, 5, 5, 9, 9, 1, 1, 2, 2, 3, 3, 5, 5, 9, 9];
        for (&v, &len) in values.iter().zip(&lens) {
            let mut out = Vec::new();
            write_int(&mut out, v);
            assert_eq!(out.len(), len, "{v}");
            let mut r = Reader { buf: &out, pos: 0 };
            assert_eq!(r.marker().unwrap(), Marker::Int(v));
            assert_eq!(r.pos, out.len());
        }
    }

    #[test]
    fn round_trip_of_every_type_with_nulls() {
        let ts = TimestampNanosecondArray::from(vec![1_500, -2_500, 3_000_000_000])
            .with_timezone("Europe/Paris");
        let long = "x".repeat(70_000);
        let ints = Int64Array::from(vec![Some(i64::MIN), None, Some(i64::MAX)]);
        let i32s = Int32Array::from(vec![Some(-5), Some(i32::MAX), None]);
        let f32s = Float32Array::from(vec![Some(0.1), Some(f32::NAN), None]);
        let f64s = Float64Array::from(vec![Some(-0.0), None, Some(f64::INFINITY)]);
        let bools = BooleanArray::from(vec![Some(false), None, Some(true)]);
        let strs = LargeStringArray::from(vec![Some("é"), Some(long.as_str()), None]);
        let json = StringArray::from(vec![Some("{\"a\":1}"), None, Some("[]")]);
        let bins = BinaryArray::from(vec![Some(&b""[..]), None, Some(&[0u8, 255][..])]);
        let unix = TimestampMicrosecondArray::from(vec![Some(1_999_999), None, Some(-1_500_000)]);
        let int_list = ListArray::from_iter_primitive::<I64, _, _>(vec![
            Some(vec![Some(1), None, Some(-3)]),
            None,
            Some(vec![]),
        ]);
        let dbl_list = ListArray::from_iter_primitive::<F64, _, _>(vec![
            None,
            Some(vec![Some(1.5)]),
            Some(vec![Some(2.0), Some(f64::NAN)]),
        ]);
        let packed = encode(
            &[
                (&ints, 4),
                (&i32s, 3),
                (&f32s, 6),
                (&f64s, 5),
                (&bools, 7),
                (&strs, 2),
                (&json, 32),
                (&bins, 1),
                (&unix, 8),
                (&int_list, 14),
                (&dbl_list, 15),
            ],
            &ts,
        )
        .unwrap();
        let array = packed.into_array();
        let stored: Vec<Option<&[u8]>> = (0..3).map(|i| Some(array.value(i))).collect();
        let codes = [4, 3, 6, 5, 7, 2, 32, 1, 8, 14, 15];
        let out = decode(&stored, &codes, &(0..11).collect::<Vec<_>>()).unwrap();
        // Nanoseconds round down to microseconds.
        assert_eq!(out.event_timestamps.values(), &[1, -3, 3_000_000]);
        assert_eq!(out.event_timestamps.timezone(), Some("UTC"));
        let c = &out.columns;
        assert_eq!(c[0].as_primitive::<I64>(), &ints);
        assert_eq!(c[1].as_primitive::<arrow::datatypes::Int32Type>(), &i32s);
        // A NaN feature is written as null, as Feast does (NaN in a list is kept, below).
        assert_eq!(
            c[2].as_primitive::<Float32Type>(),
            &Float32Array::from(vec![Some(0.1), None, None])
        );
        assert_eq!(c[3].as_primitive::<F64>(), &f64s);
        assert_eq!(c[4].as_boolean(), &bools);
        let want_strs = StringArray::from(vec![Some("é"), Some(long.as_str()), None]);
        assert_eq!(c[5].as_string::<i32>(), &want_strs);
        assert_eq!(c[6].as_string::<i32>(), &json);
        assert_eq!(c[7].as_binary::<i32>(), &bins);
        // UNIX_TIMESTAMP keeps Feast's whole seconds (truncated toward zero).
        assert_eq!(
            c[8].as_primitive::<TimestampMicrosecondType>(),
            &TimestampMicrosecondArray::from(vec![Some(1_000_000), None, Some(-1_000_000)])
                .with_timezone("UTC")
        );
        assert_eq!(c[9].as_list::<i32>(), &int_list);
        let doubles = c[10].as_list::<i32>();
        assert_eq!(doubles.nulls(), dbl_list.nulls());
        assert_eq!(doubles.value_offsets(), &[0, 0, 1, 3]);
        let values = doubles.values().as_primitive::<F64>().values();
        assert_eq!(&values[..2], &[1.5, 2.0]);
        assert!(values[2].is_nan());
        for (array, code) in c.iter().zip(codes) {
            assert_eq!(array.data_type(), &ft(code).arrow_type());
        }
    }

    #[test]
    fn missing_rows_short_rows_and_selection() {
        let ts = TimestampMicrosecondArray::from(vec![7]);
        let old = encode(&[(&Int64Array::from(vec![5]), 4)], &ts).unwrap();
        let new = encode(
            &[
                (&Int64Array::from(vec![6]), 4),
                (&StringArray::from(vec!["s"]), 2),
            ],
            &ts,
        )
        .unwrap();
        let stored = [Some(rows(&old)[0]), None, Some(rows(&new)[0])];
        // A view that gained a feature: the old row has no element for it.
        let out = decode(&stored, &[4, 2], &[1, 0, 1]).unwrap();
        assert_eq!(
            out.event_timestamps,
            TimestampMicrosecondArray::from(vec![Some(7), None, Some(7)]).with_timezone("UTC")
        );
        let strs = StringArray::from(vec![None, None, Some("s")]);
        assert_eq!(out.columns[0].as_string::<i32>(), &strs);
        assert_eq!(
            out.columns[1].as_primitive::<I64>(),
            &Int64Array::from(vec![Some(5), None, Some(6)])
        );
        assert_eq!(out.columns[2].as_string::<i32>(), &strs);
        // No selection: only the times.
        assert!(decode(&stored, &[4, 2], &[]).unwrap().columns.is_empty());
        let err = decode(&stored, &[4, 2], &[2]).err().unwrap();
        assert_eq!(
            err.to_string(),
            "selected feature 2 is out of range: the view has 2 features"
        );
    }

    #[test]
    fn corrupt_rows_are_errors_naming_the_row() {
        let ts = TimestampMicrosecondArray::from(vec![7]);
        let good = encode(&[(&StringArray::from(vec!["abc"]), 2)], &ts).unwrap();
        let good = rows(&good)[0].to_vec();
        let mut bad_version = good.clone();
        bad_version[0] = 2;
        let mut bad_utf8 = good.clone();
        let last = bad_utf8.len() - 1;
        bad_utf8[last] = 0xff;
        let mut trailing = good.clone();
        trailing.push(0);
        let not_array = [&good[..9], &[0x01]].concat();
        let cases: [(&[u8], &str); 7] = [
            (&good[..5], "5 bytes is shorter than a row header"),
            (&bad_version, "unknown format version 0x02"),
            (
                &good[..good.len() - 1],
                "feature 0: truncated MessagePack value",
            ),
            (&bad_utf8, "feature 0: str is not valid UTF-8"),
            (&trailing, "1 trailing bytes after the features"),
            (
                &not_array,
                "expected an array of features, found an integer",
            ),
            (
                &[&good[..9], &[0x91, 0xc1][..]].concat(),
                "feature 0: byte 0xc1",
            ),
        ];
        for (bytes, want) in cases {
            let err = decode(&[Some(&good), Some(bytes)], &[2], &[0])
                .err()
                .unwrap();
            let msg = err.to_string();
            assert!(msg.starts_with("row 1: corrupt packed row: "), "{msg}");
            assert!(msg.contains(want), "{msg} does not contain {want}");
            assert!(matches!(err, CoreError::Decode { .. }));
        }
        // A str where an integer is expected, also in a feature that is only skipped.
        let err = decode(&[Some(&good)], &[4], &[0]).err().unwrap();
        assert_eq!(
            err.to_string(),
            "row 0: corrupt packed row: feature 0: expected an integer, found a str"
        );
        let short = [&good[..9], &[0x92, 0x01, 0xa5, b'a'][..]].concat();
        let err = decode(&[Some(&short)], &[4, 2], &[0]).err().unwrap();
        assert!(err.to_string().contains("feature 1: truncated"), "{err}");
    }

    #[test]
    fn lenient_numbers_and_skipping_nested_values() {
        // A row as another MessagePack writer might produce it: an int for a DOUBLE, a double
        // for a FLOAT, a float32 for a DOUBLE, and a map and an ext in unselected positions.
        let mut row = vec![VERSION];
        row.extend_from_slice(&timestamp_bytes(0));
        row.extend_from_slice(&[0x95, 0x05]);
        write_f64(&mut row, 0.25);
        write_f32(&mut row, 0.5);
        row.extend_from_slice(&[0x81, 0xa1, b'k', 0x92, 0x01, 0xc0]);
        row.extend_from_slice(&[0xd4, 0x01, 0x02]);
        let out = decode(&[Some(&row)], &[5, 6, 5, 2, 2], &[0, 1, 2]).unwrap();
        assert_eq!(
            out.columns[0].as_primitive::<F64>(),
            &Float64Array::from(vec![5.0])
        );
        assert_eq!(
            out.columns[1].as_primitive::<Float32Type>(),
            &Float32Array::from(vec![0.25])
        );
        assert_eq!(
            out.columns[2].as_primitive::<F64>(),
            &Float64Array::from(vec![0.5])
        );
    }

    #[test]
    fn bad_inputs_name_the_column() {
        let ts = TimestampMicrosecondArray::from(vec![Some(1), None]);
        let ints = Int64Array::from(vec![1, 2]);
        let err = encode(&[(&ints, 4)], &ts).err().unwrap();
        assert_eq!(
            err.to_string(),
            "column 'event_timestamp' row 1: an event timestamp cannot be null"
        );
        let ts = TimestampMicrosecondArray::from(vec![1, 2]);
        let err = encode(&[(&ints, 2)], &ts).err().unwrap();
        assert_eq!(
            err.to_string(),
            "column 'f0': Arrow type Int64 cannot be encoded as STRING"
        );
        let big = Int64Array::from(vec![1, 1 << 40]);
        let err = encode(&[(&big, 3)], &ts).err().unwrap();
        assert!(err.to_string().starts_with("column 'f0' row 1:"), "{err}");
        let frac = Float64Array::from(vec![1.0, 1.5]);
        assert!(encode(&[(&frac, 4)], &ts).is_err());
        let err = encode(&[(&Int64Array::from(vec![1]), 4)], &ts)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "feature 'f0' has 1 values for 2 event timestamps"
        );
        let err = FeatureType::from_code(20).err().unwrap();
        assert!(err
            .to_string()
            .starts_with("value type 20 has no packed encoding"));
        let err = encode(&[], &ints).err().unwrap();
        assert!(err
            .to_string()
            .contains("cannot be encoded as an event timestamp"));
    }

    #[test]
    fn float_columns_with_integral_values_encode_as_ints() {
        // pandas turns an int column with nulls into float64 with NaN.
        let ts = TimestampMicrosecondArray::from(vec![1, 2]);
        let f = Float64Array::from(vec![3.0, f64::NAN]);
        let packed = encode(&[(&f, 4)], &ts).unwrap();
        let stored: Vec<Option<&[u8]>> = rows(&packed).into_iter().map(Some).collect();
        let out = decode(&stored, &[4], &[0]).unwrap();
        assert_eq!(
            out.columns[0].as_primitive::<I64>(),
            &Int64Array::from(vec![Some(3), None])
        );
        let _ = Arc::new(f);
    }
}
