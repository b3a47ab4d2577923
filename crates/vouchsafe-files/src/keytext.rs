//! Bounded reads and the versioned text form of a 32-byte key, `header\n<64 hex digits>\n`: the one parser of
//! every key file the project reads (authority, Centre, table keys), shared by the server and the command line.
//! Errors never contain the file's content.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use zeroize::Zeroizing;

/// Largest key, order, release or manifest file read by [`read_limited`]'s callers (64 MiB).
pub const MAX_FILE: u64 = 64 << 20;

/// Why a key file was refused. `Display` names the kind of problem, never the content.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyTextError {
    /// The file could not be read.
    Io(io::Error),
    /// The file is larger than allowed.
    TooLarge {
        /// The limit, in bytes.
        max: u64,
    },
    /// The text is not `header\n<64 hex digits>\n` exactly.
    Format {
        /// The header that was expected.
        header: String,
    },
}

impl fmt::Display for KeyTextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyTextError::Io(e) => write!(f, "{}", e.kind()),
            KeyTextError::TooLarge { max } => write!(f, "larger than {max} bytes"),
            KeyTextError::Format { header } => write!(f, "not a {header} file"),
        }
    }
}

impl std::error::Error for KeyTextError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyTextError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Reads a whole file of at most `max` bytes into a zeroizing buffer.
pub fn read_limited(path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>, KeyTextError> {
    let f = std::fs::File::open(path).map_err(KeyTextError::Io)?;
    let mut buf = Zeroizing::new(Vec::new());
    f.take(max.saturating_add(1)).read_to_end(&mut buf).map_err(KeyTextError::Io)?;
    if buf.len() as u64 > max {
        return Err(KeyTextError::TooLarge { max });
    }
    Ok(buf)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses `header\nHEX64\n` (exactly one trailing newline, nothing after it) into 32 bytes.
pub fn parse_key_text(text: &[u8], header: &str) -> Result<Zeroizing<[u8; 32]>, KeyTextError> {
    let bad = || KeyTextError::Format { header: header.to_owned() };
    let text = std::str::from_utf8(text).map_err(|_| bad())?;
    let mut lines = text.split('\n');
    if lines.next() != Some(header) {
        return Err(bad());
    }
    let hex_line = lines.next().ok_or_else(bad)?.as_bytes();
    if lines.next() != Some("") || lines.next().is_some() || hex_line.len() != 64 {
        return Err(bad());
    }
    let mut out = Zeroizing::new([0u8; 32]);
    for (o, pair) in out.iter_mut().zip(hex_line.chunks_exact(2)) {
        let (Some(&h), Some(&l)) = (pair.first(), pair.get(1)) else { return Err(bad()) };
        let (Some(h), Some(l)) = (nibble(h), nibble(l)) else { return Err(bad()) };
        *o = (h << 4) | l;
    }
    Ok(out)
}

/// Reads (at most 4 KiB) and parses a key file of the given header.
pub fn read_key_text(path: &Path, header: &str) -> Result<Zeroizing<[u8; 32]>, KeyTextError> {
    let text = read_limited(path, 4096)?;
    parse_key_text(&text, header)
}

/// The text form `header\n<64 lowercase hex digits>\n` of a key (zeroized when dropped).
pub fn key_text(header: &str, key: &[u8; 32]) -> Zeroizing<String> {
    fn digit(n: u8) -> char {
        char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 })
    }
    let mut s = Zeroizing::new(String::with_capacity(header.len() + 66));
    s.push_str(header);
    s.push('\n');
    for b in key {
        s.push(digit(b >> 4));
        s.push(digit(b & 0x0f));
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_everything_else() {
        let key = [0xabu8; 32];
        let text = key_text("vouchsafe-table-key v1", &key);
        assert_eq!(*parse_key_text(text.as_bytes(), "vouchsafe-table-key v1").unwrap(), key);
        assert!(parse_key_text(text.as_bytes(), "vouchsafe-authority-key v1").is_err());
        for bad in [
            text.trim_end().to_owned(),
            format!("{}\n", &*text),
            text.replace('a', "g"),
            text.replacen("ab", "a", 1),
            String::new(),
        ] {
            let e = parse_key_text(bad.as_bytes(), "vouchsafe-table-key v1").unwrap_err();
            assert_eq!(e.to_string(), "not a vouchsafe-table-key v1 file");
            assert!(!e.to_string().contains("abab"));
        }
    }

    #[test]
    fn reads_are_bounded() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        std::fs::write(&p, vec![b'x'; 5000]).unwrap();
        assert!(matches!(read_key_text(&p, "h"), Err(KeyTextError::TooLarge { max: 4096 })));
        assert!(matches!(read_key_text(&d.path().join("missing"), "h"), Err(KeyTextError::Io(_))));
    }
}
