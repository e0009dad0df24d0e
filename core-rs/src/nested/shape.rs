//! Whether a nested value has the shape its Feast type and declared Arrow type ask for: a MAP
//! is an object, a STRUCT an object with exactly its declared fields of their declared kinds,
//! the list types lists of those.
use arrow::datatypes::DataType;

use super::node::{leaf_of, Leaf, Node};
use super::Nested;

pub(super) fn check(
    node: &Node,
    nested: Nested,
    declared: Option<&DataType>,
) -> Result<(), String> {
    match nested {
        Nested::Map => object(node).map(|_| ()),
        Nested::ScalarMap => match node {
            Node::ScalarMap(_) => Ok(()),
            other => Err(format!("{} is not a map with typed keys", other.kind())),
        },
        Nested::Struct => conforms(node, declared.unwrap_or(&DataType::Null), "")
            .and_then(|()| object(node).map(|_| ())),
        Nested::MapList | Nested::StructList => {
            let element = declared.and_then(element_type);
            for (i, item) in list(node)?.iter().enumerate() {
                if item == &Node::Null {
                    return Err(format!("element {i} is null; a list of maps holds maps"));
                }
                object(item).map_err(|e| format!("element {i}: {e}"))?;
                if let Some(t) = element {
                    conforms(item, t, &format!("[{i}]"))?;
                }
            }
            Ok(())
        }
        Nested::ValueList | Nested::ValueSet => {
            for (i, item) in list(node)?.iter().enumerate() {
                if !matches!(item, Node::List(..) | Node::Null) {
                    return Err(format!("element {i} is {}; expected a list", item.kind()));
                }
            }
            match declared {
                Some(t) => conforms(node, t, ""),
                None => Ok(()),
            }
        }
    }
}

fn object(node: &Node) -> Result<&[(String, Node)], String> {
    match node {
        Node::Object(entries) => Ok(entries),
        Node::ScalarMap(_) => Err(
            "map keys are not strings: a Map has string keys (declare the feature ScalarMap \
             for int, float or bool keys)"
                .to_owned(),
        ),
        other => Err(format!("{} is not an object", other.kind())),
    }
}

fn list(node: &Node) -> Result<&[Node], String> {
    match node {
        Node::List(items, _) => Ok(items),
        other => Err(format!("{} is not a list", other.kind())),
    }
}

fn element_type(t: &DataType) -> Option<&DataType> {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            Some(f.data_type())
        }
        _ => None,
    }
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("at {path}: ")
    }
}

/// Whether `node` fits the declared Arrow type (`Null` declares nothing). Nulls fit anything.
fn conforms(node: &Node, t: &DataType, path: &str) -> Result<(), String> {
    if *node == Node::Null {
        return Ok(());
    }
    match t {
        DataType::Null => Ok(()),
        DataType::Struct(fields) => {
            let entries = object(node).map_err(|e| format!("{}{e}", at(path)))?;
            for field in fields {
                if !entries.iter().any(|(k, _)| k == field.name()) {
                    return Err(format!(
                        "{}missing declared field '{}'",
                        at(path),
                        field.name()
                    ));
                }
            }
            for (key, value) in entries {
                let Some(field) = fields.iter().find(|f| f.name() == key) else {
                    return Err(format!("{}field '{key}' is not declared", at(path)));
                };
                conforms(value, field.data_type(), &format!("{path}.{key}"))?;
            }
            Ok(())
        }
        // A Map's values are untyped in Feast; only its being an object is checked.
        DataType::Map(..) => object(node)
            .map(|_| ())
            .map_err(|e| format!("{}{e}", at(path))),
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            let element = element_type(t).expect("a list type");
            for (i, item) in list(node)
                .map_err(|e| format!("{}{e}", at(path)))?
                .iter()
                .enumerate()
            {
                conforms(item, element, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        other => {
            let Some(leaf) = leaf_of(other) else {
                return Ok(());
            };
            let fits = matches!(
                (leaf, node),
                (Leaf::Bool, Node::Bool(_))
                    | (Leaf::Int, Node::Int(_))
                    | (Leaf::Float, Node::Float(_) | Node::Int(_))
                    | (Leaf::Str, Node::Str(_))
                    | (Leaf::Bytes, Node::Bytes(_))
                    | (Leaf::Time, Node::Time(_) | Node::Int(_))
            );
            if fits {
                Ok(())
            } else {
                Err(format!(
                    "{}{} where {other} is declared",
                    at(path),
                    node.kind()
                ))
            }
        }
    }
}
