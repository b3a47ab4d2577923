//! Decoding goes through the project's one cursor, `vouchsafe-wire`; a failure there is the peer's (or the stored
//! file's) fault.

pub(crate) use vouchsafe_wire::Reader;

use crate::error::{Error, InvalidInput};

impl From<vouchsafe_wire::WireError> for Error {
    fn from(e: vouchsafe_wire::WireError) -> Self {
        use vouchsafe_wire::WireError as W;
        Error::Invalid(match e {
            W::Length { what, expected, got } => InvalidInput::Length { what, expected, got },
            W::TrailingBytes { what } => InvalidInput::TrailingBytes { what },
            W::Version { what, got } => InvalidInput::Version { what, got },
        })
    }
}
