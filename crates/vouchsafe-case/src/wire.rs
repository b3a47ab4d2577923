//! The writer helpers of the canonical encodings, the reading helpers on top of `vouchsafe_wire::Reader`, and
//! the text rules every format shares. Nothing here panics.

pub(crate) use vouchsafe_wire::Reader;

use crate::error::{DecodeReason, Error, Result, invalid};

/// Appends `u32 LE length ‖ bytes`. Callers validated the length (every limit of this crate is far below 2³²).
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends a `u32 LE` count. Callers validated it.
pub(crate) fn put_count(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

/// Appends a bool as `0x00` / `0x01`.
pub(crate) fn put_bool(out: &mut Vec<u8>, b: bool) {
    out.push(u8::from(b));
}

/// Reads a `u32 LE` length and that many bytes.
pub(crate) fn bytes<'a>(r: &mut Reader<'a>) -> Result<&'a [u8]> {
    let n = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
    Ok(r.take(n)?)
}

/// Reads a `u32 LE`-prefixed UTF-8 string (its other rules are checked by the type's `validate`).
pub(crate) fn string(r: &mut Reader<'_>, field: &'static str) -> Result<String> {
    let b = bytes(r)?;
    core::str::from_utf8(b).map(str::to_owned).map_err(|_| invalid(field, "not UTF-8"))
}

/// Reads a `u32 LE` count, refusing one above `max` before anything is allocated for it.
pub(crate) fn count(r: &mut Reader<'_>, field: &'static str, max: usize, reason: &'static str) -> Result<usize> {
    let n = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
    if n > max {
        return Err(invalid(field, reason));
    }
    Ok(n)
}

/// Reads a bool: `0x00` or `0x01`, any other byte refused.
pub(crate) fn boolean(r: &mut Reader<'_>, what: &'static str) -> Result<bool> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        got => Err(Error::Decode { what, reason: DecodeReason::UnknownTag { got } }),
    }
}

/// Refuses an input longer than `max` before reading it.
pub(crate) fn check_size(what: &'static str, bytes: &[u8], max: usize) -> Result<()> {
    if bytes.len() > max {
        return Err(Error::Decode { what, reason: DecodeReason::TooLarge { max, got: bytes.len() } });
    }
    Ok(())
}

/// A tag byte that v1 does not define.
pub(crate) fn unknown_tag(what: &'static str, got: u8) -> Error {
    Error::Decode { what, reason: DecodeReason::UnknownTag { got } }
}

/// A provider or reviewer name: 1..=[`crate::MAX_NAME`] bytes of `[A-Za-z0-9._@-]`.
pub(crate) fn check_name(field: &'static str, s: &str) -> Result<()> {
    if s.is_empty() || s.len() > crate::MAX_NAME {
        return Err(invalid(field, "must be 1..=64 bytes"));
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-')) {
        return Err(invalid(field, "may hold only A-Z a-z 0-9 . _ @ -"));
    }
    Ok(())
}

/// An account reference: 1..=[`crate::MAX_ACCOUNT`] bytes of UTF-8 without control characters (Unicode `Cc`).
pub(crate) fn check_account(s: &str) -> Result<()> {
    if s.is_empty() || s.len() > crate::MAX_ACCOUNT {
        return Err(invalid("account", "must be 1..=256 bytes"));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid("account", "must not contain control characters"));
    }
    Ok(())
}

/// Free text: at most [`crate::MAX_TEXT`] bytes of UTF-8 (at least one if `required`), no control characters
/// (Unicode `Cc`) except tab, line feed and carriage return, so that no text can carry terminal escapes into a
/// reviewer's or analyst's console.
pub(crate) fn check_text(field: &'static str, s: &str, required: bool) -> Result<()> {
    if s.len() > crate::MAX_TEXT {
        return Err(invalid(field, "longer than 4000 bytes"));
    }
    if required && s.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if s.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
        return Err(invalid(field, "must not contain control characters other than tab, LF, CR"));
    }
    Ok(())
}

/// `label ‖ body`, the Ed25519 signature input of every signed statement of this crate.
pub(crate) fn signature_input(label: &[u8], body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(label.len().saturating_add(body.len()));
    m.extend_from_slice(label);
    m.extend_from_slice(body);
    m
}
