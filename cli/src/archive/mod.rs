//! A bundle's archive: downloading it through its presigned URL and verifying it against its
//! status (download.rs), reading summary.md from its head (summary.rs), listing and printing
//! its files (bundle_files.rs), and unpacking it as hostile input (unpack.rs).

pub(crate) mod bundle_files;
pub(crate) mod download;
pub(crate) mod summary;
pub(crate) mod unpack;
