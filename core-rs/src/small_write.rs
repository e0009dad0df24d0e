//! The small-write kernel: a few rows of a `packed`-layout write (the feature server's one-row
//! `/push`) to their entity keys and packed rows in one call, from values the binding took
//! straight out of the request's JSON lists. Plain Rust; no pyo3.
//!
//! It answers `None` — "take the general path" — for what the general path treats specially:
//! a key given twice (only the latest row of a key is written) and rows without any feature
//! value (skipped with a warning). Everything it does encode goes through the same
//! `keys::serialize_entity_keys` and `packed::encode_rows` as the general path, so the bytes
//! are the same.
use arrow::array::TimestampMicrosecondArray;

use crate::error::CoreError;
use crate::keys::{serialize_entity_keys, KeyPart, KeyVersion, SerializedKeys};
use crate::packed::{encode_rows, FeatureColumn, PackedRows};

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

/// Encodes `micros.len()` rows; `None` when a key repeats or no feature holds a value.
pub fn encode_small_write(
    parts: &[KeyPart<'_>],
    features: &[FeatureColumn<'_>],
    micros: Vec<i64>,
    version: KeyVersion,
) -> Result<Option<SmallWrite>, CoreError> {
    let rows = micros.len();
    if features.iter().all(|f| f.array.null_count() == rows) {
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
    let timestamps = TimestampMicrosecondArray::from(micros).with_timezone("UTC");
    let packed = encode_rows(features, &timestamps)?;
    Ok(Some(SmallWrite { keys, rows: packed }))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use arrow::array::{Float64Array, Int64Array};

    use super::*;
    use crate::keys::{KeyColumn, KeyType};
    use crate::packed::FeatureType;

    fn key(values: Vec<i64>) -> KeyPart<'static> {
        KeyPart {
            name: "driver_id",
            key_type: KeyType::Int64,
            column: KeyColumn::Int64(Cow::Owned(values)),
        }
    }

    fn double() -> FeatureType {
        FeatureType::from_code(5).unwrap()
    }

    #[test]
    fn encodes_what_the_general_kernels_encode() {
        let values = Float64Array::from(vec![Some(1.5), None]);
        let features = [FeatureColumn {
            name: "f",
            feature_type: double(),
            array: &values,
        }];
        let write = encode_small_write(&[key(vec![7, 8])], &features, vec![10, 20], KeyVersion::V3)
            .unwrap()
            .unwrap();
        assert_eq!(write.len(), 2);
        let keys = serialize_entity_keys(&[key(vec![7, 8])], 2, KeyVersion::V3, b"").unwrap();
        let ts = TimestampMicrosecondArray::from(vec![10, 20]);
        let rows = encode_rows(&features, &ts).unwrap();
        for i in 0..2 {
            assert_eq!(
                write.row(i),
                (
                    slice(&keys.data, &keys.offsets, i),
                    slice(&rows.data, &rows.offsets, i)
                )
            );
        }
    }

    #[test]
    fn leaves_repeated_keys_and_empty_rows_to_the_general_path() {
        let values = Float64Array::from(vec![Some(1.0), Some(2.0)]);
        let features = [FeatureColumn {
            name: "f",
            feature_type: double(),
            array: &values,
        }];
        let repeated =
            encode_small_write(&[key(vec![7, 7])], &features, vec![1, 2], KeyVersion::V3);
        assert!(repeated.unwrap().is_none());

        let nulls = Int64Array::from(vec![None, None]);
        let empty = [FeatureColumn {
            name: "f",
            feature_type: FeatureType::from_code(4).unwrap(),
            array: &nulls,
        }];
        let skipped = encode_small_write(&[key(vec![7, 8])], &empty, vec![1, 2], KeyVersion::V3);
        assert!(skipped.unwrap().is_none());
    }
}
