//! The encoder: Arrow feature columns and event times into packed rows, and the same bytes
//! from plain values ([`write_cell`]) for the small-write path.
use std::borrow::Cow;

use arrow::array::{Array, AsArray, BinaryArray};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer};
use arrow::datatypes::{
    DataType, Float16Type, Float32Type, Float64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};

use super::msgpack::{
    write_array_header, write_bool, write_f32, write_f64, write_int, write_nil, write_raw,
};
use super::{timestamp_bytes, FeatureType, Scalar, HEADER_LEN, VERSION};
use crate::columns::{
    bytes_column, integers_as_i32, integers_as_i64, integral_floats, timestamp_seconds, validity,
    BytesColumn,
};
use crate::error::CoreError;

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
    /// Bytes (a `Bytes` feature), written as msgpack bin.
    Bin(&'a [u8]),
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
        Cell::Bin(v) => write_raw(out, v, false),
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, StringArray,
        TimestampMicrosecondArray, TimestampSecondArray,
    };
    use arrow::datatypes::Int64Type as I64;

    use super::*;
    use crate::packed::testing::{decode, encode, hex, rows};

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
