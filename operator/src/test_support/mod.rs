//! Code only the unit tests use.

pub(crate) mod api_server_mock;
