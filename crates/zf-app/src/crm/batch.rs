//! Many clients' new records in one transaction: what a series of `contact_create`,
//! `contract_create`, `financial_create`, `filing_generate` and `interaction_create` calls
//! would write — the same rows sealed under the same client keys, the same audit events — but
//! committed together, so generating a firm costs one commit per batch instead of one per
//! record. Nothing is read back, so the read-back events of the single calls (a created record
//! returned in the clear is a sensitive read) do not occur here.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use zf_crypto::DekRing;
use zf_domain::{ClientId, TaxpayerType};
use zf_policy::{Grant, Operation};

use super::contacts::ContactInput;
use super::contracts::ContractInput;
use super::filings::GenerateFilings;
use super::financials::FinancialInput;
use super::interactions::InteractionInput;
use crate::{App, AppError, RequestMeta};

/// One record to create, as its single use-case takes it.
#[derive(Clone, Debug)]
pub enum RecordInput {
    Contact(ContactInput),
    Contract(ContractInput),
    Financial(FinancialInput),
    /// The year's filing tasks, created only where absent.
    Filings(GenerateFilings),
    Interaction(InteractionInput),
}

impl RecordInput {
    /// The operation whose grant the single use-case is called with.
    pub fn operation(&self) -> Operation {
        match self {
            RecordInput::Contact(_) => Operation::ContactCreate,
            RecordInput::Contract(_) => Operation::ContractCreate,
            RecordInput::Financial(_) => Operation::FinancialCreate,
            RecordInput::Filings(_) => Operation::FilingGenerate,
            RecordInput::Interaction(_) => Operation::InteractionCreate,
        }
    }
}

/// A record for a client, under the grant its single use-case would have been called with.
#[derive(Clone, Debug)]
pub struct RecordCreate<'a> {
    pub grant: &'a Grant,
    pub client: ClientId,
    pub input: RecordInput,
}

impl App {
    /// Creates every record in one store transaction, each with the audit event its single
    /// use-case writes; one invalid input, or one client out of its grant's scope, writes
    /// nothing. Returns how many records were inserted (filing tasks that existed already are
    /// not counted).
    pub async fn records_create_many(
        &self,
        creates: Vec<RecordCreate<'_>>,
        meta: &RequestMeta,
    ) -> Result<u64, AppError> {
        // A batch carries many grants, so a grant decided for another operation would
        // otherwise slip through where a route's single decision cannot mix them up.
        if let Some(c) = creates
            .iter()
            .find(|c| c.grant.operation() != c.input.operation())
        {
            return Err(AppError::Internal(format!(
                "a grant for {:?} used to create a record needing {:?}",
                c.grant.operation(),
                c.input.operation()
            )));
        }
        let mut clients: HashMap<ClientId, (TaxpayerType, DekRing)> = HashMap::new();
        let mut writes = Vec::with_capacity(creates.len());
        for RecordCreate {
            grant,
            client,
            input,
        } in creates
        {
            let (taxpayer_type, dek) = match clients.entry(client) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(new) => {
                    let (record, dek) = self.scoped_client(grant, client).await?;
                    new.insert((record.row.taxpayer_type, dek))
                }
            };
            let dek = &*dek;
            writes.push(match input {
                RecordInput::Contact(i) => self.contact_insert(grant, client, dek, i, meta)?.1,
                RecordInput::Contract(i) => self.contract_insert(grant, client, dek, i, meta)?.1,
                RecordInput::Financial(i) => self.financial_insert(grant, client, dek, i, meta)?.1,
                RecordInput::Filings(r) => {
                    self.filing_generation(grant, client, *taxpayer_type, &r, meta)?
                        .0
                }
                RecordInput::Interaction(i) => {
                    self.interaction_insert(grant, client, dek, i, meta)?.1
                }
            });
        }
        if writes.is_empty() {
            return Ok(0);
        }
        let counts: Vec<u64> = self.store.record_write_many(writes).await?;
        Ok(counts.into_iter().sum())
    }
}
