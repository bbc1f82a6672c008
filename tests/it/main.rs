//! Baton's integration tests: the real binary on its own data dir, over HTTP.

mod api_checks;
mod chains;
mod crash;
mod runs;
mod support;
