//! The HTTPS edge: TLS, routing, the one authorization choke point, the JSON API, the web UI.
//!
//! Only this crate knows HTTP. A request's path: [`listener`] accepts a TCP connection and
//! completes the TLS handshake; axum routes it; [`policy::enforce`] resolves the session,
//! looks the route's [`zf_policy::Operation`] up in the [`routes`] table and asks
//! [`zf_policy::decide`]; only then does the handler run, calling one [`zf_app::App`] method
//! that does the crypto and the store transaction with its audit event.

mod api;
mod error;
mod extract;
mod headers;
pub mod instance;
pub mod key_provider;
pub mod listener;
mod policy;
pub mod routes;
pub mod tls;
mod ui;

pub use error::ApiError;
pub use instance::{DatabaseChoice, Instance, InstanceError};
pub use key_provider::{Init, KeyProvider, PassphrasePrompt};
pub use listener::{serve, ServerError};
pub use routes::{route_table, router, RouteSpec};

/// Name of the session cookie. `__Host-` makes the browser refuse it unless it is Secure,
/// has Path=/ and no Domain, so no sibling host can set or read it.
pub const SESSION_COOKIE: &str = "__Host-zf_session";
