//! Domain values of Zhangfang: the vocabulary every other crate speaks.
//!
//! Each value is a newtype that can only be built by parsing, so holding one is
//! proof that it passed validation. This crate does no I/O and reads no clock,
//! which keeps it usable from every layer and trivially testable.

mod code_enum;
mod newtype;
mod schema;

pub mod bank;
pub mod client;
pub mod contact;
pub mod crm;
pub mod date;
pub mod document;
pub mod filing;
pub mod id_number;
pub mod ids;
pub mod money;
pub mod names;
pub mod period;
pub mod taxpayer;
pub mod text;
pub mod uscc;

pub use bank::{BankAccount, BankAccountError};
pub use client::{ClientPatch, NewClient};
pub use contact::{Email, EmailError, Mobile, MobileError, Position, WeChatId, WeChatIdError};
pub use crm::{
    BillingCycle, BillingCycleError, ClientStatus, ClientStatusError, ContractStatus,
    ContractStatusError, ContractType, ContractTypeError, CustodyKind, CustodyKindError,
    DocumentKind, DocumentKindError, FilingStatus, FilingStatusError, InteractionKind,
    InteractionKindError, LeadStage, LeadStageError, TaxKind, TaxKindError,
};
pub use date::{Date, DateError, Weekday, WeekdayError};
pub use document::{
    DocumentError, DocumentType, DocumentTypeError, FileName, FileNameError, MAX_DOCUMENT_BYTES,
};
pub use filing::{obligations, CalendarError, FilingCalendar, Obligation};
pub use id_number::{IdNumber, IdNumberError};
pub use ids::{ClientId, IdParseError, LeadId, RecordId, TokenId, UserId};
pub use money::{Fen, MoneyError, SignedFen, MAX_FEN};
pub use names::{ClientName, NameError, NameKind, PersonName, Username};
pub use period::{Period, PeriodError, PeriodKind, PeriodKindError};
pub use taxpayer::{TaxpayerType, TaxpayerTypeError};
pub use text::{Notes, ShortText, Tag, Tags, TextError, TextKind};
pub use uscc::{Uscc, UsccError};
