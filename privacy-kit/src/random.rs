//! Randomness from the operating system.

use crate::error::{Error, ErrorKind, Result};

/// Fills `buf` from the operating system's random number generator.
pub(crate) fn fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| {
        Error::new(
            ErrorKind::Random,
            format!("the operating system's random number generator failed: {e}"),
        )
    })
}

const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// An alphanumeric code of `len` characters with 5 bits of entropy per character (no 0/O, 1/I).
pub(crate) fn code(len: usize) -> Result<String> {
    let mut bytes = vec![0u8; len];
    fill(&mut bytes)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(CODE_ALPHABET[usize::from(b & 31)]))
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_are_alphanumeric_and_differ() {
        let a = super::code(24).unwrap();
        let b = super::code(24).unwrap();
        assert_eq!(a.len(), 24);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
