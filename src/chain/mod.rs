//! Parsing and resolving `async-TaskChain` and dynamic values.

pub mod dynamic;
