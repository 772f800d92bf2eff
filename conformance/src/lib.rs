//! The testbed of `CONTRACT.md`: one program that tests and benchmarks drive.

pub mod profiles;
pub mod settings;
