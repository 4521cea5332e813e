//! A bundle's archive: downloading it through its presigned URL and verifying it against its
//! status (download.rs), reading its entries within a budget, the one reader every command
//! uses (entries.rs), reading summary.md from its head (summary.rs), listing and printing its
//! files (bundle_files.rs), unpacking it as hostile input (unpack.rs), and telling whether
//! the pages a browser would open from it are the operator's (pages.rs).

pub(crate) mod bundle_files;
pub(crate) mod download;
pub(crate) mod entries;
pub(crate) mod pages;
pub(crate) mod summary;
pub(crate) mod unpack;
