//! A `SCALAR_MAP` column's Python dicts, in and out: the one binding that works on Python
//! objects rather than Arrow buffers, so it holds the GIL; one pass in Rust instead of a Python
//! loop per row.
//!
//! In (`tag_scalar_map_keys`): a dict whose keys are all ints, floats or bools (or strings,
//! which the writer refuses with its own message) is passed on as it is; one with a bytes,
//! `uuid.UUID`, `decimal.Decimal` or `datetime` key becomes a list of `[key, value]` pairs with
//! those keys tagged as the stored form tags them (`nested::node::Key`). orjson then serializes
//! the whole list at once.
//!
//! Out (`scalar_map_objects`): the stored JSON text of each row as the dict Feast's SDK reads,
//! its keys typed.
use arrow::array::{make_array, Array, ArrayData};
use arrow::pyarrow::PyArrowType;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyList, PyString};

use crate::error::{DecodeError, InvalidValueError};
use crate::nested::node::{Key, Node};
use crate::nested::{self, text};

/// `uuid.UUID`, `decimal.Decimal`, `datetime.datetime`, `datetime.timezone.utc` and
/// `datetime.datetime.fromtimestamp`.
struct Classes {
    uuid: Py<PyAny>,
    decimal: Py<PyAny>,
    datetime: Py<PyAny>,
    utc: Py<PyAny>,
    from_timestamp: Py<PyAny>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

/// Python's cyclic collector paused while the walk allocates its (acyclic) pairs and tags, and
/// resumed when dropped, error or not: otherwise every few hundred allocations start a
/// collection, and the full ones traverse the whole heap (most of the walk's time on a column
/// of 200 000 dicts with a large heap beside it).
struct CollectorPaused<'py> {
    gc: Option<Bound<'py, PyModule>>,
}

impl<'py> CollectorPaused<'py> {
    fn new(py: Python<'py>) -> PyResult<Self> {
        let gc = py.import("gc")?;
        if !gc.call_method0("isenabled")?.is_truthy()? {
            return Ok(Self { gc: None });
        }
        gc.call_method0("disable")?;
        Ok(Self { gc: Some(gc) })
    }
}

impl Drop for CollectorPaused<'_> {
    fn drop(&mut self) {
        if let Some(gc) = &self.gc {
            // Re-enabling cannot fail short of interpreter shutdown; nothing to report then.
            let _ = gc.call_method0("enable");
        }
    }
}

fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || {
        let datetime = py.import("datetime")?;
        let class = datetime.getattr("datetime")?;
        Ok(Classes {
            uuid: py.import("uuid")?.getattr("UUID")?.unbind(),
            decimal: py.import("decimal")?.getattr("Decimal")?.unbind(),
            from_timestamp: class.getattr("fromtimestamp")?.unbind(),
            datetime: class.unbind(),
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
    let _paused = CollectorPaused::new(py)?;
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

/// A JSON value as Python objects (what `orjson.loads` gives).
fn node_object<'py>(c: &Classes, py: Python<'py>, node: &Node) -> PyResult<Bound<'py, PyAny>> {
    Ok(match node {
        Node::Null => py.None().into_bound(py),
        Node::Bool(v) => v.into_pyobject(py)?.to_owned().into_any(),
        Node::Int(v) | Node::Time(v) => v.into_pyobject(py)?.into_any(),
        Node::Float(v) => v.into_pyobject(py)?.into_any(),
        Node::Str(v) => PyString::new(py, v).into_any(),
        Node::Bytes(v) => PyBytes::new(py, v).into_any(),
        Node::List(items, _) => {
            let items = items
                .iter()
                .map(|item| node_object(c, py, item))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Node::Object(entries) => {
            let dict = PyDict::new(py);
            for (key, value) in entries {
                dict.set_item(key, node_object(c, py, value)?)?;
            }
            dict.into_any()
        }
        Node::ScalarMap(entries) => {
            let dict = PyDict::new(py);
            for (key, value) in entries {
                dict.set_item(key_object(c, py, key)?, node_object(c, py, value)?)?;
            }
            dict.into_any()
        }
    })
}

/// A key as Feast's SDK reads it back: a timestamp as a UTC datetime.
fn key_object<'py>(c: &Classes, py: Python<'py>, key: &Key) -> PyResult<Bound<'py, PyAny>> {
    Ok(match key {
        Key::Int(v) => v.into_pyobject(py)?.into_any(),
        Key::Float(v) => v.into_pyobject(py)?.into_any(),
        Key::Bool(v) => v.into_pyobject(py)?.to_owned().into_any(),
        Key::Bytes(v) => PyBytes::new(py, v).into_any(),
        Key::Uuid(t) => c.uuid.bind(py).call1((t,))?,
        Key::Decimal(t) => c.decimal.bind(py).call1((t,))?,
        Key::Time(v) => c.from_timestamp.bind(py).call1((v, c.utc.bind(py)))?,
    })
}

/// One stored cell as its dict: the object form's keys from their JSON text (text that is not
/// an int, float or bool stays a string key), the pair form's keys from their tags.
fn stored_object<'py>(
    c: &Classes,
    py: Python<'py>,
    text: &str,
) -> Result<Bound<'py, PyAny>, String> {
    let node = Node::from_json(text)?;
    let py_err = |e: PyErr| e.to_string();
    match node {
        Node::Object(entries) => {
            let dict = PyDict::new(py);
            for (key_text, value) in &entries {
                let key = match Node::from_json(key_text).ok().map(|k| Key::of(&k)) {
                    Some(Ok(key)) if key.is_number() => key_object(c, py, &key).map_err(py_err)?,
                    _ => PyString::new(py, key_text).into_any(),
                };
                let value = node_object(c, py, value).map_err(py_err)?;
                dict.set_item(key, value).map_err(py_err)?;
            }
            Ok(dict.into_any())
        }
        list @ Node::List(..) => {
            let map = crate::nested::node::scalar_map(list)?;
            node_object(c, py, &map).map_err(py_err)
        }
        other => node_object(c, py, &other).map_err(py_err),
    }
}

/// The Python values of a stored `SCALAR_MAP` column (JSON text; a `json` extension column's
/// storage): None for a null cell, else the dict with typed keys. Raises `DecodeError` naming
/// the row of text that is not a stored map.
#[pyfunction]
#[pyo3(signature = (array, column = ""))]
fn scalar_map_objects<'py>(
    py: Python<'py>,
    array: PyArrowType<ArrayData>,
    column: &str,
) -> PyResult<Bound<'py, PyList>> {
    let array = make_array(array.0);
    // An all-null column of any type reads as nulls; values are read from text only.
    if array.null_count() < array.len() && !nested::is_text(array.data_type()) {
        return Err(DecodeError::new_err(format!(
            "column '{column}': a stored SCALAR_MAP is text, not Arrow {}",
            array.data_type()
        )));
    }
    let c = classes(py)?;
    let _paused = CollectorPaused::new(py)?;
    let mut out = Vec::with_capacity(array.len());
    for i in 0..array.len() {
        if array.is_null(i) {
            out.push(py.None().into_bound(py));
            continue;
        }
        let value = stored_object(c, py, nested::text_at(array.as_ref(), i)).map_err(|e| {
            DecodeError::new_err(format!(
                "column '{column}' row {i}: not a stored SCALAR_MAP: {e}"
            ))
        })?;
        out.push(value);
    }
    PyList::new(py, out)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tag_scalar_map_keys, m)?)?;
    m.add_function(wrap_pyfunction!(scalar_map_objects, m)?)?;
    Ok(())
}
