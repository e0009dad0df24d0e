//! `CoreError`: every failure of a kernel, with the column and row it concerns.
//!
//! The kernels return it; the one `impl From<CoreError> for PyErr` below maps each variant to its
//! own Python class (declared here with `create_exception!`, registered in `lib.rs`).
use pyo3::create_exception;
use pyo3::PyErr;

use crate::RepastError;

create_exception!(
    repast._core,
    InvalidValueError,
    RepastError,
    "A value cannot be used as asked (null entity key, out of range, bad argument); the message names the column and row."
);
create_exception!(
    repast._core,
    DecodeError,
    InvalidValueError,
    "Stored bytes are not a valid Feast Value / Timestamp protobuf, or hold another type than asked."
);
create_exception!(
    repast._core,
    UnsupportedTypeError,
    RepastError,
    "An Arrow type or Feast value type that this codec does not handle."
);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CoreError {
    /// One cell cannot be encoded (null entity key, integer out of range, ...).
    #[error("{}row {row}: {detail}", column_prefix(.column))]
    InvalidValue {
        column: String,
        row: usize,
        detail: String,
    },
    /// One stored cell is not valid protobuf, or holds another oneof than the requested type.
    #[error("{}row {row}: {detail}", column_prefix(.column))]
    Decode {
        column: String,
        row: usize,
        detail: String,
    },
    /// A whole column has an Arrow type (or the call a value type) that the codec does not take.
    #[error("{}{detail}", column_label(.column))]
    UnsupportedType { column: String, detail: String },
    /// The call itself is inconsistent (lengths differ, unknown version, duplicate names).
    #[error("{0}")]
    InvalidArgument(String),
}

fn column_label(column: &str) -> String {
    if column.is_empty() {
        String::new()
    } else {
        format!("column '{column}': ")
    }
}

fn column_prefix(column: &str) -> String {
    if column.is_empty() {
        String::new()
    } else {
        format!("column '{column}' ")
    }
}

impl CoreError {
    pub(crate) fn invalid(column: &str, row: usize, detail: impl Into<String>) -> Self {
        Self::InvalidValue {
            column: column.to_owned(),
            row,
            detail: detail.into(),
        }
    }

    pub(crate) fn decode(column: &str, row: usize, detail: impl Into<String>) -> Self {
        Self::Decode {
            column: column.to_owned(),
            row,
            detail: detail.into(),
        }
    }

    pub(crate) fn unsupported(column: &str, detail: impl Into<String>) -> Self {
        Self::UnsupportedType {
            column: column.to_owned(),
            detail: detail.into(),
        }
    }
}

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> Self {
        let message = err.to_string();
        match err {
            CoreError::InvalidValue { .. } | CoreError::InvalidArgument(_) => {
                InvalidValueError::new_err(message)
            }
            CoreError::Decode { .. } => DecodeError::new_err(message),
            CoreError::UnsupportedType { .. } => UnsupportedTypeError::new_err(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_column_and_row() {
        let e = CoreError::invalid("driver_id", 3, "null is not allowed in an entity key");
        assert_eq!(
            e.to_string(),
            "column 'driver_id' row 3: null is not allowed in an entity key"
        );
        let e = CoreError::decode("", 0, "truncated varint");
        assert_eq!(e.to_string(), "row 0: truncated varint");
        let e = CoreError::unsupported("f", "Arrow type float64 cannot be encoded as STRING");
        assert_eq!(
            e.to_string(),
            "column 'f': Arrow type float64 cannot be encoded as STRING"
        );
    }
}
