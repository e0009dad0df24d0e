//! Feast entity keys, byte-identical to `serialize_entity_key` versions 3 and 2
//! (docs/feast-compatibility.md §1). Plain Rust over Arrow columns; no pyo3.
//!
//! v3: `u32le N`, then for every join key in sorted name order `u32le 2, u32le len, name`, then
//! for every value in the same order `u32le value_type, u32le len, bytes`.
//! v2: no `N`, and no length before each name.
//! The name section depends only on the names, so the batch kernel builds it once and then
//! writes each row's values straight after a copy of it.
use std::borrow::Cow;

use arrow::array::Array;

use crate::columns::timestamp_seconds;
use crate::columns::{bytes_column, first_null, integers_as_i32, integers_as_i64, BytesColumn};
use crate::error::CoreError;

/// The value types an entity key may hold (Feast `ValueType` numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    Bytes = 1,
    String = 2,
    Int32 = 3,
    Int64 = 4,
    UnixTimestamp = 8,
}

impl KeyType {
    pub fn from_code(code: i64) -> Result<Self, CoreError> {
        Ok(match code {
            1 => Self::Bytes,
            2 => Self::String,
            3 => Self::Int32,
            4 => Self::Int64,
            8 => Self::UnixTimestamp,
            _ => {
                return Err(CoreError::unsupported(
                    "",
                    format!(
                        "value type {code} cannot be an entity key type \
                         (use BYTES=1, STRING=2, INT32=3, INT64=4 or UNIX_TIMESTAMP=8)"
                    ),
                ))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Bytes => "BYTES",
            Self::String => "STRING",
            Self::Int32 => "INT32",
            Self::Int64 => "INT64",
            Self::UnixTimestamp => "UNIX_TIMESTAMP",
        }
    }
}

/// `entity_key_serialization_version`: 3 (current) or 2 (deprecated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyVersion {
    V2,
    V3,
}

impl KeyVersion {
    pub fn from_number(version: i64) -> Result<Self, CoreError> {
        match version {
            3 => Ok(Self::V3),
            2 => Ok(Self::V2),
            _ => Err(CoreError::InvalidArgument(format!(
                "entity key serialization version {version} is not supported (use 3, or 2)"
            ))),
        }
    }
}

/// One join key's values, one per row.
pub enum KeyColumn<'a> {
    Int32(Cow<'a, [i32]>),
    /// `INT64` and `UNIX_TIMESTAMP` (seconds).
    Int64(Cow<'a, [i64]>),
    /// STRING and BYTES.
    Bytes(BytesColumn<'a>),
}

impl KeyColumn<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Int32(v) => v.len(),
            Self::Int64(v) => v.len(),
            Self::Bytes(b) => b.len(),
        }
    }

    /// The bytes all rows' values take after the tag and length words.
    fn payload_len(&self, rows: usize) -> usize {
        match self {
            Self::Int32(_) => 4 * rows,
            Self::Int64(_) => 8 * rows,
            Self::Bytes(b) => b.total_len(),
        }
    }

    #[inline]
    fn write(&self, row: usize, out: &mut Vec<u8>) {
        match self {
            Self::Int32(v) => {
                out.extend_from_slice(&4u32.to_le_bytes());
                out.extend_from_slice(&v[row].to_le_bytes());
            }
            Self::Int64(v) => {
                out.extend_from_slice(&8u32.to_le_bytes());
                out.extend_from_slice(&v[row].to_le_bytes());
            }
            Self::Bytes(b) => {
                let bytes = b.get(row);
                out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                out.extend_from_slice(bytes);
            }
        }
    }
}

/// One join key: its name, its value type and its values.
pub struct KeyPart<'a> {
    pub name: &'a str,
    pub key_type: KeyType,
    pub column: KeyColumn<'a>,
}

/// Every row's key in one buffer: row `i` is `data[offsets[i]..offsets[i + 1]]`.
pub struct SerializedKeys {
    pub data: Vec<u8>,
    pub offsets: Vec<i32>,
}

/// The sorted name section (`prefix` for v3) and, for each sorted position, the input index.
fn name_section(names: &[&str], version: KeyVersion) -> Result<(Vec<u8>, Vec<usize>), CoreError> {
    let mut order: Vec<usize> = (0..names.len()).collect();
    // Rust orders `str` by bytes, which for UTF-8 is Python's code-point order.
    order.sort_by(|&a, &b| names[a].cmp(names[b]));
    if let Some(w) = order.windows(2).find(|w| names[w[0]] == names[w[1]]) {
        return Err(CoreError::InvalidArgument(format!(
            "join key '{}' is given twice",
            names[w[0]]
        )));
    }
    let mut header = Vec::new();
    if version == KeyVersion::V3 {
        header.extend_from_slice(&(names.len() as u32).to_le_bytes());
    }
    for &i in &order {
        header.extend_from_slice(&(KeyType::String as u32).to_le_bytes());
        if version == KeyVersion::V3 {
            header.extend_from_slice(&(names[i].len() as u32).to_le_bytes());
        }
        header.extend_from_slice(names[i].as_bytes());
    }
    Ok((header, order))
}

/// `serialize_entity_key_prefix`: the v3 count and name section, a byte prefix of every v3 key
/// with these join keys.
pub fn entity_key_prefix(names: &[&str]) -> Result<Vec<u8>, CoreError> {
    Ok(name_section(names, KeyVersion::V3)?.0)
}

/// Serializes `rows` keys, each followed by `suffix` (the project name for Redis keys).
/// With no parts every row is the zero-key serialization (`00000000` in v3, empty in v2).
pub fn serialize_entity_keys(
    parts: &[KeyPart<'_>],
    rows: usize,
    version: KeyVersion,
    suffix: &[u8],
) -> Result<SerializedKeys, CoreError> {
    for part in parts {
        let len = part.column.len();
        if len != rows {
            return Err(CoreError::InvalidArgument(format!(
                "join key '{}' has {len} values for {rows} rows",
                part.name
            )));
        }
    }
    let names: Vec<&str> = parts.iter().map(|p| p.name).collect();
    let (header, order) = name_section(&names, version)?;
    let sorted: Vec<(&KeyPart<'_>, [u8; 4])> = order
        .iter()
        .map(|&i| (&parts[i], (parts[i].key_type as u32).to_le_bytes()))
        .collect();

    let fixed = header.len() + suffix.len() + 8 * parts.len();
    let total = fixed * rows
        + parts
            .iter()
            .map(|p| p.column.payload_len(rows))
            .sum::<usize>();
    if i32::try_from(total).is_err() {
        return Err(CoreError::InvalidArgument(format!(
            "{rows} keys take {total} bytes, more than one Arrow binary array holds (2 GiB); \
             serialize them in smaller batches"
        )));
    }
    let mut data = Vec::with_capacity(total);
    let mut offsets = Vec::with_capacity(rows + 1);
    offsets.push(0i32);
    for row in 0..rows {
        data.extend_from_slice(&header);
        for (part, tag) in &sorted {
            data.extend_from_slice(tag);
            part.column.write(row, &mut data);
        }
        data.extend_from_slice(suffix);
        offsets.push(data.len() as i32);
    }
    Ok(SerializedKeys { data, offsets })
}

/// One entity key value, for single-key callers and tests.
#[derive(Clone, Copy, Debug)]
pub enum KeyValue<'a> {
    Bytes(&'a [u8]),
    String(&'a str),
    Int32(i32),
    Int64(i64),
    UnixTimestamp(i64),
}

/// One key from `(join key, value)` pairs in any order.
pub fn serialize_entity_key(
    pairs: &[(&str, KeyValue<'_>)],
    version: KeyVersion,
) -> Result<Vec<u8>, CoreError> {
    let parts: Vec<KeyPart<'_>> = pairs
        .iter()
        .map(|&(name, value)| {
            let (key_type, column) = match value {
                KeyValue::Bytes(b) => (
                    KeyType::Bytes,
                    KeyColumn::Bytes(BytesColumn::Slices(vec![b])),
                ),
                KeyValue::String(s) => (
                    KeyType::String,
                    KeyColumn::Bytes(BytesColumn::Slices(vec![s.as_bytes()])),
                ),
                KeyValue::Int32(v) => (KeyType::Int32, KeyColumn::Int32(Cow::Owned(vec![v]))),
                KeyValue::Int64(v) => (KeyType::Int64, KeyColumn::Int64(Cow::Owned(vec![v]))),
                KeyValue::UnixTimestamp(v) => (
                    KeyType::UnixTimestamp,
                    KeyColumn::Int64(Cow::Owned(vec![v])),
                ),
            };
            KeyPart {
                name,
                key_type,
                column,
            }
        })
        .collect();
    Ok(serialize_entity_keys(&parts, 1, version, b"")?.data)
}

/// Reads one join key column from Arrow. Accepted types per key type:
/// - `INT64`: any integer (`uint64` range-checked); `INT32`: any integer, range-checked;
/// - `UNIX_TIMESTAMP`: timestamp of any unit and zone (whole seconds, truncated toward zero) or
///   integer seconds;
/// - `STRING`: `utf8`, `large_utf8`, `utf8_view`, dictionary of those;
/// - `BYTES`: `binary`, `large_binary`, `binary_view`, `fixed_size_binary`, dictionary of those.
///
/// A null anywhere is an error naming the row.
pub fn key_column_from_arrow<'a>(
    array: &'a dyn Array,
    key_type: KeyType,
    column: &str,
) -> Result<KeyColumn<'a>, CoreError> {
    let converted = match key_type {
        KeyType::Int64 => integers_as_i64(array, column)?.map(KeyColumn::Int64),
        KeyType::Int32 => integers_as_i32(array, column)?.map(KeyColumn::Int32),
        KeyType::UnixTimestamp => match timestamp_seconds(array) {
            Some(seconds) => Some(KeyColumn::Int64(seconds)),
            None => integers_as_i64(array, column)?.map(KeyColumn::Int64),
        },
        KeyType::String => bytes_column(array, true).map(KeyColumn::Bytes),
        KeyType::Bytes => bytes_column(array, false).map(KeyColumn::Bytes),
    };
    let Some(converted) = converted else {
        return Err(CoreError::unsupported(
            column,
            format!(
                "an Arrow {} column cannot hold entity key type {}",
                array.data_type(),
                key_type.name()
            ),
        ));
    };
    if let Some(row) = first_null(array) {
        return Err(CoreError::invalid(
            column,
            row,
            format!(
                "entity key values cannot be null (type {})",
                key_type.name()
            ),
        ));
    }
    Ok(converted)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use arrow::array::{
        Int64Array, LargeStringArray, StringArray, TimestampMillisecondArray, UInt32Array,
    };

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    #[test]
    fn reference_examples() {
        let k = serialize_entity_key(&[("driver_id", KeyValue::Int64(1001))], KeyVersion::V3);
        assert_eq!(
            hex(&k.unwrap()),
            "0100000002000000090000006472697665725f69640400000008000000e903000000000000"
        );
        let k = serialize_entity_key(&[("driver_id", KeyValue::Int64(1001))], KeyVersion::V2);
        assert_eq!(
            hex(&k.unwrap()),
            "020000006472697665725f69640400000008000000e903000000000000"
        );
        let k = serialize_entity_key(&[("__dummy_id", KeyValue::String(""))], KeyVersion::V3);
        assert_eq!(
            hex(&k.unwrap()),
            "01000000020000000a0000005f5f64756d6d795f69640200000000000000"
        );
        assert_eq!(
            hex(&serialize_entity_key(&[], KeyVersion::V3).unwrap()),
            "00000000"
        );
        assert_eq!(hex(&serialize_entity_key(&[], KeyVersion::V2).unwrap()), "");
    }

    #[test]
    fn composite_keys_sort_by_name() {
        let k = serialize_entity_key(
            &[
                ("user_id", KeyValue::String("u1")),
                ("driver_id", KeyValue::Int32(7)),
            ],
            KeyVersion::V3,
        )
        .unwrap();
        assert_eq!(
            hex(&k),
            "0200000002000000090000006472697665725f69640200000007000000757365725f6964\
             03000000040000000700000002000000020000007531"
        );
        assert_eq!(
            hex(&entity_key_prefix(&["user_id", "driver_id"]).unwrap()),
            "0200000002000000090000006472697665725f69640200000007000000757365725f6964"
        );
    }

    #[test]
    fn duplicate_names_and_bad_versions_are_rejected() {
        let err = entity_key_prefix(&["a", "a"]).unwrap_err();
        assert_eq!(err.to_string(), "join key 'a' is given twice");
        assert!(KeyVersion::from_number(1).is_err());
        assert!(KeyType::from_code(5).is_err());
    }

    #[test]
    fn batch_with_suffix_and_arrow_inputs() {
        let ids = UInt32Array::from(vec![1, 2]);
        let names = LargeStringArray::from(vec!["x", "yz"]);
        let parts = [
            KeyPart {
                name: "id",
                key_type: KeyType::Int64,
                column: key_column_from_arrow(&ids, KeyType::Int64, "id").unwrap(),
            },
            KeyPart {
                name: "name",
                key_type: KeyType::String,
                column: key_column_from_arrow(&names, KeyType::String, "name").unwrap(),
            },
        ];
        let out = serialize_entity_keys(&parts, 2, KeyVersion::V3, b"proj").unwrap();
        let row1 = &out.data[out.offsets[1] as usize..out.offsets[2] as usize];
        let want = serialize_entity_key(
            &[("name", KeyValue::String("yz")), ("id", KeyValue::Int64(2))],
            KeyVersion::V3,
        )
        .unwrap();
        assert_eq!(&row1[..want.len()], &want[..]);
        assert_eq!(&row1[want.len()..], b"proj");
        assert_eq!(out.offsets.len(), 3);
    }

    #[test]
    fn zero_parts_give_the_zero_key_per_row() {
        let out = serialize_entity_keys(&[], 3, KeyVersion::V3, b"p").unwrap();
        assert_eq!(out.data, b"\0\0\0\0p\0\0\0\0p\0\0\0\0p");
        assert_eq!(out.offsets, vec![0, 5, 10, 15]);
    }

    #[test]
    fn timestamps_become_seconds_truncated_toward_zero() {
        let ts = TimestampMillisecondArray::from(vec![1_704_106_800_999, -500]);
        let KeyColumn::Int64(s) = key_column_from_arrow(&ts, KeyType::UnixTimestamp, "t").unwrap()
        else {
            panic!("expected seconds")
        };
        assert_eq!(&*s, &[1_704_106_800, 0][..]);
    }

    #[test]
    fn errors_name_column_and_row() {
        let ids = Int64Array::from(vec![Some(1), None]);
        let err = key_column_from_arrow(&ids, KeyType::Int64, "driver_id")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "column 'driver_id' row 1: entity key values cannot be null (type INT64)"
        );
        let s = StringArray::from(vec!["1"]);
        let err = key_column_from_arrow(&s, KeyType::Int64, "driver_id")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "column 'driver_id': an Arrow Utf8 column cannot hold entity key type INT64"
        );
        let big = Int64Array::from(vec![1, 1 << 40]);
        let err = key_column_from_arrow(&big, KeyType::Int32, "d")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "column 'd' row 1: 1099511627776 does not fit in a signed 32-bit integer (INT32)"
        );
        let ids = Int64Array::from(vec![1]);
        let parts = [KeyPart {
            name: "id",
            key_type: KeyType::Int64,
            column: key_column_from_arrow(&ids, KeyType::Int64, "id").unwrap(),
        }];
        assert!(serialize_entity_keys(&parts, 2, KeyVersion::V3, b"").is_err());
    }
}
