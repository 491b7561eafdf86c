//! Password material as AD keeps and receives it: the NT hash (MD4 over UTF-16LE), and
//! unicodePwd values (the password in double quotes, UTF-16LE encoded).

use md4::{Digest, Md4};

use crate::error::{AdError, ResultCode};

pub fn nt_hash(password: &str) -> [u8; 16] {
    let utf16: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    Md4::digest(&utf16).into()
}

/// Encodes a password as a unicodePwd value: `"password"` in UTF-16LE.
pub fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"").encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Decodes a unicodePwd value. AD refuses anything that is not quoted UTF-16LE.
pub fn decode_unicode_pwd(v: &[u8]) -> Result<String, AdError> {
    let refuse =
        || AdError::new(ResultCode::ConstraintViolation, "0000202F: setup_io: it's not allowed to set the NT hash password directly'");
    if v.len() < 4 || !v.len().is_multiple_of(2) {
        return Err(refuse());
    }
    let units: Vec<u16> = v.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    let s = String::from_utf16(&units).map_err(|_| refuse())?;
    s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).map(str::to_string).ok_or_else(refuse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nt_hash_known_value() {
        // The NT hash of "password", as published in countless references.
        let h = nt_hash("password");
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "8846f7eaee8fb117ad06bdd830b7586c");
    }

    #[test]
    fn unicode_pwd_round_trip_and_refusals() {
        let v = unicode_pwd("Blue-Harbor-73");
        assert_eq!(&v[..4], &[b'"', 0, b'B', 0]);
        assert_eq!(decode_unicode_pwd(&v).unwrap(), "Blue-Harbor-73");
        let unquoted: Vec<u8> = "secret".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(decode_unicode_pwd(&unquoted).unwrap_err().code, ResultCode::ConstraintViolation);
        assert!(decode_unicode_pwd(b"\"odd\"").is_err());
    }
}
