//! `break-glass audit export --from DATE --to DATE [--format csv|json]`: every request of a
//! period with its review, for an auditor. Read with the operator's AWS credentials through
//! the table's by-day index (one Query per day, never a Scan).

use std::io::Write;

use clap::{Args, ValueEnum};
use serde::Serialize;
use time::OffsetDateTime;

use crate::aws::store::Store;
use crate::domain::request::RequestRecord;
use crate::domain::review::day_of;
use crate::report::render::csv_cell;
use crate::time_util::{from_rfc3339, rfc3339};

/// The longest period one export covers.
const MAX_DAYS: i64 = 3 * 366;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The first day (`YYYY-MM-DD`, from its start, UTC) or moment (RFC 3339).
    #[arg(long, value_parser = start_of)]
    from: OffsetDateTime,
    /// The last day (`YYYY-MM-DD`, to its end, UTC) or moment (RFC 3339).
    #[arg(long, value_parser = end_of)]
    to: OffsetDateTime,
    /// CSV (quoted, safe to open in a spreadsheet) or one JSON array.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// The break-glass table (default: $TABLE_NAME).
    #[arg(long, env = "TABLE_NAME")]
    table: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

fn date(s: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &format).ok()
}

fn start_of(s: &str) -> Result<OffsetDateTime, String> {
    match date(s) {
        Some(d) => Ok(d.midnight().assume_utc()),
        None => from_rfc3339(s).ok_or_else(|| format!("{s:?} is neither YYYY-MM-DD nor RFC 3339")),
    }
}

fn end_of(s: &str) -> Result<OffsetDateTime, String> {
    match date(s) {
        Some(d) => Ok(d.midnight().assume_utc() + time::Duration::days(1) - time::Duration::SECOND),
        None => from_rfc3339(s).ok_or_else(|| format!("{s:?} is neither YYYY-MM-DD nor RFC 3339")),
    }
}

/// One request, as the export shows it. The field order is the CSV's column order.
#[derive(Debug, Serialize, PartialEq)]
pub struct Row {
    pub request_id: String,
    pub requester_slack_id: String,
    pub requester: String,
    pub account_id: String,
    pub permission_set: String,
    pub rule: String,
    pub reason: Option<String>,
    pub status: String,
    pub requested_at: String,
    pub granted_at: Option<String>,
    pub ended_at: Option<String>,
    pub revoked_at: Option<String>,
    pub ended_by: Option<String>,
    pub revoke_failed: bool,
    pub flags_critical: Option<usize>,
    pub flags_high: Option<usize>,
    pub flags_medium: Option<usize>,
    pub flags_low: Option<usize>,
    /// `fine`, `follow_up`, `pending` (waiting for a reviewer), or none (not reviewed: no
    /// review step then, or never reported).
    pub review: Option<String>,
    pub reviewer_slack_id: Option<String>,
    pub reviewed_at: Option<String>,
    pub review_note: Option<String>,
    /// From the report to the review.
    pub seconds_to_review: Option<i64>,
    /// `approved`, `denied`, `expired` or `pending` when the rule asked for approval.
    pub approval: Option<String>,
    pub approver_slack_id: Option<String>,
    /// The PagerDuty incident the request named.
    pub incident: Option<String>,
    /// Every account of the request, space-separated (`account_id` is the first).
    pub accounts: String,
}

impl Row {
    pub fn of(r: &RequestRecord) -> Row {
        let t = |v: Option<OffsetDateTime>| v.map(rfc3339);
        let flags = |i: usize| r.digest.as_ref().map(|d| d.flags[i]);
        Row {
            request_id: r.id.as_str().to_owned(),
            requester_slack_id: r.slack_user_id.clone(),
            requester: r.sso_user_name.clone(),
            account_id: r.account_id.as_str().to_owned(),
            permission_set: r
                .permission_set_name
                .clone()
                .unwrap_or_else(|| r.permission_set_arn.as_str().to_owned()),
            rule: r.rule.clone(),
            reason: r.reason.clone(),
            status: r.status.as_str().to_owned(),
            requested_at: rfc3339(r.requested_at),
            granted_at: t(r.granted_at),
            // Ended early, or the lease's end.
            ended_at: t(r.ended_at.or(r.revoked_at.and(r.expires_at))),
            revoked_at: t(r.revoked_at),
            ended_by: r.ended_by.clone(),
            revoke_failed: r.revoke_failed_at.is_some(),
            flags_critical: flags(0),
            flags_high: flags(1),
            flags_medium: flags(2),
            flags_low: flags(3),
            review: match (r.review.outcome, r.review.pending) {
                (Some(o), _) => Some(o.as_str().to_owned()),
                (None, true) => Some("pending".to_owned()),
                (None, false) => None,
            },
            reviewer_slack_id: r.review.by.clone(),
            reviewed_at: t(r.review.at),
            review_note: r.review.note.clone(),
            seconds_to_review: match (r.reported_at, r.review.at) {
                (Some(from), Some(to)) => Some((to - from).whole_seconds()),
                _ => None,
            },
            approval: r.approval.state.map(|s| s.as_str().to_owned()),
            approver_slack_id: r.approval.by.clone(),
            incident: r.incident_id.clone(),
            accounts: r
                .accounts()
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// The rows as CSV: a header, then one line per row, every cell quoted and defused.
pub fn to_csv(rows: &[Row]) -> Result<String, String> {
    let columns = columns();
    let mut out = columns.join(",") + "\r\n";
    for row in rows {
        let v = serde_json::to_value(row).map_err(|e| e.to_string())?;
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let text = match v.get(column) {
                None => return Err(format!("the row has no {column}")),
                Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            csv_cell(&mut out, &text);
        }
        out.push_str("\r\n");
    }
    Ok(out)
}

/// The CSV's columns (for an empty export too).
fn columns() -> Vec<&'static str> {
    vec![
        "request_id",
        "requester_slack_id",
        "requester",
        "account_id",
        "permission_set",
        "rule",
        "reason",
        "status",
        "requested_at",
        "granted_at",
        "ended_at",
        "revoked_at",
        "ended_by",
        "revoke_failed",
        "flags_critical",
        "flags_high",
        "flags_medium",
        "flags_low",
        "review",
        "reviewer_slack_id",
        "reviewed_at",
        "review_note",
        "seconds_to_review",
        "approval",
        "approver_slack_id",
        "incident",
        "accounts",
    ]
}

pub fn export(a: &ExportArgs) -> Result<(), String> {
    if a.from > a.to {
        return Err(format!(
            "--from {} is after --to {}",
            rfc3339(a.from),
            rfc3339(a.to)
        ));
    }
    let utc = |t: OffsetDateTime| t.to_offset(time::UtcOffset::UTC).date();
    let days = (utc(a.to) - utc(a.from)).whole_days() + 1;
    if days > MAX_DAYS {
        return Err(format!(
            "{days} days is more than one export covers ({MAX_DAYS}); split the period"
        ));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let rows = rt.block_on(read(a, days))?;
    let text = match a.format {
        Format::Csv => to_csv(&rows)?,
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
            s.push('\n');
            s
        }
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| format!("writing the export: {e}"))?;
    eprintln!("break-glass: {} request(s) from {days} day(s)", rows.len());
    Ok(())
}

/// Every request from `a.from` to `a.to`, oldest first, one Query a day. Progress goes to
/// stderr every 30 days, so that a long export shows it is moving.
async fn read(a: &ExportArgs, days: i64) -> Result<Vec<Row>, String> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), &a.table);
    let first = a.from.to_offset(time::UtcOffset::UTC).date();
    let mut rows = Vec::new();
    for i in 0..days {
        let day = first + time::Duration::days(i);
        let key = day_of(day.midnight().assume_utc());
        let found = store
            .requests_on(&key, a.from, a.to)
            .await
            .map_err(|e| format!("reading {key}: {e}"))?;
        rows.extend(found.iter().map(Row::of));
        if days > 30 && (i + 1) % 30 == 0 {
            eprintln!(
                "break-glass: read {} of {days} days, {} requests",
                i + 1,
                rows.len()
            );
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::review::{Digest, Outcome, Review};

    fn row() -> Row {
        let mut r = crate::aws::store::tests::sample();
        r.digest = Some(Digest {
            flags: [1, 2, 3, 4],
            ..Digest::default()
        });
        r.reported_at = from_rfc3339("2026-11-24T10:00:00Z");
        r.review = Review {
            outcome: Some(Outcome::FollowUp),
            by: Some("U0REVIEWER".into()),
            at: from_rfc3339("2026-11-24T10:30:00Z"),
            note: Some("=HYPERLINK(\"http://evil\")\nsecond \"line\"".into()),
            ..Review::default()
        };
        Row::of(&r)
    }

    #[test]
    fn csv_is_safe_for_spreadsheets() {
        let csv = to_csv(&[row()]).unwrap();
        let mut lines = csv.split("\r\n");
        assert_eq!(lines.next().unwrap(), columns().join(","));
        // The formula is defused, quotes doubled, the newline kept inside its quoted cell.
        assert!(
            csv.contains(
                r#""'=HYPERLINK(""http://evil"")
second ""line""""#
            ),
            "{csv}"
        );
        assert!(
            csv.contains(r#""follow_up","U0REVIEWER","2026-11-24T10:30:00Z""#),
            "{csv}"
        );
        assert!(csv.contains(r#""1","2","3","4""#), "{csv}");
        assert!(
            csv.ends_with("\"1800\",\"\",\"\",\"\",\"123456789012\"\r\n"),
            "{csv}"
        );
    }

    #[test]
    fn the_columns_are_the_rows_fields() {
        let v = serde_json::to_value(row()).unwrap();
        let mut fields: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut cols = columns();
        fields.sort_unstable();
        cols.sort_unstable();
        assert_eq!(fields, cols);
    }

    #[test]
    fn an_empty_export_still_has_its_header() {
        assert_eq!(to_csv(&[]).unwrap(), columns().join(",") + "\r\n");
    }

    #[test]
    fn the_row_says_who_reviewed_and_how_soon() {
        let r = row();
        assert_eq!(r.review.as_deref(), Some("follow_up"));
        assert_eq!(r.reviewer_slack_id.as_deref(), Some("U0REVIEWER"));
        assert_eq!(r.seconds_to_review, Some(1800));
        assert_eq!(r.flags_low, Some(4));
    }

    #[test]
    fn dates_and_moments() {
        assert_eq!(
            rfc3339(start_of("2026-11-01").unwrap()),
            "2026-11-01T00:00:00Z"
        );
        assert_eq!(
            rfc3339(end_of("2026-11-30").unwrap()),
            "2026-11-30T23:59:59Z"
        );
        assert_eq!(
            rfc3339(start_of("2026-11-01T08:00:00+01:00").unwrap()),
            "2026-11-01T07:00:00Z"
        );
        for bad in ["2026-13-01", "yesterday", "", "2026-11-01T08:00"] {
            assert!(start_of(bad).is_err(), "{bad}");
        }
    }
}
