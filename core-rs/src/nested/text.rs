//! The text forms Feast stores UUIDs and decimals in, checked as Python's `uuid.UUID` and
//! `decimal.Decimal` parse them (Feast's SDK calls those on every read, so text they refuse
//! would make every later read of the entity fail).

/// Whether `text` is JSON (any value; integers of any size), as Feast checks a JSON feature's
/// text with `json.loads` before storing it.
pub fn is_json(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

/// Python's whitespace (`str.isspace`), which `int()` and `Decimal()` strip.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Whether `text` is a UUID as `uuid.UUID(text)` accepts it: `urn:` and `uuid:` removed,
/// braces stripped from the ends, hyphens removed, then 32 characters that `int(_, 16)` reads
/// (ASCII only: Python also takes other scripts' digits, which no UUID holds).
pub fn is_uuid(text: &str) -> bool {
    let s = text.replace("urn:", "").replace("uuid:", "");
    let s: String = s
        .trim_matches(|c| c == '{' || c == '}')
        .chars()
        .filter(|&c| c != '-')
        .collect();
    s.chars().count() == 32 && python_hex_int(&s)
}

/// The text `str(uuid.UUID(text))` gives (lower-case, hyphenated), or `None` where
/// `uuid.UUID` refuses `text` (see [`is_uuid`]; a negative value is out of its range).
pub fn uuid_text(text: &str) -> Option<String> {
    if !is_uuid(text) {
        return None;
    }
    let s = text.replace("urn:", "").replace("uuid:", "");
    let s = s
        .trim_matches(|c| c == '{' || c == '}')
        .trim_matches(py_space);
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let digits: String = s.chars().filter(|&c| c != '_' && c != '-').collect();
    let value = u128::from_str_radix(&digits, 16).ok()?;
    if negative && value != 0 {
        return None;
    }
    Some(uuid_of(value))
}

/// A UUID's 128 bits as `str(uuid.UUID(int=value))` writes them.
pub fn uuid_of(value: u128) -> String {
    let hex = format!("{value:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `int(s, 16)`'s grammar: whitespace around, a sign, an optional `0x`, hex digits with single
/// underscores between them (one may follow the prefix).
fn python_hex_int(s: &str) -> bool {
    let t = s.trim_matches(py_space);
    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (digits, after_prefix) = match t.get(..2) {
        Some("0x" | "0X") => (&t[2..], true),
        _ => (t, false),
    };
    let body = if after_prefix {
        digits.strip_prefix('_').unwrap_or(digits)
    } else {
        digits
    };
    !body.is_empty()
        && !body.starts_with('_')
        && !body.ends_with('_')
        && !body.contains("__")
        && body.bytes().all(|b| b.is_ascii_hexdigit() || b == b'_')
}

/// Whether `text` parses as a `decimal.Decimal`: whitespace around and every underscore are
/// dropped (as `CPython`'s decimal does), then an optional sign and digits with an optional point
/// and exponent, or `Inf`/`Infinity`/`NaN`/`sNaN` (any case; NaN with diagnostic digits). ASCII
/// digits only.
pub fn is_decimal(text: &str) -> bool {
    let s: String = text
        .trim_matches(py_space)
        .chars()
        .filter(|&c| c != '_')
        .collect();
    let s = s.strip_prefix(['+', '-']).unwrap_or(&s);
    let lower = s.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return true;
    }
    for nan in ["snan", "nan"] {
        if let Some(rest) = lower.strip_prefix(nan) {
            return rest.bytes().all(|b| b.is_ascii_digit());
        }
    }
    let (mantissa, exponent) = match lower.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (lower.as_str(), None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, f),
        None => (mantissa, ""),
    };
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty()) && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_as_python_takes_it() {
        for ok in [
            "1",
            "null",
            r#"{"a": [1, 2.5e3]}"#,
            "123456789012345678901234567890",
            " [] ",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in ["", "{", "[1,]", "nan", "{'a': 1}", "1 2"] {
            assert!(!is_json(bad), "{bad}");
        }
    }

    #[test]
    fn uuid_text_is_pythons_str() {
        let canonical = "6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c";
        for given in [
            canonical,
            "6F1C1C1E8A3B4C4F9D550C8F5D9A1B2C",
            "{6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c}",
            "urn:uuid:6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c",
        ] {
            assert_eq!(uuid_text(given).as_deref(), Some(canonical), "{given}");
        }
        assert_eq!(uuid_text("not-a-uuid"), None);
        assert_eq!(uuid_text("6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2"), None);
    }

    #[test]
    fn uuids_as_python_takes_them() {
        for ok in [
            "6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c",
            "6F1C1C1E8A3B4C4F9D550C8F5D9A1B2C",
            "{6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c}",
            "urn:uuid:6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2c",
        ] {
            assert!(is_uuid(ok), "{ok}");
        }
        for bad in [
            "",
            "6f1c1c1e",
            "6f1c1c1e-8a3b-4c4f-9d55-0c8f5d9a1b2g",
            "not-a-uuid",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
    }

    #[test]
    fn decimals_as_python_takes_them() {
        for ok in [
            "1", "-1.50", " 3.14 ", ".5", "5.", "1e10", "1E-3", "1_000.5", "NaN", "-Inf",
        ] {
            assert!(is_decimal(ok), "{ok}");
        }
        // CPython drops every underscore before parsing.
        for ok in [
            "sNaN12", "Infinity", "+0", "1_", "_1", "1__0", "n_an", "1e+_1",
        ] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in [
            "", ".", "_", "1.2.3", "abc", "1e", "1e_", "0x10", "e5", "infinit",
        ] {
            assert!(!is_decimal(bad), "{bad}");
        }
    }
}
