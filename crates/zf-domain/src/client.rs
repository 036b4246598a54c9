//! Commands that create or change a client company.
//!
//! These are what request bodies deserialise into: every field is already a
//! parsed domain value, so a handler holding one never sees raw strings.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    ClientName, ClientStatus, Fen, IdNumber, Notes, PersonName, ShortText, Tags, TaxpayerType, Uscc,
};

/// A new client company. `Debug` is safe to log: [`IdNumber`] masks itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    pub name: ClientName,
    pub uscc: Uscc,
    pub taxpayer_type: TaxpayerType,
    /// 法定代表人 (legal representative).
    pub legal_rep_name: PersonName,
    pub legal_rep_id_number: IdNumber,
    /// Where the client stands; `in_service` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ClientStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Option<Tags>,
    /// The team that serves the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub team: Option<ShortText>,
    /// Free text, sealed under the client's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Notes>,
    /// 注册资本 in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub registered_capital: Option<Fen>,
    /// 主管税务机关.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub tax_authority: Option<ShortText>,
}

/// A partial update: absent (or null) fields are left unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<ClientName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uscc: Option<Uscc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taxpayer_type: Option<TaxpayerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_rep_name: Option<PersonName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_rep_id_number: Option<IdNumber>,
    /// Moves along the pipeline (lead → signed → in service → churned) only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ClientStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Option<Tags>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Notes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub registered_capital: Option<Fen>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub tax_authority: Option<ShortText>,
}

impl ClientPatch {
    /// True when the patch would change nothing, which callers should reject
    /// rather than record as an edit in the audit log.
    pub fn is_empty(&self) -> bool {
        let Self {
            name,
            uscc,
            taxpayer_type,
            legal_rep_name,
            legal_rep_id_number,
            status,
            tags,
            notes,
            registered_capital,
            tax_authority,
        } = self;
        // Destructured so that adding a field without updating this fails to compile.
        name.is_none()
            && uscc.is_none()
            && taxpayer_type.is_none()
            && legal_rep_name.is_none()
            && legal_rep_id_number.is_none()
            && status.is_none()
            && tags.is_none()
            && notes.is_none()
            && registered_capital.is_none()
            && tax_authority.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NewClient {
        NewClient {
            name: ClientName::parse("福州账房财税咨询有限公司").unwrap(),
            uscc: Uscc::parse("91350100M000100Y43").unwrap(),
            taxpayer_type: TaxpayerType::SmallScale,
            legal_rep_name: PersonName::parse("张三").unwrap(),
            legal_rep_id_number: IdNumber::parse("11010519491231002X").unwrap(),
            status: None,
            tags: None,
            team: None,
            notes: None,
            registered_capital: None,
            tax_authority: None,
        }
    }

    #[test]
    fn debug_masks_the_id_number() {
        let debug = format!("{:?}", sample());
        assert!(!debug.contains("11010519491231002X"), "{debug}");
        assert!(debug.contains("110***********002X"), "{debug}");
        let patch = ClientPatch {
            legal_rep_id_number: sample().legal_rep_id_number.into(),
            ..ClientPatch::default()
        };
        let debug = format!("{patch:#?}");
        assert!(!debug.contains("19491231"), "{debug}");
    }

    #[test]
    fn new_client_round_trips_through_json() {
        let json = serde_json::to_string(&sample()).unwrap();
        let back: NewClient = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn patch_emptiness() {
        assert!(ClientPatch::default().is_empty());
        let patch: ClientPatch = serde_json::from_str("{}").unwrap();
        assert!(patch.is_empty());
        let patch: ClientPatch = serde_json::from_str(r#"{"name": null}"#).unwrap();
        assert!(patch.is_empty());
        let patch: ClientPatch = serde_json::from_str(r#"{"taxpayer_type": "general"}"#).unwrap();
        assert!(!patch.is_empty());
        assert_eq!(patch.taxpayer_type, Some(TaxpayerType::General));
    }

    #[test]
    fn patch_rejects_unknown_and_invalid_fields() {
        let error = serde_json::from_str::<ClientPatch>(r#"{"nmae": "x"}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `nmae`"),
            "{error}"
        );
        let error = serde_json::from_str::<ClientPatch>(r#"{"uscc": "123"}"#).unwrap_err();
        assert!(
            error.to_string().contains("USCC must be 18 characters"),
            "{error}"
        );
    }
}
