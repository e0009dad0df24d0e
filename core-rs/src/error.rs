//! `CoreError`: every failure of a kernel, with the column and row it concerns.
//!
//! The kernels return it; the one `impl From<CoreError> for PyErr` below maps each variant to its
//! own Python class (declared here with `create_exception!`, registered in `lib.rs`).
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::PyErr;

create_exception!(
    repast._core,
    RepastError,
    PyException,
    "Base class of every Repast error."
);
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
    /// The inputs of one view's point-in-time join do not fit together (row or key counts,
    /// ttl, buffers). `view` is empty until the binding names it ([`CoreError::in_view`]).
    #[error("{}{detail}", view_prefix(.view))]
    Join { view: String, detail: String },
    /// A join key is int64 on one side and string/binary on the other.
    #[error("{}{detail}", view_prefix(.view))]
    JoinKeyKind { view: String, detail: String },
}

fn view_prefix(view: &str) -> String {
    if view.is_empty() {
        String::new()
    } else {
        format!("feature view '{view}': ")
    }
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

    pub(crate) fn join(detail: impl Into<String>) -> Self {
        Self::Join {
            view: String::new(),
            detail: detail.into(),
        }
    }

    pub(crate) fn join_key_kind(detail: impl Into<String>) -> Self {
        Self::JoinKeyKind {
            view: String::new(),
            detail: detail.into(),
        }
    }

    /// A join error of the feature view `name` (other errors are returned as they are).
    #[must_use]
    pub fn in_view(self, name: &str) -> Self {
        match self {
            Self::Join { detail, .. } => Self::Join {
                view: name.to_owned(),
                detail,
            },
            Self::JoinKeyKind { detail, .. } => Self::JoinKeyKind {
                view: name.to_owned(),
                detail,
            },
            other => other,
        }
    }
}

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> Self {
        let message = err.to_string();
        match err {
            CoreError::InvalidValue { .. }
            | CoreError::InvalidArgument(_)
            | CoreError::Join { .. } => InvalidValueError::new_err(message),
            CoreError::Decode { .. } => DecodeError::new_err(message),
            CoreError::UnsupportedType { .. } | CoreError::JoinKeyKind { .. } => {
                UnsupportedTypeError::new_err(message)
            }
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

    #[test]
    fn join_errors_name_the_view_once_it_is_known() {
        let e = CoreError::join("entity column 'k' has 2 rows, expected 3");
        assert_eq!(e.to_string(), "entity column 'k' has 2 rows, expected 3");
        assert_eq!(
            e.in_view("v").to_string(),
            "feature view 'v': entity column 'k' has 2 rows, expected 3"
        );
        let e = CoreError::join_key_kind("join key 'a' is int64 ...").in_view("v");
        assert!(matches!(e, CoreError::JoinKeyKind { .. }));
        assert_eq!(e.to_string(), "feature view 'v': join key 'a' is int64 ...");
        let e = CoreError::unsupported("c", "x").in_view("v");
        assert_eq!(e.to_string(), "column 'c': x");
    }
}
