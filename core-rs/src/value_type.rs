//! The scalar kinds behind Feast's `ValueType` numbers that Repast's codecs handle, shared by the
//! protobuf codec (`feast_value`) and the packed rows (`packed`). Plain Rust; no pyo3.
use arrow::datatypes::{DataType, TimeUnit};

/// The element kind of a scalar or list feature type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    Bytes,
    String,
    Int32,
    Int64,
    Double,
    Float,
    Bool,
    UnixTimestamp,
    Json,
}

impl Scalar {
    /// The scalar of a Feast `ValueType` number (1..=8, 32), or `None`.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            1 => Self::Bytes,
            2 => Self::String,
            3 => Self::Int32,
            4 => Self::Int64,
            5 => Self::Double,
            6 => Self::Float,
            7 => Self::Bool,
            8 => Self::UnixTimestamp,
            32 => Self::Json,
            _ => return None,
        })
    }

    /// The `ValueType` name, as Feast spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bytes => "BYTES",
            Self::String => "STRING",
            Self::Int32 => "INT32",
            Self::Int64 => "INT64",
            Self::Double => "DOUBLE",
            Self::Float => "FLOAT",
            Self::Bool => "BOOL",
            Self::UnixTimestamp => "UNIX_TIMESTAMP",
            Self::Json => "JSON",
        }
    }

    /// The Arrow type values of this kind are read and returned as.
    pub fn arrow_type(self) -> DataType {
        match self {
            Self::Bytes => DataType::Binary,
            Self::String | Self::Json => DataType::Utf8,
            Self::Int32 => DataType::Int32,
            Self::Int64 => DataType::Int64,
            Self::Double => DataType::Float64,
            Self::Float => DataType::Float32,
            Self::Bool => DataType::Boolean,
            Self::UnixTimestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Scalar;

    #[test]
    fn codes_round_trip_through_names() {
        let codes = [1, 2, 3, 4, 5, 6, 7, 8, 32];
        let names: Vec<_> = codes
            .iter()
            .map(|&c| Scalar::from_code(c).unwrap().name())
            .collect();
        assert_eq!(
            names,
            [
                "BYTES",
                "STRING",
                "INT32",
                "INT64",
                "DOUBLE",
                "FLOAT",
                "BOOL",
                "UNIX_TIMESTAMP",
                "JSON"
            ]
        );
        assert_eq!(Scalar::from_code(0), None);
        assert_eq!(Scalar::from_code(11), None);
    }
}
