//! Arrow input adapters shared by the key and value codecs (plain Rust, no pyo3).
//!
//! Each adapter takes any reasonable Arrow type for one kind of value and returns a view the
//! kernels can index by row without matching on the Arrow type again: integers are widened (or
//! range-checked) into one slice, timestamps become whole seconds, and every string or binary
//! layout becomes a `BytesColumn`. Values at null slots are unspecified; callers check validity.
use std::borrow::Cow;

use arrow::array::{Array, AsArray, NullBufferBuilder};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    DataType, Int16Type, Int32Type, Int64Type, Int8Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};

use crate::error::CoreError;

/// The validity of every row (dictionary arrays included), `None` when there is no null.
pub fn validity(array: &dyn Array) -> Option<NullBuffer> {
    array.logical_nulls().filter(|n| n.null_count() > 0)
}

/// The first null row, if any.
pub fn first_null(array: &dyn Array) -> Option<usize> {
    validity(array).and_then(|n| n.iter().position(|valid| !valid))
}

fn valid(nulls: Option<&NullBuffer>, row: usize) -> bool {
    nulls.is_none_or(|n| n.is_valid(row))
}

fn widen<T, U>(values: &[T]) -> Cow<'static, [U]>
where
    T: Copy,
    U: From<T> + Clone,
{
    Cow::Owned(values.iter().map(|&v| U::from(v)).collect())
}

/// Every integer column as `i64`; `None` when the column is not an integer type.
/// `UInt64` values above `i64::MAX` are an error naming the row.
pub fn integers_as_i64<'a>(
    array: &'a dyn Array,
    column: &str,
) -> Result<Option<Cow<'a, [i64]>>, CoreError> {
    let values = match array.data_type() {
        DataType::Int64 => Cow::Borrowed(&array.as_primitive::<Int64Type>().values()[..]),
        DataType::Int32 => widen(array.as_primitive::<Int32Type>().values()),
        DataType::Int16 => widen(array.as_primitive::<Int16Type>().values()),
        DataType::Int8 => widen(array.as_primitive::<Int8Type>().values()),
        DataType::UInt32 => widen(array.as_primitive::<UInt32Type>().values()),
        DataType::UInt16 => widen(array.as_primitive::<UInt16Type>().values()),
        DataType::UInt8 => widen(array.as_primitive::<UInt8Type>().values()),
        DataType::UInt64 => {
            let nulls = validity(array);
            let src = array.as_primitive::<UInt64Type>().values();
            let mut out = Vec::with_capacity(src.len());
            for (row, &v) in src.iter().enumerate() {
                match i64::try_from(v) {
                    Ok(v) => out.push(v),
                    Err(_) if !valid(nulls.as_ref(), row) => out.push(0),
                    Err(_) => {
                        return Err(CoreError::invalid(
                            column,
                            row,
                            format!("{v} does not fit in a signed 64-bit integer"),
                        ))
                    }
                }
            }
            Cow::Owned(out)
        }
        _ => return Ok(None),
    };
    Ok(Some(values))
}

/// Every integer column as `i32`; `None` when the column is not an integer type.
/// Values outside the `i32` range are an error naming the row.
pub fn integers_as_i32<'a>(
    array: &'a dyn Array,
    column: &str,
) -> Result<Option<Cow<'a, [i32]>>, CoreError> {
    let values = match array.data_type() {
        DataType::Int32 => Cow::Borrowed(&array.as_primitive::<Int32Type>().values()[..]),
        DataType::Int16 => widen(array.as_primitive::<Int16Type>().values()),
        DataType::Int8 => widen(array.as_primitive::<Int8Type>().values()),
        DataType::UInt16 => widen(array.as_primitive::<UInt16Type>().values()),
        DataType::UInt8 => widen(array.as_primitive::<UInt8Type>().values()),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => {
            let wide = integers_as_i64(array, column)?.expect("an integer type");
            let nulls = validity(array);
            let mut out = Vec::with_capacity(wide.len());
            for (row, &v) in wide.iter().enumerate() {
                match i32::try_from(v) {
                    Ok(v) => out.push(v),
                    Err(_) if !valid(nulls.as_ref(), row) => out.push(0),
                    Err(_) => {
                        return Err(CoreError::invalid(
                            column,
                            row,
                            format!("{v} does not fit in a signed 32-bit integer (INT32)"),
                        ))
                    }
                }
            }
            Cow::Owned(out)
        }
        _ => return Ok(None),
    };
    Ok(Some(values))
}

/// Integer values and the validity that goes with them.
pub type IntsWithNulls = (Vec<i64>, Option<NullBuffer>);

/// Float columns that hold integers (pandas upcasts an int column with nulls to float64):
/// NaN is null, a fraction or an out-of-range value is an error naming the row.
/// Returns the values and the validity with the NaN rows added; `None` for non-float columns.
pub fn integral_floats(
    array: &dyn Array,
    column: &str,
    min: f64,
    max: f64,
) -> Result<Option<IntsWithNulls>, CoreError> {
    let floats: Cow<'_, [f64]> = match array.data_type() {
        DataType::Float64 => Cow::Borrowed(
            &array
                .as_primitive::<arrow::datatypes::Float64Type>()
                .values()[..],
        ),
        DataType::Float32 => widen(
            array
                .as_primitive::<arrow::datatypes::Float32Type>()
                .values(),
        ),
        _ => return Ok(None),
    };
    let nulls = validity(array);
    let mut out = Vec::with_capacity(floats.len());
    let mut out_nulls = NullBufferBuilder::new(floats.len());
    for (row, &v) in floats.iter().enumerate() {
        if !valid(nulls.as_ref(), row) || v.is_nan() {
            out.push(0);
            out_nulls.append_null();
        } else if v.fract() != 0.0 || v < min || v > max {
            return Err(CoreError::invalid(
                column,
                row,
                format!("{v} is not an integer in range"),
            ));
        } else {
            out.push(v as i64);
            out_nulls.append_non_null();
        }
    }
    Ok(Some((out, out_nulls.finish())))
}

/// A timestamp column (any unit, any time zone) as whole seconds since the epoch, truncated
/// toward zero as Python's `int(datetime.timestamp())` does; `None` for other types.
pub fn timestamp_seconds(array: &dyn Array) -> Option<Cow<'_, [i64]>> {
    fn div(values: &[i64], per_second: i64) -> Cow<'static, [i64]> {
        Cow::Owned(values.iter().map(|v| v / per_second).collect())
    }
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => Some(Cow::Borrowed(
            &array.as_primitive::<TimestampSecondType>().values()[..],
        )),
        DataType::Timestamp(TimeUnit::Millisecond, _) => Some(div(
            array.as_primitive::<TimestampMillisecondType>().values(),
            1_000,
        )),
        DataType::Timestamp(TimeUnit::Microsecond, _) => Some(div(
            array.as_primitive::<TimestampMicrosecondType>().values(),
            1_000_000,
        )),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Some(div(
            array.as_primitive::<TimestampNanosecondType>().values(),
            1_000_000_000,
        )),
        _ => None,
    }
}

/// A timestamp column (any unit, any time zone) as nanoseconds since the epoch, in `i128` so no
/// unit overflows; `None` for other types.
pub fn timestamp_nanos(array: &dyn Array) -> Option<Vec<i128>> {
    fn mul(values: &[i64], nanos_per_unit: i128) -> Vec<i128> {
        values
            .iter()
            .map(|&v| i128::from(v) * nanos_per_unit)
            .collect()
    }
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => Some(mul(
            array.as_primitive::<TimestampSecondType>().values(),
            1_000_000_000,
        )),
        DataType::Timestamp(TimeUnit::Millisecond, _) => Some(mul(
            array.as_primitive::<TimestampMillisecondType>().values(),
            1_000_000,
        )),
        DataType::Timestamp(TimeUnit::Microsecond, _) => Some(mul(
            array.as_primitive::<TimestampMicrosecondType>().values(),
            1_000,
        )),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Some(mul(
            array.as_primitive::<TimestampNanosecondType>().values(),
            1,
        )),
        _ => None,
    }
}

/// Any string or binary layout, indexable by row.
#[derive(Debug)]
pub enum BytesColumn<'a> {
    Var32 {
        offsets: &'a [i32],
        data: &'a [u8],
    },
    Var64 {
        offsets: &'a [i64],
        data: &'a [u8],
    },
    /// String views, fixed-size binary and dictionaries: one slice per row.
    Slices(Vec<&'a [u8]>),
}

impl<'a> BytesColumn<'a> {
    #[inline]
    pub fn get(&self, row: usize) -> &'a [u8] {
        match self {
            Self::Var32 { offsets, data } => {
                &data[offsets[row] as usize..offsets[row + 1] as usize]
            }
            Self::Var64 { offsets, data } => {
                &data[offsets[row] as usize..offsets[row + 1] as usize]
            }
            Self::Slices(slices) => slices[row],
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Var32 { offsets, .. } => offsets.len().saturating_sub(1),
            Self::Var64 { offsets, .. } => offsets.len().saturating_sub(1),
            Self::Slices(slices) => slices.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the offsets end within the data. Arrow checks this only when it validates an
    /// array, and arrays imported from Python are not validated.
    pub fn offsets_in_bounds(&self) -> bool {
        match self {
            Self::Var32 { offsets, data } => offsets
                .last()
                .is_none_or(|&end| end >= 0 && end as usize <= data.len()),
            Self::Var64 { offsets, data } => offsets
                .last()
                .is_none_or(|&end| end >= 0 && end as usize <= data.len()),
            Self::Slices(_) => true,
        }
    }

    /// The number of payload bytes over all rows (null slots included).
    pub fn total_len(&self) -> usize {
        match self {
            Self::Var32 { offsets, .. } => match (offsets.first(), offsets.last()) {
                (Some(&a), Some(&b)) => (b - a) as usize,
                _ => 0,
            },
            Self::Var64 { offsets, .. } => match (offsets.first(), offsets.last()) {
                (Some(&a), Some(&b)) => (b - a) as usize,
                _ => 0,
            },
            Self::Slices(slices) => slices.iter().map(|s| s.len()).sum(),
        }
    }
}

/// A string column (`strings`: `utf8`, `large_utf8`, `utf8_view`, dictionary of those) or a
/// binary one (`binary`, `large_binary`, `binary_view`, `fixed_size_binary`, dictionary of
/// those); `None` otherwise.
pub fn bytes_column(array: &dyn Array, strings: bool) -> Option<BytesColumn<'_>> {
    Some(match (array.data_type(), strings) {
        (DataType::Utf8, true) => {
            let a = array.as_string::<i32>();
            BytesColumn::Var32 {
                offsets: a.value_offsets(),
                data: a.values().as_slice(),
            }
        }
        (DataType::LargeUtf8, true) => {
            let a = array.as_string::<i64>();
            BytesColumn::Var64 {
                offsets: a.value_offsets(),
                data: a.values().as_slice(),
            }
        }
        (DataType::Utf8View, true) => {
            let a = array.as_string_view();
            BytesColumn::Slices(
                (0..a.len())
                    .map(|i| a.value(i).as_bytes())
                    .collect::<Vec<_>>(),
            )
        }
        (DataType::Binary, false) => {
            let a = array.as_binary::<i32>();
            BytesColumn::Var32 {
                offsets: a.value_offsets(),
                data: a.values().as_slice(),
            }
        }
        (DataType::LargeBinary, false) => {
            let a = array.as_binary::<i64>();
            BytesColumn::Var64 {
                offsets: a.value_offsets(),
                data: a.values().as_slice(),
            }
        }
        (DataType::BinaryView, false) => {
            let a = array.as_binary_view();
            BytesColumn::Slices((0..a.len()).map(|i| a.value(i)).collect())
        }
        (DataType::FixedSizeBinary(_), false) => {
            let a = array.as_fixed_size_binary();
            BytesColumn::Slices((0..a.len()).map(|i| a.value(i)).collect())
        }
        (DataType::Dictionary(_, _), _) => {
            let dict = array.as_any_dictionary();
            let values = bytes_column(dict.values().as_ref(), strings)?;
            let keys = dict.normalized_keys();
            let value_count = dict.values().len();
            BytesColumn::Slices(
                keys.iter()
                    // Null keys may point anywhere; they are masked by the validity.
                    .map(|&k| {
                        if k < value_count {
                            values.get(k)
                        } else {
                            &[][..]
                        }
                    })
                    .collect(),
            )
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{DictionaryArray, Int32Array, StringArray, StringViewArray, UInt64Array};
    use arrow::datatypes::Int8Type as Key8;

    use super::*;

    #[test]
    fn uint64_range_is_checked_on_valid_rows_only() {
        let a = UInt64Array::from(vec![Some(1), None, Some(u64::MAX)]);
        let err = integers_as_i64(&a, "id").unwrap_err();
        assert_eq!(
            err.to_string(),
            "column 'id' row 2: 18446744073709551615 does not fit in a signed 64-bit integer"
        );
        let a = UInt64Array::from(vec![Some(1), None]);
        assert_eq!(&*integers_as_i64(&a, "id").unwrap().unwrap(), &[1, 0][..]);
    }

    #[test]
    fn strings_of_every_layout() {
        let plain = StringArray::from(vec!["a", "bc"]);
        let view = StringViewArray::from(vec!["a", "bc"]);
        let dict: DictionaryArray<Key8> = vec!["bc", "a", "bc"].into_iter().collect();
        for (array, rows) in [
            (Arc::new(plain) as Arc<dyn Array>, vec!["a", "bc"]),
            (Arc::new(view), vec!["a", "bc"]),
            (Arc::new(dict), vec!["bc", "a", "bc"]),
        ] {
            let col = bytes_column(array.as_ref(), true).unwrap();
            for (i, want) in rows.iter().enumerate() {
                assert_eq!(col.get(i), want.as_bytes());
            }
        }
        assert!(bytes_column(&Int32Array::from(vec![1]), true).is_none());
        assert!(bytes_column(&StringArray::from(vec!["a"]), false).is_none());
    }
}
