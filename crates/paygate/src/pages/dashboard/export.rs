//! CSV exports of a merchant's filtered list (transactions, the audit log), streamed.

use std::fmt::Write as _;

use axum::{
    http::header,
    response::{IntoResponse, Response},
};
use futures_util::StreamExt as _;

use crate::store::{
    Store,
    table::{self, Filter, Start, Table, Window},
};

/// How many rows the export reads per query.
const EXPORT_CHUNK: i64 = 500;

/// A CSV field, quoted when it holds a comma, a quote or a line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The merchant's rows of `T` that meet `filter`, newest first, as the CSV download
/// `filename`: `head`, then one `line` per row (each ending in a line break).
///
/// Streamed: the body is sent [`EXPORT_CHUNK`] rows at a time as each is read (each read starts
/// after the last row sent, an index range; no total is counted), so an export of any size
/// holds one chunk in memory. A database error mid-export ends the body early, which the
/// client sees as a truncated download rather than a silently short file.
pub fn csv<T: Table + Send + 'static>(
    (store, merchant): (Store, String),
    filter: Filter,
    (head, filename): (&'static str, &'static str),
    line: fn(&T, &mut String) -> std::fmt::Result,
) -> Response {
    let first = std::iter::once(Ok::<_, std::io::Error>(head.to_owned()));
    let state = (store, merchant, filter, Some(Start::Offset(0)));
    let rows = futures_util::stream::unfold(state, move |(store, merchant, f, start)| async move {
        let start = start?;
        let window = Window {
            limit: EXPORT_CHUNK,
            start,
        };
        let (rows, has_more) = match table::read::<T>(&store, &merchant, &f, &window).await {
            Ok(Some(read)) => read,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(error = %e, export = filename, "export stopped");
                return Some((
                    Err(std::io::Error::other("export stopped")),
                    (store, merchant, f, None),
                ));
            }
        };
        let next = has_more
            .then(|| rows.last().map(|r| Start::After(r.id().to_owned())))
            .flatten();
        let mut out = String::new();
        for r in &rows {
            let _ = line(r, &mut out);
            let _ = writeln!(out);
        }
        Some((Ok(out), (store, merchant, f, next)))
    });
    let body = axum::body::Body::from_stream(futures_util::stream::iter(first).chain(rows));
    let disposition = format!("attachment; filename=\"{filename}\"");
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
