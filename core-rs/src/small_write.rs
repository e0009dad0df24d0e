//! The small-write kernel: a few rows of a `packed`-layout write (the feature server's one-row
//! `/push`) to their entity keys and packed rows in one call, from values the binding took
//! straight out of the request's JSON lists. Plain Rust; no pyo3.
//!
//! It answers `None` — "take the general path" — for what the general path treats specially:
//! a key given twice (only the latest row of a key is written) and rows without any feature
//! value (skipped with a warning). Keys go through the general `keys::serialize_entity_keys`;
//! values through `packed::write_cell`, which writes what `packed::encode_rows` writes for
//! the same value in an Arrow column (tested below and, from Python, by comparing what the
//! two paths store).
use crate::error::CoreError;
use crate::keys::{serialize_entity_keys, KeyPart, KeyVersion, SerializedKeys};
use crate::packed::{begin_row, write_cell, Cell, PackedRows};

/// The keys (without a store suffix) and packed rows of one small write, row for row.
pub struct SmallWrite {
    pub keys: SerializedKeys,
    pub rows: PackedRows,
}

impl SmallWrite {
    /// Row `i`'s key and packed row.
    pub fn row(&self, i: usize) -> (&[u8], &[u8]) {
        (
            slice(&self.keys.data, &self.keys.offsets, i),
            slice(&self.rows.data, &self.rows.offsets, i),
        )
    }

    pub fn len(&self) -> usize {
        self.keys.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn slice<'a>(data: &'a [u8], offsets: &[i32], i: usize) -> &'a [u8] {
    &data[offsets[i] as usize..offsets[i + 1] as usize]
}

/// Encodes `micros.len()` rows; `features[f][row]` is feature `f` of a row, in the order the
/// packed row stores them. `None` when a key repeats or no feature holds a value.
pub fn encode_small_write(
    parts: &[KeyPart<'_>],
    features: &[Vec<Cell<'_>>],
    micros: &[i64],
    version: KeyVersion,
) -> Result<Option<SmallWrite>, CoreError> {
    let rows = micros.len();
    if let Some(f) = features.iter().position(|f| f.len() != rows) {
        return Err(CoreError::InvalidArgument(format!(
            "feature {f} has {} values for {rows} event timestamps",
            features[f].len()
        )));
    }
    if features.iter().flatten().all(|&cell| cell == Cell::Null) {
        return Ok(None);
    }
    let keys = serialize_entity_keys(parts, rows, version, b"")?;
    // A handful of rows: comparing every pair is cheaper than hashing them.
    for i in 1..rows {
        let key = slice(&keys.data, &keys.offsets, i);
        if (0..i).any(|j| slice(&keys.data, &keys.offsets, j) == key) {
            return Ok(None);
        }
    }
    let mut data = Vec::with_capacity(rows * (12 + 9 * features.len()));
    let mut offsets = Vec::with_capacity(rows + 1);
    offsets.push(0i32);
    for (row, &time) in micros.iter().enumerate() {
        begin_row(&mut data, time, features.len());
        for feature in features {
            write_cell(&mut data, feature[row]);
        }
        offsets.push(
            i32::try_from(data.len()).map_err(|_| {
                CoreError::InvalidArgument("a small write exceeds 2 GiB".to_owned())
            })?,
        );
    }
    Ok(Some(SmallWrite {
        keys,
        rows: PackedRows { data, offsets },
    }))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use arrow::array::{
        Array, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, StringArray,
        TimestampMicrosecondArray,
    };

    use super::*;
    use crate::keys::{KeyColumn, KeyType};
    use crate::packed::{encode_rows, FeatureColumn, FeatureType};

    fn key(values: Vec<i64>) -> KeyPart<'static> {
        KeyPart {
            name: "driver_id",
            key_type: KeyType::Int64,
            column: KeyColumn::Int64(Cow::Owned(values)),
        }
    }

    #[test]
    fn writes_what_encode_rows_writes_from_columns() {
        // Two rows of every scalar kind the small path takes, nulls and NaN included.
        let long = "x".repeat(40);
        let columns: Vec<(i64, Box<dyn Array>, Vec<Cell<'_>>)> = vec![
            (
                4,
                Box::new(Int64Array::from(vec![Some(-200), None])),
                vec![Cell::Int(-200), Cell::Null],
            ),
            (
                3,
                Box::new(Int32Array::from(vec![Some(70_000), Some(-1)])),
                vec![Cell::Int(70_000), Cell::Int(-1)],
            ),
            (
                6,
                Box::new(Float32Array::from(vec![Some(0.1), Some(f32::NAN)])),
                vec![Cell::F32(0.1), Cell::F32(f32::NAN)],
            ),
            (
                5,
                Box::new(Float64Array::from(vec![
                    Some(f64::INFINITY),
                    Some(f64::NAN),
                ])),
                vec![Cell::F64(f64::INFINITY), Cell::F64(f64::NAN)],
            ),
            (
                7,
                Box::new(BooleanArray::from(vec![Some(true), Some(false)])),
                vec![Cell::Bool(true), Cell::Bool(false)],
            ),
            (
                2,
                Box::new(StringArray::from(vec![Some("é"), Some(long.as_str())])),
                vec![Cell::Str("é"), Cell::Str(&long)],
            ),
        ];
        let features: Vec<FeatureColumn<'_>> = columns
            .iter()
            .map(|(code, array, _)| FeatureColumn {
                name: "f",
                feature_type: FeatureType::from_code(*code).unwrap(),
                array: array.as_ref(),
            })
            .collect();
        let times = TimestampMicrosecondArray::from(vec![10, -20]);
        let expected = encode_rows(&features, &times).unwrap();
        let cells: Vec<Vec<Cell<'_>>> = columns.iter().map(|(_, _, c)| c.clone()).collect();
        let write = encode_small_write(&[key(vec![7, 8])], &cells, &[10, -20], KeyVersion::V3)
            .unwrap()
            .unwrap();
        let keys = serialize_entity_keys(&[key(vec![7, 8])], 2, KeyVersion::V3, b"").unwrap();
        for i in 0..2 {
            assert_eq!(
                write.row(i),
                (
                    slice(&keys.data, &keys.offsets, i),
                    slice(&expected.data, &expected.offsets, i)
                )
            );
        }
    }

    #[test]
    fn leaves_repeated_keys_and_empty_rows_to_the_general_path() {
        let values = vec![vec![Cell::F64(1.0), Cell::F64(2.0)]];
        let repeated = encode_small_write(&[key(vec![7, 7])], &values, &[1, 2], KeyVersion::V3);
        assert!(repeated.unwrap().is_none());
        let nulls = vec![vec![Cell::Null, Cell::Null]];
        let skipped = encode_small_write(&[key(vec![7, 8])], &nulls, &[1, 2], KeyVersion::V3);
        assert!(skipped.unwrap().is_none());
    }

    #[test]
    fn refuses_features_of_another_length() {
        let short = vec![vec![Cell::F64(1.0)]];
        let err = encode_small_write(&[key(vec![7, 8])], &short, &[1, 2], KeyVersion::V3);
        assert!(err.is_err());
    }
}
