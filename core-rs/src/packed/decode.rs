//! The decoder: packed rows into Arrow arrays of the selected features, one builder per
//! feature, straight from the `MessagePack` reader.
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder,
    Int64Builder, ListArray, NullBufferBuilder, StringBuilder, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::Field;

use super::reader::{expected, Marker, Reader};
use super::{timestamp_from_bytes, FeatureType, Scalar, HEADER_LEN, VERSION};
use crate::columns::{bytes_column, validity};
use crate::error::CoreError;

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
    use arrow::array::{
        AsArray, BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
        LargeStringArray, ListArray, StringArray, TimestampMicrosecondArray,
        TimestampNanosecondArray,
    };
    use arrow::datatypes::{
        Float32Type, Float64Type as F64, Int64Type as I64, TimestampMicrosecondType,
    };

    use super::*;
    use crate::packed::msgpack::{write_f32, write_f64};
    use crate::packed::testing::{decode, encode, ft, rows};
    use crate::packed::timestamp_bytes;

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
}
