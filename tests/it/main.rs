//! Baton's integration tests: the real binary on its own data dir, over HTTP.

mod api_checks;
mod browser;
mod chain_crash;
mod chain_rules;
mod chains;
mod clock;
mod core;
mod crash;
mod ftp;
mod kind_checks;
mod pages;
mod runs;
mod support;
