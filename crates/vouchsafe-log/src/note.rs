//! C2SP signed notes (<https://c2sp.org/signed-note>): a text ending in a newline, a blank line, and one or more
//! lines `— <key name> base64(u32 key id ‖ signature)`. Parsing checks syntax only; which signatures count is
//! decided by whoever verifies ([`crate::CheckpointPolicy`], [`crate::Witness`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::error::{Error, Result};
use crate::labels::NOTE_SIGNATURE_PREFIX;

/// The largest note this crate parses or builds (64 KiB: a checkpoint with a hundred cosignatures is under 15).
pub const MAX_NOTE_BYTES: usize = 1 << 16;
/// The most signature lines a note may carry (the spec requires accepting at least 16; Go's `note` allows 100).
pub const MAX_NOTE_SIGNATURES: usize = 100;

/// Whether `name` is a valid key name: non-empty, no Unicode space, no `+` (signed-note §Format).
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// Decodes canonical standard base64 (RFC 4648 §4, padded); anything that does not re-encode identically is
/// refused, so every accepted note has exactly one encoding.
pub(crate) fn b64_decode(s: &str, what: &'static str) -> Result<Vec<u8>> {
    let bytes = B64.decode(s).map_err(|_| Error::Malformed { what })?;
    if B64.encode(&bytes) != s {
        return Err(Error::Malformed { what });
    }
    Ok(bytes)
}

pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// One signature line of a note: key name, key id, and the signature bytes after the id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    name: String,
    key_id: u32,
    signature: Vec<u8>,
}

impl NoteSignature {
    /// A signature line; refuses an invalid key name or an empty signature.
    pub fn new(name: &str, key_id: u32, signature: Vec<u8>) -> Result<NoteSignature> {
        if !is_valid_key_name(name) {
            return Err(Error::Misuse { what: "invalid key name" });
        }
        if signature.is_empty() {
            return Err(Error::Misuse { what: "empty signature" });
        }
        Ok(NoteSignature { name: name.to_owned(), key_id, signature })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 32-bit key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The signature bytes (after the key id).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The line, with its final newline.
    pub fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&self.signature);
        format!("{NOTE_SIGNATURE_PREFIX}{} {}\n", self.name, b64_encode(&raw))
    }

    /// Parses one signature line (without its final newline): syntax only, nothing is verified.
    pub fn parse_line(line: &str) -> Result<NoteSignature> {
        let what = "note signature line";
        let rest = line.strip_prefix(NOTE_SIGNATURE_PREFIX).ok_or(Error::Malformed { what })?;
        let (name, b64) = rest.split_once(' ').ok_or(Error::Malformed { what })?;
        if !is_valid_key_name(name) {
            return Err(Error::Malformed { what: "note signature key name" });
        }
        let raw = b64_decode(b64, "note signature base64")?;
        match raw.as_slice() {
            [a, b, c, d, sig @ ..] if !sig.is_empty() => Ok(NoteSignature {
                name: name.to_owned(),
                key_id: u32::from_be_bytes([*a, *b, *c, *d]),
                signature: sig.to_vec(),
            }),
            _ => Err(Error::Malformed { what: "note signature too short" }),
        }
    }
}

/// Checks the text rules: UTF-8 (implied by `&str`), ends with a newline, no control character but newline.
fn check_text(text: &str) -> Result<()> {
    if !text.ends_with('\n') {
        return Err(Error::Malformed { what: "note text must end with a newline" });
    }
    if text.chars().any(|c| c < '\u{20}' && c != '\n') {
        return Err(Error::Malformed { what: "note contains a control character" });
    }
    Ok(())
}

/// A signed note: its text and its signature lines (unverified until a verifier has checked them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// A note with no signatures yet; refuses text that breaks the signed-note rules.
    pub fn new(text: &str) -> Result<Note> {
        check_text(text)?;
        if text.len() > MAX_NOTE_BYTES {
            return Err(Error::Misuse { what: "note text over MAX_NOTE_BYTES" });
        }
        Ok(Note { text: text.to_owned(), signatures: Vec::new() })
    }

    /// Parses a signed note. Never panics; refuses anything over [`MAX_NOTE_BYTES`] or
    /// [`MAX_NOTE_SIGNATURES`], non-UTF-8, control characters, a missing blank line, a malformed or non-canonical
    /// signature line, and a note without signatures.
    pub fn parse(bytes: &[u8]) -> Result<Note> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(Error::Malformed { what: "note over MAX_NOTE_BYTES" });
        }
        let s = core::str::from_utf8(bytes).map_err(|_| Error::Malformed { what: "note is not UTF-8" })?;
        check_text(s)?;
        // The text is separated from the signatures by the last blank line.
        let (text, sigs) = s.rsplit_once("\n\n").ok_or(Error::Malformed { what: "note has no signature block" })?;
        let sigs = sigs.strip_suffix('\n').ok_or(Error::Malformed { what: "note signature block" })?;
        let mut signatures = Vec::new();
        for line in sigs.split('\n') {
            if signatures.len() >= MAX_NOTE_SIGNATURES {
                return Err(Error::Malformed { what: "note has too many signatures" });
            }
            signatures.push(NoteSignature::parse_line(line)?);
        }
        Ok(Note { text: format!("{text}\n"), signatures })
    }

    /// The signed text (with its final newline, without the blank line).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds a signature line, replacing any line with the same key name and id; refuses past
    /// [`MAX_NOTE_SIGNATURES`].
    pub fn add_signature(&mut self, sig: NoteSignature) -> Result<()> {
        self.signatures.retain(|s| !(s.name == sig.name && s.key_id == sig.key_id));
        if self.signatures.len() >= MAX_NOTE_SIGNATURES {
            return Err(Error::Misuse { what: "note has MAX_NOTE_SIGNATURES signatures" });
        }
        self.signatures.push(sig);
        Ok(())
    }

    /// The encoded note: text, blank line, signature lines. A note without signatures encodes to text that
    /// [`Note::parse`] refuses.
    pub fn encode(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.to_line());
        }
        out
    }
}
