use std::sync::{Arc, OnceLock};

use zf_crypto::AuditChainKey;

use crate::{Result, StoreError};

/// The audit chain key a store links events with, installed once after the keys are loaded.
#[derive(Default)]
pub struct ChainCell(OnceLock<Arc<AuditChainKey>>);

impl ChainCell {
    pub fn install(&self, key: Arc<AuditChainKey>) {
        // A second installation (the same key, from a second App on one store) changes nothing.
        let _ = self.0.set(key);
    }

    pub fn key(&self) -> Result<&AuditChainKey> {
        self.0
            .get()
            .map(Arc::as_ref)
            .ok_or_else(|| StoreError::Config("the audit chain key is not loaded".into()))
    }
}
