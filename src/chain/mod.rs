//! Parsing and resolving `async-TaskChain` and dynamic values.

pub mod dynamic;
pub mod graph;
pub mod plan;
pub mod spec;
