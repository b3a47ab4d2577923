//! The CLI's error type: one precise line on stderr, and an exit code that tells usage and configuration
//! problems (2) apart from runtime failures (1). Messages never contain tokens, keys or image content.

use std::fmt;

/// Exit code of a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a runtime failure.
pub const EXIT_RUNTIME: u8 = 1;

/// Everything the `vouchsafe` binary can fail with.
#[derive(Debug)]
#[non_exhaustive]
pub enum CliError {
    /// Bad arguments, a missing or invalid configuration file, unusable input files: fix the invocation.
    Usage(String),
    /// The command was well-formed but failed while running (network, server, storage, protocol).
    Runtime(String),
}

impl CliError {
    /// A usage or configuration error.
    pub fn usage(msg: impl Into<String>) -> Self {
        CliError::Usage(msg.into())
    }

    /// A runtime failure.
    pub fn runtime(msg: impl Into<String>) -> Self {
        CliError::Runtime(msg.into())
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Runtime(_) => EXIT_RUNTIME,
        }
    }

    /// Maps a server-library error: configuration and file problems are usage errors, the rest runtime.
    pub fn from_server(context: &str, e: vouchsafe_server::ServerError) -> Self {
        use vouchsafe_server::ServerError as E;
        let msg = format!("{context}: {e}");
        match e {
            E::Config { .. } | E::Io { .. } | E::TableMismatch { .. } | E::Governance { .. } => CliError::Usage(msg),
            _ => CliError::Runtime(msg),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self {
            CliError::Usage(m) | CliError::Runtime(m) => m,
        };
        // Always one line.
        let one_line: String = msg.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
        f.write_str(&one_line)
    }
}

impl std::error::Error for CliError {}

/// Result type of the CLI.
pub type Result<T> = std::result::Result<T, CliError>;
