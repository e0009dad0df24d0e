//! ISO 8601 timestamps to microseconds since the epoch, for the small-write path
//! (`small_write.rs`): a strict subset of what Arrow's string-to-timestamp cast accepts, with
//! the same result on every string in it. A string outside the subset is not an error here:
//! the caller hands the whole write to the Arrow path, which parses or rejects it.
//!
//! Subset: `YYYY-MM-DD`, `T` or a space, `HH:MM:SS`, optionally `.` and 1 to 6 digits, then
//! optionally `Z` or `+HH:MM` / `-HH:MM`. Years 0001-9999, real calendar days, no leap second.

/// A parsed timestamp: microseconds since the epoch in UTC, and whether the string named its
/// zone (Arrow parses zoned and naive strings in different calls, so a column must not mix
/// them; a naive time is UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub micros: i64,
    pub zoned: bool,
}

fn digits(bytes: &[u8]) -> Option<i64> {
    let mut value = 0i64;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(b - b'0');
    }
    Some(value)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The timestamp, or None when `text` is outside the subset (or not a real time).
pub fn parse(text: &str) -> Option<Parsed> {
    let s = text.as_bytes();
    if s.len() < 19 || s[4] != b'-' || s[7] != b'-' || s[13] != b':' || s[16] != b':' {
        return None;
    }
    if s[10] != b'T' && s[10] != b' ' {
        return None;
    }
    let year = digits(&s[0..4])?;
    let month = digits(&s[5..7])?;
    let day = digits(&s[8..10])?;
    let hour = digits(&s[11..13])?;
    let minute = digits(&s[14..16])?;
    let second = digits(&s[17..19])?;
    if year < 1
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut fraction = 0i64;
    if let Some((b'.', tail)) = rest.split_first() {
        let n = tail.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 || n > 6 {
            return None;
        }
        fraction = digits(&tail[..n])? * 10i64.pow(6 - n as u32);
        rest = &tail[n..];
    }
    let (offset_seconds, zoned) = match rest {
        [] => (0, false),
        [b'Z'] => (0, true),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2])?;
            let minutes = digits(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            (if *sign == b'+' { seconds } else { -seconds }, true)
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    Some(Parsed {
        micros: seconds * 1_000_000 + fraction,
        zoned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(text: &str) -> Option<i64> {
        parse(text).map(|p| p.micros)
    }

    #[test]
    fn parses_utc_and_offsets_as_arrow_does() {
        // Expected values: pyarrow 26, `pa.array([s]).cast(pa.timestamp("us", tz="UTC"))`.
        assert_eq!(micros("2025-01-01T00:00:00Z"), Some(1_735_689_600_000_000));
        assert_eq!(micros("2025-01-01 00:00:00Z"), Some(1_735_689_600_000_000));
        assert_eq!(
            micros("2025-01-01T00:00:00.5Z"),
            Some(1_735_689_600_500_000)
        );
        assert_eq!(
            micros("2025-01-01T00:00:00+02:00"),
            Some(1_735_682_400_000_000)
        );
        assert_eq!(
            micros("2025-01-01T00:00:00-00:30"),
            Some(1_735_691_400_000_000)
        );
        assert_eq!(
            micros("2024-02-29T12:00:00+23:59"),
            Some(1_709_121_660_000_000)
        );
        assert_eq!(micros("1969-12-31T23:59:59.5Z"), Some(-500_000));
        assert_eq!(
            micros("0001-01-01T00:00:00Z"),
            Some(-62_135_596_800_000_000)
        );
        assert_eq!(
            micros("9999-12-31T23:59:59.999999Z"),
            Some(253_402_300_799_999_999)
        );
    }

    #[test]
    fn tells_naive_from_zoned() {
        let naive = parse("2025-01-01T00:00:00").unwrap();
        assert_eq!(naive.micros, 1_735_689_600_000_000);
        assert!(!naive.zoned);
        assert!(parse("2025-01-01T00:00:00Z").unwrap().zoned);
        assert!(parse("2025-01-01T00:00:00+00:00").unwrap().zoned);
    }

    #[test]
    fn leaves_everything_else_to_arrow() {
        for text in [
            "",
            "2025-01-01",
            "2025-01-01T00:00Z",
            "2025-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-01-01T24:00:00Z",
            "2025-01-01T00:00:60Z",
            "2025-01-01t00:00:00z",
            "2025-01-01T00:00:00.Z",
            "2025-01-01T00:00:00.1234567Z",
            "2025-01-01T00:00:00+0200",
            "2025-01-01T00:00:00+02",
            "2025-01-01T00:00:00+24:00",
            "2025-01-01T00:00:00 Z",
            "0000-01-01T00:00:00Z",
            "+2025-01-01T00:00:00Z",
            "2025-01-01T00:00:00Z ",
            "2025-0a-01T00:00:00Z",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }
}
