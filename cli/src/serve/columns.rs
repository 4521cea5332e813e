//! A table column: its header and how a row's cell is read from the object.

use jiff::Timestamp;
use serde_json::Value;

/// How a row's cell is read from its object, at a time (for ages).
pub(crate) type Cell = Box<dyn Fn(&Value, Timestamp) -> Value>;

/// One column: its definition and how a row's cell is read.
pub(crate) struct Column {
    pub name: String,
    pub kind: &'static str,
    pub priority: i64,
    pub cell: Cell,
}

pub(crate) fn column(
    name: &str,
    priority: i64,
    cell: impl Fn(&Value, Timestamp) -> Value + 'static,
) -> Column {
    Column {
        name: name.to_string(),
        kind: "string",
        priority,
        cell: Box::new(cell),
    }
}
