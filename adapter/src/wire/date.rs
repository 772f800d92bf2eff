//! JavaScript dates on the wire: msgpack timestamps from notepack 3, notepack 2's millisecond
//! form, and the `Date.toString()` text of `handshake.time` (wire notes 2.3, 3.3).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use socketio::Value;

/// Replaces every date inside `value` by the ISO-8601 string (`2024-01-02T03:04:05.678Z`) a
/// Node receiver's clients see after socket.io-parser's JSON encoding (`Date.toJSON`).
///
/// Dates are the msgpack timestamp extension (type −1, notepack 3: 4, 8 or 12 bytes) and
/// notepack 2's `d7 00` + 8-byte big-endian milliseconds (wire notes 2.3). Other extension
/// values are left as they are. Recursive: decoded values are at most 127 levels deep.
pub fn normalize_dates(value: &mut Value) {
    match value {
        Value::Ext(ty, data) => {
            if let Some(ms) = ext_millis(*ty, data) {
                *value = Value::from(iso_string(ms));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_dates),
        Value::Map(entries) => entries.iter_mut().for_each(|(_, v)| normalize_dates(v)),
        _ => {}
    }
}

/// Milliseconds since the epoch of a date extension value.
fn ext_millis(ty: i8, data: &[u8]) -> Option<i64> {
    match (ty, data.len()) {
        // notepack 2: fixext 8, type 0, big-endian milliseconds.
        (0, 8) => Some(i64::from_be_bytes(data.try_into().ok()?)),
        // timestamp 32: seconds.
        (-1, 4) => Some(i64::from(u32::from_be_bytes(data.try_into().ok()?)) * 1000),
        // timestamp 64: 30-bit nanoseconds, 34-bit seconds.
        (-1, 8) => {
            let n = u64::from_be_bytes(data.try_into().ok()?);
            let nanos = i64::try_from(n >> 34).ok()?;
            let secs = i64::try_from(n & ((1 << 34) - 1)).ok()?;
            Some(secs * 1000 + nanos / 1_000_000)
        }
        // timestamp 96: 32-bit nanoseconds, 64-bit signed seconds.
        (-1, 12) => {
            let nanos = i64::from(u32::from_be_bytes(data.get(..4)?.try_into().ok()?));
            let secs = i64::from_be_bytes(data.get(4..)?.try_into().ok()?);
            secs.checked_mul(1000)?.checked_add(nanos / 1_000_000)
        }
        _ => None,
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// `Date.prototype.toISOString` of `ms` since the epoch.
pub(crate) fn iso_string(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else if y < 0 {
        format!("-{:06}", -y)
    } else {
        format!("+{y:06}")
    };
    format!(
        "{year}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// `Date.prototype.toString` in UTC, as a Node process with `TZ=UTC` prints `handshake.time`:
/// `Sat Nov 28 2026 08:21:15 GMT+0000 (Coordinated Universal Time)`.
pub(crate) fn js_date_string(time: SystemTime) -> String {
    let secs = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX / 2),
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = WEEKDAYS[usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0)];
    let month = MONTHS[usize::try_from(m - 1).unwrap_or(0)];
    format!(
        "{weekday} {month} {d:02} {y:04} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Reads the `Date.toString()` text another node sent (any time zone offset). `None` when it
/// does not have that shape.
pub(crate) fn parse_js_date_string(text: &str) -> Option<SystemTime> {
    let mut parts = text.split_ascii_whitespace();
    let _weekday = parts.next()?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)?;
    let day: i64 = parts.next()?.parse().ok()?;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(str::parse::<i64>);
    let (h, mi, s) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    let zone = parts.next()?.strip_prefix("GMT")?;
    let (sign, digits) = match zone.as_bytes().first()? {
        b'+' => (1, zone.get(1..)?),
        b'-' => (-1, zone.get(1..)?),
        _ => return None,
    };
    if digits.len() != 4 || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let offset_h: i64 = digits.get(..2)?.parse().ok()?;
    let offset_m: i64 = digits.get(2..)?.parse().ok()?;
    let month = i64::try_from(month).ok()? + 1;
    let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + s
        - sign * (offset_h * 3600 + offset_m * 60);
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_strings() {
        assert_eq!(iso_string(1_704_164_645_678), "2024-01-02T03:04:05.678Z");
        assert_eq!(iso_string(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_string(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn timestamps_become_iso_strings() {
        let mut v = Value::Array(vec![
            Value::Ext(-1, vec![0xa1, 0xa5, 0xd6, 0x00, 0x65, 0x93, 0x7d, 0x25]),
            Value::Ext(0, vec![0, 0, 0x01, 0x8c, 0xc8, 0x20, 0xdb, 0x2e]),
            Value::Ext(-1, vec![0x65, 0x93, 0x7d, 0x25]),
            Value::Ext(5, vec![1]),
        ]);
        normalize_dates(&mut v);
        assert_eq!(
            v,
            Value::Array(vec![
                "2024-01-02T03:04:05.678Z".into(),
                "2024-01-02T03:04:05.678Z".into(),
                "2024-01-02T03:04:05.000Z".into(),
                Value::Ext(5, vec![1]),
            ])
        );
    }

    #[test]
    fn js_date_strings_round_trip() {
        let text = "Sat Nov 28 2026 08:21:15 GMT+0000 (Coordinated Universal Time)";
        let t = parse_js_date_string(text).unwrap();
        assert_eq!(js_date_string(t), text);
        let paris = parse_js_date_string(
            "Sat Nov 28 2026 09:21:15 GMT+0100 (Central European Standard Time)",
        )
        .unwrap();
        assert_eq!(paris, t);
        assert_eq!(parse_js_date_string("yesterday"), None);
    }
}
