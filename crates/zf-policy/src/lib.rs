//! The authorization policy: who may do what, to which records, and how much of each field they see.
//!
//! This crate is the one place a reviewer reads to know the rules. It is pure: the server asks
//! [`decide`] for every request before any data is touched, and only a [`Grant`] it returns opens
//! the store's scoped readers and writers.

mod custom_role;
mod decision;
mod mfa;
mod network;
mod operation;
mod role;
mod separation;

pub use custom_role::{CustomRole, CustomRoleError, CustomRoleSpec, HeldRole, RoleName, ScopeRule};
pub use decision::{
    client_scope_words, decide, reach, Denied, Grant, Principal, Scope, TokenGrant, Visibility,
    Within,
};
pub use mfa::{Authentication, Factors, MfaPolicy};
pub use network::NetworkPolicy;
pub use operation::{Operation, Requirement};
pub use role::{Action, Field, Permission, Resource, Role, RoleParseError};
pub use separation::{check_role_change, SeparationError};
