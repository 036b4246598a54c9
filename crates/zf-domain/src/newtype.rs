//! Conversions every string-backed domain value shares.
//!
//! All of them funnel into the type's own `parse`, so there is exactly one
//! place per type where validation happens and no conversion can bypass it.

/// Implements `TryFrom<String>`, `TryFrom<&str>`, `FromStr` and a plain-string
/// `Serialize` for `$ty`, whose `parse(&str) -> Result<$ty, $err>` and
/// `as_str()` must already exist.
macro_rules! string_newtype {
    ($ty:ident, $err:ty) => {
        impl ::core::convert::TryFrom<String> for $ty {
            type Error = $err;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl ::core::convert::TryFrom<&str> for $ty {
            type Error = $err;

            fn try_from(value: &str) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl ::core::str::FromStr for $ty {
            type Err = $err;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::parse(value)
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

/// Implements `Display` as the stored canonical string. Kept apart from
/// [`string_newtype`] because some values (ID numbers) must not have one.
macro_rules! display_as_str {
    ($ty:ident) => {
        impl ::core::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use {display_as_str, string_newtype};
