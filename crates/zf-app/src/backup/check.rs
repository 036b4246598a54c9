//! Proof that a restored database is usable, not merely present: every sealed field of every
//! client, record, document and lead is opened with this instance's keys. A backup whose rows
//! all arrived but whose keys no longer unwrap would pass every digest and still be worthless.

use serde::Serialize;
use zeroize::Zeroizing;
use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_domain::IdNumber;
use zf_store::{HolderFilter, KeyHolder, SealedAt, SealedValue};

use crate::data_keys::aad_of;
use crate::{App, AppError};

/// Holders whose values are read and opened together: one query for all their values.
const PAGE: u32 = 500;

/// What was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SealedCheck {
    pub clients: u64,
    /// Records whose sealed payload was opened.
    pub records: u64,
    pub documents: u64,
    pub leads: u64,
    /// Sealed values opened (ID numbers, notes, record payloads, document contents, leads).
    pub fields_opened: u64,
}

/// What an opened value must be besides authentic: an ID number that parses, text, JSON.
fn check_plain(at: &SealedAt, plain: &[u8]) -> Result<(), String> {
    let text = || std::str::from_utf8(plain).map_err(|_| "is not UTF-8".to_owned());
    match at {
        SealedAt::ClientIdNumber(_) => IdNumber::parse(text()?)
            .map(|_| ())
            .map_err(|_| "does not parse as an ID number".into()),
        SealedAt::ClientNotes(_) => text().map(|_| ()),
        SealedAt::Record(..) | SealedAt::Lead(_) => {
            serde_json::from_slice::<serde_json::Value>(plain)
                .map(|_| ())
                .map_err(|_| "does not parse as JSON".into())
        }
        SealedAt::RecordContent(..) | SealedAt::UserTotp(_) | SealedAt::OtpAddress { .. } => Ok(()),
    }
}

impl App {
    /// Opens every sealed value in the store, a page of holders at a time with one read of all
    /// their values. The first that fails (a key that does not unwrap, a tag that does not
    /// verify, a payload that does not parse) is the error.
    pub async fn sealed_check(&self) -> Result<SealedCheck, AppError> {
        let mut check = SealedCheck::default();
        for holder in KeyHolder::ALL {
            let mut after = None;
            loop {
                let page = self
                    .store
                    .key_holders(holder, HolderFilter::After(after), PAGE)
                    .await?;
                let Some(last) = page.last().map(|h| h.id.clone()) else {
                    break;
                };
                let rings = self.rings(&page)?;
                let ids = page.iter().map(|h| h.id.clone()).collect();
                for value in self.store.sealed_values(holder, ids).await? {
                    let ring = rings.get(&value.holder_id).ok_or_else(|| {
                        AppError::Internal(format!("no key for {}", value.holder_id))
                    })?;
                    let plain = Zeroizing::new(
                        ring.open(&value.sealed, &aad_of(&value.at)).map_err(|e| {
                            AppError::Internal(format!("{} does not open: {e}", describe(&value)))
                        })?,
                    );
                    check_plain(&value.at, &plain)
                        .map_err(|e| AppError::Internal(format!("{} {e}", describe(&value))))?;
                    check.fields_opened += 1;
                    match value.at {
                        SealedAt::Record(..) => check.records += 1,
                        SealedAt::RecordContent(..) => check.documents += 1,
                        _ => {}
                    }
                }
                match holder {
                    KeyHolder::Client => check.clients += page.len() as u64,
                    KeyHolder::Lead => check.leads += page.len() as u64,
                }
                if page.len() < PAGE as usize {
                    break;
                }
                after = Some(last);
            }
        }
        if check.documents > 0 {
            // Reading documents' contents is an audited read, here as anywhere.
            let event = AuditEvent::new(
                self.now_ms(),
                Actor::system(),
                AuditAction::DocumentDownloaded,
                Outcome::Success,
            )
            .on("documents", "all")
            .detail(format!(
                "sealed-field check: the contents of {} documents of {} clients opened",
                check.documents, check.clients
            ));
            self.store.audit_append(event).await?;
        }
        Ok(check)
    }
}

/// Which value, for an error message; never its content.
fn describe(value: &SealedValue) -> String {
    let what = match &value.at {
        SealedAt::ClientIdNumber(_) => "the ID number".to_owned(),
        SealedAt::ClientNotes(_) => "the notes".to_owned(),
        SealedAt::Record(kind, id) => format!("{} {id}", kind.as_str()),
        SealedAt::RecordContent(kind, id) => format!("the content of {} {id}", kind.as_str()),
        SealedAt::Lead(_) => "the lead".to_owned(),
        SealedAt::UserTotp(user) => format!("the TOTP secret of {user}"),
        SealedAt::OtpAddress { user, .. } => format!("the code address of {user}"),
    };
    format!("{what} of {}", value.holder_id)
}
