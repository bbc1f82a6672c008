//! Baton's integration tests: the real binary on its own data dir, over HTTP.

mod crash;
mod runs;
mod support;
