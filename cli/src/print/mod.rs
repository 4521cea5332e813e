//! Printing in kubectl's formats: tables, json, yaml, name and jsonpath (output.rs,
//! jsonpath.rs), `describe`'s text (describe.rs), and ages as kubectl prints them (age.rs).

pub(crate) mod age;
pub(crate) mod describe;
pub(crate) mod jsonpath;
pub(crate) mod output;
