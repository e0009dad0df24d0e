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
//! lets the decoder write straight into Arrow builders without an intermediate value tree. Four
//! parts, each in its own file: the `MessagePack` writer (`msgpack.rs`) and reader
//! (`reader.rs`), the encoder from Arrow columns (`encode.rs`) and the decoder into Arrow
//! builders (`decode.rs`). This file holds the row header and the feature types they share.
use std::sync::Arc;

use arrow::datatypes::{DataType, Field};

use crate::error::CoreError;

mod decode;
mod encode;
mod msgpack;
mod reader;

pub use decode::{decode_rows, rows_of, DecodedRows};
pub use encode::{
    begin_row, encode_rows, timestamp_micros, write_cell, Cell, FeatureColumn, PackedRows,
};
pub(crate) use reader::{expected, Marker, Reader};

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

/// Helpers for the tests of the encoder and the decoder.
#[cfg(test)]
mod testing {
    use arrow::array::Array;

    use super::*;

    pub(super) fn ft(code: i64) -> FeatureType {
        FeatureType::from_code(code).unwrap()
    }

    pub(super) fn encode(
        columns: &[(&dyn Array, i64)],
        ts: &dyn Array,
    ) -> Result<PackedRows, CoreError> {
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

    pub(super) fn rows(packed: &PackedRows) -> Vec<&[u8]> {
        packed
            .offsets
            .windows(2)
            .map(|w| &packed.data[w[0] as usize..w[1] as usize])
            .collect()
    }

    pub(super) fn decode(
        stored: &[Option<&[u8]>],
        codes: &[i64],
        select: &[usize],
    ) -> Result<DecodedRows, CoreError> {
        let types: Vec<FeatureType> = codes.iter().map(|&c| ft(c)).collect();
        decode_rows(stored.iter().copied(), &types, select)
    }

    pub(super) fn hex(b: &[u8]) -> String {
        use std::fmt::Write;

        b.iter().fold(String::new(), |mut s, x| {
            write!(s, "{x:02x}").expect("writing to a String");
            s
        })
    }
}

#[cfg(test)]
mod tests {
    use super::testing::hex;
    use super::*;

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
}
