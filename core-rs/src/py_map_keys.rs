//! Python dicts headed for a `SCALAR_MAP` feature, their keys made JSON-able: a dict whose keys
//! are all ints, floats or bools (or strings, which the writer refuses with its own message)
//! is passed on as it is; one with a bytes, `uuid.UUID`, `decimal.Decimal` or `datetime` key
//! becomes a list of `[key, value]` pairs with those keys tagged as the stored form tags them
//! (`nested::node::Key`). orjson then serializes the whole list at once. This walks Python
//! objects, so it holds the GIL; it is one pass in Rust instead of a Python loop per row.
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyList, PyString};

use crate::error::InvalidValueError;
use crate::nested::text;

/// `uuid.UUID`, `decimal.Decimal`, `datetime.datetime` and `datetime.timezone.utc`.
struct Classes {
    uuid: Py<PyAny>,
    decimal: Py<PyAny>,
    datetime: Py<PyAny>,
    utc: Py<PyAny>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || {
        let datetime = py.import("datetime")?;
        Ok(Classes {
            uuid: py.import("uuid")?.getattr("UUID")?.unbind(),
            decimal: py.import("decimal")?.getattr("Decimal")?.unbind(),
            datetime: datetime.getattr("datetime")?.unbind(),
            utc: datetime.getattr("timezone")?.getattr("utc")?.unbind(),
        })
    })
}

/// What a dict key becomes.
enum KeyForm<'py> {
    /// Kept as it is: an int, float or bool (orjson writes its JSON text), or a string (refused
    /// later by the writer, which names why).
    Kept,
    /// A `{tag: value}` object.
    Tagged(&'static str, Bound<'py, PyAny>),
}

fn key_form<'py>(key: &Bound<'py, PyAny>, c: &Classes) -> PyResult<Option<KeyForm<'py>>> {
    let py = key.py();
    if key.is_instance_of::<PyInt>() || key.is_instance_of::<PyFloat>() {
        return Ok(Some(KeyForm::Kept)); // bool is an int subclass
    }
    if key.is_instance_of::<PyString>() {
        return Ok(Some(KeyForm::Kept));
    }
    if let Ok(bytes) = key.cast::<PyBytes>() {
        let text = BASE64.encode(bytes.as_bytes());
        return Ok(Some(KeyForm::Tagged(
            "bytes",
            PyString::new(py, &text).into_any(),
        )));
    }
    if key.is_instance(c.uuid.bind(py))? {
        // `str(uuid)` runs Python code; its 128-bit `int` formats the same text here.
        let value: u128 = key.getattr("int")?.extract()?;
        let text = text::uuid_of(value);
        return Ok(Some(KeyForm::Tagged(
            "uuid",
            PyString::new(py, &text).into_any(),
        )));
    }
    if key.is_instance(c.decimal.bind(py))? {
        return Ok(Some(KeyForm::Tagged("decimal", key.str()?.into_any())));
    }
    if key.is_instance(c.datetime.bind(py))? {
        // Feast's `int(pd.Timestamp(key).timestamp())`: a naive key is UTC, then the whole
        // seconds truncated toward zero.
        let aware = if key.getattr("tzinfo")?.is_none() {
            let kwargs = PyDict::new(py);
            kwargs.set_item("tzinfo", c.utc.bind(py))?;
            key.call_method("replace", (), Some(&kwargs))?
        } else {
            key.clone()
        };
        let seconds: f64 = aware.call_method0("timestamp")?.extract()?;
        #[allow(clippy::cast_possible_truncation)] // epoch seconds fit in i64
        let whole = seconds.trunc() as i64;
        return Ok(Some(KeyForm::Tagged(
            "timestamp",
            whole.into_pyobject(py)?.into_any(),
        )));
    }
    Ok(None)
}

fn refused(column: &str, row: usize, key: &Bound<'_, PyAny>) -> PyErr {
    let type_name = key
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string());
    let shown = key
        .repr()
        .map_or_else(|_| "?".to_owned(), |r| r.to_string());
    InvalidValueError::new_err(format!(
        "column '{column}' row {row}: not a SCALAR_MAP value: key {shown} is of type \
         {type_name}; a SCALAR_MAP key is an int, float, bool, bytes, uuid.UUID, \
         decimal.Decimal or datetime (as in Feast)"
    ))
}

/// `values` with each dict that has a bytes, UUID, decimal or datetime key replaced by its
/// `[key, value]` pairs (those keys tagged); other items unchanged. A key of any other type
/// (a date, a tuple, None, a `numpy.datetime64`...) is refused naming the column and row.
#[pyfunction]
#[pyo3(signature = (values, column = ""))]
fn tag_scalar_map_keys<'py>(
    values: &Bound<'py, PyList>,
    column: &str,
) -> PyResult<Bound<'py, PyList>> {
    let py = values.py();
    let c = classes(py)?;
    let mut out: Vec<Bound<'py, PyAny>> = Vec::with_capacity(values.len());
    for (row, item) in values.iter().enumerate() {
        let Ok(dict) = item.cast::<PyDict>() else {
            out.push(item);
            continue;
        };
        let mut forms = Vec::with_capacity(dict.len());
        let mut tagged = false;
        for (key, _) in dict.iter() {
            let form = key_form(&key, c)?.ok_or_else(|| refused(column, row, &key))?;
            tagged |= matches!(form, KeyForm::Tagged(..));
            forms.push(form);
        }
        if !tagged {
            out.push(item);
            continue;
        }
        let mut pairs = Vec::with_capacity(forms.len());
        for ((key, value), form) in dict.iter().zip(forms) {
            let key = match form {
                KeyForm::Kept => key,
                KeyForm::Tagged(tag, text) => {
                    let object = PyDict::new(py);
                    object.set_item(tag, text)?;
                    object.into_any()
                }
            };
            pairs.push(PyList::new(py, [key, value])?);
        }
        out.push(PyList::new(py, pairs)?.into_any());
    }
    PyList::new(py, out)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tag_scalar_map_keys, m)?)?;
    Ok(())
}
