//! Typed identifiers, so a `ClientId` can never be passed where a `UserId` is
//! expected, and a path segment is checked before any handler sees it.

use thiserror::Error;
use uuid::Uuid;

/// Canonical hyphenated form; the only one accepted, so each id has exactly
/// one spelling in URLs, logs and audit records.
const HYPHENATED_LEN: usize = 36;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "{kind} id is not a valid UUID: expected 36 characters in the form \
     xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)"
)]
pub struct IdParseError {
    kind: &'static str,
}

impl IdParseError {
    /// The entity whose id was malformed, e.g. "client".
    pub fn kind(&self) -> &'static str {
        self.kind
    }
}

fn parse_hyphenated(input: &str, kind: &'static str) -> Result<Uuid, IdParseError> {
    if input.len() != HYPHENATED_LEN {
        return Err(IdParseError { kind });
    }
    Uuid::try_parse(input).map_err(|_| IdParseError { kind })
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $example:literal) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize,
        )]
        #[serde(try_from = "String")]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random (version 4) id.
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }

            pub fn parse(input: &str) -> Result<Self, IdParseError> {
                parse_hyphenated(input, $kind).map(Self)
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = IdParseError;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Self::parse(input)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdParseError;

            fn try_from(input: String) -> Result<Self, Self::Error> {
                Self::parse(&input)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdParseError;

            fn try_from(input: &str) -> Result<Self, Self::Error> {
                Self::parse(input)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::schema::StringSchema {
                    description: concat!("Identifier of a ", $kind, " (UUID, hyphenated form)."),
                    example: $example,
                    pattern: None,
                    min_length: Some(HYPHENATED_LEN),
                    max_length: Some(HYPHENATED_LEN),
                    uuid_format: true,
                }
                .build()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

typed_id!(
    /// Identifies a client company (企业客户).
    ClientId,
    "client",
    "5f0c6f8e-3b7a-4c1d-9e2f-8a6b4d3c2e1f"
);
typed_id!(
    /// Identifies a staff account.
    UserId,
    "user",
    "0b9d2c4e-6a8f-4e1b-8c3d-5f7a9b1c2d4e"
);

typed_id!(
    /// Identifies a record that belongs to one client: a contact, contract, financial record,
    /// filing task, interaction, document, custody item or payment.
    RecordId,
    "record",
    "7c1e5a3b-2d4f-4a6b-9c8d-1e3f5a7b9c2d"
);

typed_id!(
    /// Identifies a sales lead (潜在客户) before it becomes a client.
    LeadId,
    "lead",
    "3a5c7e9b-1d2f-4b6a-8c4e-6f8a1b3d5c7e"
);

typed_id!(
    /// Identifies an API token (its id, never its secret).
    TokenId,
    "API token",
    "9e4b2d6f-8a1c-4e3b-a5d7-2c4e6f8a1b3d"
);

#[cfg(test)]
mod tests {
    use super::*;

    const CANONICAL: &str = "67e55044-10b1-426f-9247-bb680e5fe0c8";

    #[test]
    fn parses_and_displays_hyphenated() {
        let id = ClientId::parse(CANONICAL).unwrap();
        assert_eq!(id.to_string(), CANONICAL);
        assert_eq!(ClientId::from_uuid(*id.as_uuid()), id);
    }

    #[test]
    fn upper_case_input_displays_lower_case() {
        let id = UserId::parse(&CANONICAL.to_uppercase()).unwrap();
        assert_eq!(id.to_string(), CANONICAL);
    }

    #[test]
    fn rejects_other_spellings_and_garbage() {
        let simple = CANONICAL.replace('-', "");
        let braced = format!("{{{CANONICAL}}}");
        let urn = format!("urn:uuid:{CANONICAL}");
        let bad_hex = CANONICAL.replace('e', "g");
        for input in ["", "42", "../etc/passwd", &simple, &braced, &urn, &bad_hex] {
            assert_eq!(
                ClientId::parse(input),
                Err(IdParseError { kind: "client" }),
                "{input}"
            );
        }
    }

    #[test]
    fn error_names_the_entity() {
        let error = UserId::parse("nope").unwrap_err();
        assert_eq!(error.kind(), "user");
        assert!(error.to_string().starts_with("user id is not a valid UUID"));
    }

    #[test]
    fn random_ids_are_v4_and_distinct() {
        let a = ClientId::new_random();
        let b = ClientId::new_random();
        assert_ne!(a, b);
        assert_eq!(a.as_uuid().get_version_num(), 4);
    }

    #[test]
    fn serde_as_plain_string() {
        let id = ClientId::parse(CANONICAL).unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{CANONICAL}\""));
        assert_eq!(serde_json::from_str::<ClientId>(&json).unwrap(), id);
        let error = serde_json::from_str::<ClientId>("\"x\"").unwrap_err();
        assert!(
            error.to_string().contains("client id is not a valid UUID"),
            "{error}"
        );
    }
}
