use zf_crypto::{BlindIndex, BlindIndexKey, Dek, Kek, KeyVersion, MasterKey, WrappedKey};
use zf_domain::{ClientId, IdNumber};
use zf_store::Store;

use crate::{now_ms, AppError};

const BLIND_INDEX_KEY: &str = "blind-index/v1";
const ID_NUMBER_DOMAIN: &str = "clients.legal_rep_id_number";

/// The keys a running node holds: the current KEK and the system keys it has unwrapped.
pub struct Keys {
    kek: Kek,
    blind_index: BlindIndexKey,
}

impl Keys {
    /// Unwraps the system keys, creating them on the first start of a deployment. Nodes that
    /// start together agree on one key because the store keeps whichever was written first.
    pub async fn load(store: &dyn Store, master: &MasterKey) -> Result<Self, AppError> {
        let kek = master.kek(KeyVersion(1));
        let context = format!("system:{BLIND_INDEX_KEY}");
        let candidate = kek.wrap_blind_index_key(&BlindIndexKey::generate(), context.as_bytes());
        let stored = store
            .system_key_get_or_insert(BLIND_INDEX_KEY, candidate, now_ms())
            .await?;
        let blind_index = kek
            .unwrap_blind_index_key(&stored, context.as_bytes())
            .map_err(|_| {
                AppError::Internal(
                    "the blind-index key does not unwrap with this master key: \
                     the master key file does not belong to this database"
                        .into(),
                )
            })?;
        Ok(Keys { kek, blind_index })
    }

    fn client_context(id: ClientId) -> String {
        format!("client:{id}")
    }

    /// A fresh data key for a new client, and its wrapped form for the store.
    pub fn new_client_key(&self, id: ClientId) -> (Dek, WrappedKey) {
        let dek = Dek::generate();
        let wrapped = self.kek.wrap(&dek, Self::client_context(id).as_bytes());
        (dek, wrapped)
    }

    pub fn client_key(&self, id: ClientId, wrapped: &WrappedKey) -> Result<Dek, AppError> {
        Ok(self
            .kek
            .unwrap_key(wrapped, Self::client_context(id).as_bytes())?)
    }

    pub fn data_key_version(&self) -> KeyVersion {
        KeyVersion(1)
    }

    pub fn id_number_index(&self, id: &IdNumber) -> BlindIndex {
        self.blind_index
            .index(ID_NUMBER_DOMAIN, id.as_str().as_bytes())
    }
}
