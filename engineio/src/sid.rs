//! Session ids: 20 URL-safe characters from a CSPRNG (CVE-2017-16031 was guessable ids).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A fresh id (sessions, Socket.IO sockets), the same length and alphabet as Node's (`base64id`).
pub fn generate() -> String {
    let mut bytes = [0u8; 15];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_20_url_safe_chars_and_distinct() {
        let a = super::generate();
        assert_eq!(a.len(), 20);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(a, super::generate());
    }
}
