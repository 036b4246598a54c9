//! Domain values of Zhangfang: the vocabulary every other crate speaks.
//!
//! Each value is a newtype that can only be built by parsing, so holding one is
//! proof that it passed validation. This crate does no I/O and reads no clock,
//! which keeps it usable from every layer and trivially testable.

mod newtype;
mod schema;

pub mod client;
pub mod id_number;
pub mod ids;
pub mod names;
pub mod taxpayer;
pub mod uscc;

pub use client::{ClientPatch, NewClient};
pub use id_number::{IdNumber, IdNumberError};
pub use ids::{ClientId, IdParseError, LeadId, RecordId, UserId};
pub use names::{ClientName, NameError, NameKind, PersonName, Username};
pub use taxpayer::{TaxpayerType, TaxpayerTypeError};
pub use uscc::{Uscc, UsccError};
