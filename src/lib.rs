//! Baton: a job scheduler whose heart is safe task chaining.
//!
//! The dependency rule: `domain` imports nothing of ours; `store`, `crypto`, `chain` and
//! `tasks` build on `domain`; `engine` drives runs through `store` and `tasks`; `service` holds
//! the use cases and permission checks; `api` (JSON) and `web` (pages) only talk to `service`.

pub mod access_log;
pub mod api;
pub mod chain;
pub mod crypto;
pub mod domain;
pub mod engine;
pub mod service;
pub mod store;
pub mod tasks;
pub mod web;

/// rustls needs one process-wide crypto provider; reqwest and the FTP client share it.
pub fn install_crypto_provider() {
    // Err means one is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
pub mod cli;
pub mod demo;
pub mod server;
