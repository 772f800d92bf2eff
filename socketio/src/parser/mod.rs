//! Socket.IO packet codecs: the default text parser ([`json`], socket.io-parser compatible) and
//! the msgpack parser ([`msgpack`], socket.io-msgpack-parser compatible). Both are pure: no I/O,
//! no panics on any input, linear time, bounded nesting.

pub mod json;
pub mod msgpack;

/// Whether a number read from the wire is a JS integer (`Number.isInteger`) and, if so, its
/// value when it is a non-negative safe integer (`0..=2^53-1`).
///
/// `Some(None)`: an integer but negative or too large; `None`: not an integer at all.
pub(crate) fn js_safe_uint(value: &crate::Value) -> Option<Option<u64>> {
    use crate::Value;
    use crate::packet::MAX_ACK_ID;
    match value {
        Value::Integer(n) => Some(n.as_u64().filter(|&n| n <= MAX_ACK_ID)),
        Value::F32(f) => float_uint(f64::from(*f)),
        Value::F64(f) => float_uint(*f),
        _ => None,
    }
}

fn float_uint(f: f64) -> Option<Option<u64>> {
    // Number.isInteger: finite and without fraction. -0 counts as 0.
    if !f.is_finite() || f.fract() != 0.0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let max = crate::packet::MAX_ACK_ID as f64;
    if (0.0..=max).contains(&f) {
        // In range and integral: the cast is exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(Some(f as u64))
    } else {
        Some(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    #[test]
    fn safe_uint() {
        assert_eq!(js_safe_uint(&Value::from(5)), Some(Some(5)));
        assert_eq!(js_safe_uint(&Value::from(-5)), Some(None));
        assert_eq!(js_safe_uint(&Value::from(1u64 << 53)), Some(None));
        assert_eq!(
            js_safe_uint(&Value::from((1u64 << 53) - 1)),
            Some(Some((1 << 53) - 1))
        );
        assert_eq!(js_safe_uint(&Value::F64(2.0)), Some(Some(2)));
        assert_eq!(js_safe_uint(&Value::F64(-0.0)), Some(Some(0)));
        assert_eq!(js_safe_uint(&Value::F64(-1.0)), Some(None));
        assert_eq!(js_safe_uint(&Value::F64(1e300)), Some(None));
        assert_eq!(js_safe_uint(&Value::F64(1.5)), None);
        assert_eq!(js_safe_uint(&Value::F64(f64::NAN)), None);
        assert_eq!(js_safe_uint(&Value::F32(3.0)), Some(Some(3)));
        assert_eq!(js_safe_uint(&Value::from("1")), None);
    }
}
