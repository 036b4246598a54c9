//! The shape every closed list of codes shares (statuses, kinds, cycles).
//!
//! Each list is stored and sent as a snake_case code, shown as a Chinese label,
//! and typed in either form in imported spreadsheets. Generating them from one
//! table keeps code, label, serde name and error message from drifting apart.

/// Echoing unbounded user input into an error (and from there into logs and
/// responses) is a nuisance at best, so the echoed value is cut short.
pub(crate) const MAX_ECHO_CHARS: usize = 32;

/// Defines a `Copy` enum with `ALL`, `as_str`, `label_zh`, `label_en`,
/// `parse` (code in any case, or the Chinese label), `Display` as the code,
/// `FromStr`/`TryFrom`, serde as the code (deserialising through `parse`, so
/// labels are accepted in JSON too), an OpenAPI schema listing the codes, and
/// an error type that lists the accepted values.
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident / $error:ident ($what:literal) {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident = $code:literal, $zh:literal, $en:literal;
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        #[serde(try_from = "String")]
        pub enum $name {
            $(
                $(#[$variant_meta])*
                #[serde(rename = $code)]
                $variant,
            )+
        }

        #[doc = concat!("The input was neither a ", $what, " code nor its Chinese label.")]
        #[derive(Debug, Clone, PartialEq, Eq, ::thiserror::Error)]
        #[error("{} must be one of {}, not \"{}\"", $what, $name::accepted_values(), .value)]
        pub struct $error {
            value: String,
        }

        impl $name {
            pub const ALL: [$name; [$($code),+].len()] = [$($name::$variant),+];

            /// Accepts the code (any case, surrounding whitespace ignored) and
            /// the Chinese label, because imported spreadsheets use the latter.
            pub fn parse(input: &str) -> Result<Self, $error> {
                let trimmed = input.trim();
                Self::ALL
                    .into_iter()
                    .find(|value| {
                        trimmed.eq_ignore_ascii_case(value.as_str()) || trimmed == value.label_zh()
                    })
                    .ok_or_else(|| $error {
                        value: trimmed
                            .chars()
                            .take($crate::code_enum::MAX_ECHO_CHARS)
                            .collect(),
                    })
            }

            /// The code used in JSON, URLs and storage.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $code,)+
                }
            }

            pub const fn label_zh(self) -> &'static str {
                match self {
                    $($name::$variant => $zh,)+
                }
            }

            pub const fn label_en(self) -> &'static str {
                match self {
                    $($name::$variant => $en,)+
                }
            }

            /// `"code" (标签), ...` for error messages.
            fn accepted_values() -> String {
                Self::ALL
                    .iter()
                    .map(|value| format!("\"{}\" ({})", value.as_str(), value.label_zh()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }

        // Written out rather than derived: the derive does not see serde
        // renames that arrive through macro variables, and would publish the
        // Rust variant names instead of the codes.
        impl ::utoipa::PartialSchema for $name {
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema> {
                use ::utoipa::openapi::schema::{ObjectBuilder, Type};
                let description = format!(
                    "{}: one of {}. The Chinese label is accepted as input too.",
                    $what,
                    $name::accepted_values(),
                );
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some($name::ALL.map($name::as_str)))
                    .description(Some(description))
                    .build()
                    .into()
            }
        }

        impl ::utoipa::ToSchema for $name {}

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = $error;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Self::parse(input)
            }
        }

        impl ::core::convert::TryFrom<String> for $name {
            type Error = $error;

            fn try_from(input: String) -> Result<Self, Self::Error> {
                Self::parse(&input)
            }
        }

        impl ::core::convert::TryFrom<&str> for $name {
            type Error = $error;

            fn try_from(input: &str) -> Result<Self, Self::Error> {
                Self::parse(input)
            }
        }
    };
}

pub(crate) use code_enum;
