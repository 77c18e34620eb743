//! Renders a report to HTML (for mail clients: inline CSS, tables, no scripts, no remote
//! images) and plain text, with Askama. The HTML template auto-escapes every value.

use askama::Template;
use time::OffsetDateTime;

use super::analysis::{
    Activity, AfterEnd, Coverage, FlagRow, LeftBehind, Twin, activity, by_severity, flag_rows,
    left_behind,
};
use super::detect::Severity;
use super::{Event, SummaryRow, summarise};
use crate::time_util::rfc3339;

/// Most timeline rows a mail carries by default (`REPORT_MAX_ROWS`).
pub const MAX_TIMELINE_ROWS: usize = 2_000;

/// Who, what and when: the report's header.
#[derive(Debug, Clone)]
pub struct Header {
    pub user: String,
    pub account_id: String,
    pub account_name: Option<String>,
    /// The request's other accounts (id, and the policy's name), when it has several.
    pub more_accounts: Vec<(String, Option<String>)>,
    pub permission_set: String,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub request_id: Option<String>,
    pub reason: Option<String>,
    /// Where the request's conversation is in Slack.
    pub slack_link: Option<String>,
    /// The PagerDuty incident the request named: its id, and its link.
    pub incident: Option<(String, String)>,
    /// When End access now was pressed (drawn into the activity picture).
    pub ended_at: Option<OffsetDateTime>,
}

impl Header {
    /// Every account, as people read them: `123456789012 (production), 210987654321`.
    pub fn accounts_line(&self) -> String {
        std::iter::once((&self.account_id, &self.account_name))
            .chain(self.more_accounts.iter().map(|(a, n)| (a, n)))
            .map(|(a, n)| match n {
                Some(n) => format!("{a} ({n})"),
                None => a.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One account's share of a session over several accounts.
pub struct AccountRow {
    pub account: String,
    pub events: usize,
    pub writes: usize,
    pub errors: usize,
    pub flagged: usize,
    pub after_end: usize,
}

/// The per-account sections of a session over several accounts (none for one account).
fn by_account(header: &Header, events: &[Event], after_end: &[Event]) -> Vec<AccountRow> {
    if header.more_accounts.is_empty() {
        return Vec::new();
    }
    std::iter::once(&header.account_id)
        .chain(header.more_accounts.iter().map(|(a, _)| a))
        .map(|account| {
            let mine = || events.iter().filter(|e| e.account_id == *account);
            AccountRow {
                account: header.accounts_line_of(account),
                events: mine().count(),
                writes: mine().filter(|e| e.is_write()).count(),
                errors: mine().filter(|e| e.is_error()).count(),
                flagged: mine().filter(|e| e.rule.is_some()).count(),
                after_end: after_end
                    .iter()
                    .filter(|e| e.account_id == *account)
                    .count(),
            }
        })
        .collect()
}

impl Header {
    /// One account as people read it: `123456789012 (production)`.
    fn accounts_line_of(&self, account: &str) -> String {
        let name = if account == self.account_id {
            self.account_name.as_ref()
        } else {
            self.more_accounts
                .iter()
                .find(|(a, _)| a == account)
                .and_then(|(_, n)| n.as_ref())
        };
        match name {
            Some(n) => format!("{} ({})", super::clip(account), super::clip(n)),
            None => super::clip(account),
        }
    }
}

/// One event as a table row: every value already a display string.
pub struct Row<'a> {
    pub time: String,
    pub region: &'a str,
    pub service: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    pub source_ip: &'a str,
    pub user_agent: &'a str,
    pub error: String,
    /// The detection rule's title and severity, when it is flagged.
    pub flag: &'static str,
    pub severity: &'static str,
}

impl<'a> Row<'a> {
    fn new(e: &'a Event) -> Self {
        let error = match (e.error_code.is_empty(), e.error_message.is_empty()) {
            (true, _) => String::new(),
            (false, true) => e.error_code.clone(),
            (false, false) => format!("{}: {}", e.error_code, e.error_message),
        };
        Row {
            time: rfc3339(e.time),
            region: &e.region,
            service: e.service(),
            action: &e.name,
            resource: &e.resource,
            source_ip: &e.source_ip,
            user_agent: &e.user_agent,
            error,
            flag: e.rule.map_or("", |r| r.title.as_str()),
            severity: e.rule.map_or("", |r| r.severity.as_str()),
        }
    }
}

/// Everything the templates show. Every string of the header (the requester's reason above
/// all) is clipped like CloudTrail's: control characters visible, long values cut.
pub struct View<'a> {
    pub header: Header,
    pub from: String,
    pub to: String,
    pub total: usize,
    pub writes: usize,
    pub errors: usize,
    pub summary: Vec<SummaryRow>,
    /// Flagged events collapsed into rows, most severe first.
    pub flags: Vec<FlagRow>,
    /// Flagged events by severity.
    pub severities: Vec<(Severity, usize)>,
    pub flagged: usize,
    pub left_behind: Vec<LeftBehind>,
    /// The session's events after its access ended.
    pub after_end: Vec<AfterEnd>,
    pub coverage: Coverage,
    pub activity: Activity,
    pub portal: Vec<Row<'a>>,
    pub timeline: Vec<Row<'a>>,
    pub omitted: usize,
    pub incomplete: Vec<String>,
    /// Each account's share, when the request had several.
    pub by_account: Vec<AccountRow>,
}

impl<'a> View<'a> {
    /// `events` are the session's while the access lasted, `after_end` its events after the
    /// access ended.
    pub fn new(
        header: &'a Header,
        events: &'a [Event],
        portal: &'a [Event],
        after_end: &[Event],
        coverage: Coverage,
        max_rows: usize,
    ) -> Self {
        let shown = events.len().min(max_rows);
        let clip_opt = |v: &Option<String>| v.as_deref().map(super::clip);
        let flags = flag_rows(events);
        let mut marks = vec![(header.from, "granted")];
        if let Some(at) = header.ended_at {
            marks.push((at, "ended early"));
        }
        marks.push((header.to, "revoked"));
        View {
            header: Header {
                user: super::clip(&header.user),
                account_id: super::clip(&header.account_id),
                account_name: clip_opt(&header.account_name),
                more_accounts: header
                    .more_accounts
                    .iter()
                    .map(|(a, n)| (super::clip(a), clip_opt(n)))
                    .collect(),
                permission_set: super::clip(&header.permission_set),
                from: header.from,
                to: header.to,
                request_id: clip_opt(&header.request_id),
                reason: clip_opt(&header.reason),
                slack_link: clip_opt(&header.slack_link),
                incident: header
                    .incident
                    .as_ref()
                    .map(|(id, url)| (super::clip(id), super::clip(url))),
                ended_at: header.ended_at,
            },
            from: rfc3339(header.from),
            to: rfc3339(header.to),
            total: events.len(),
            writes: events.iter().filter(|e| e.is_write()).count(),
            errors: events.iter().filter(|e| e.is_error()).count(),
            summary: summarise(events),
            severities: by_severity(&flags),
            flagged: flags.iter().map(|f| f.count).sum(),
            flags,
            left_behind: left_behind(events),
            after_end: after_end.iter().map(AfterEnd::of).collect(),
            incomplete: coverage.incomplete.iter().map(|i| super::clip(i)).collect(),
            coverage,
            activity: activity(events, header.from, header.to, &marks),
            portal: portal.iter().take(max_rows).map(Row::new).collect(),
            timeline: events[..shown].iter().map(Row::new).collect(),
            omitted: events.len() - shown,
            by_account: by_account(header, events, after_end),
        }
    }

    /// The report for machines (`--json`, and the mail's attachment).
    pub fn twin(&self) -> Twin<'_> {
        Twin {
            events: self.total,
            flags: &self.flags,
            left_behind: &self.left_behind,
            after_end: &self.after_end,
            coverage: &self.coverage,
        }
    }

    pub fn json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(&self.twin())
    }

    /// "2 critical, 5 high, 1 low" (or "none").
    pub fn severity_line(&self) -> String {
        if self.severities.is_empty() {
            return "none".to_owned();
        }
        self.severities
            .iter()
            .map(|(s, n)| format!("{n} {}", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn subject(&self) -> String {
        let account = match (
            &self.header.account_name,
            self.header.more_accounts.is_empty(),
        ) {
            (Some(n), true) => format!("{n} ({})", self.header.account_id),
            (None, true) => self.header.account_id.clone(),
            (_, false) => format!("{} accounts", self.header.more_accounts.len() + 1),
        };
        let flags = match self.severities.first() {
            Some((s, n)) => format!(", {n} {} flag(s)", s.as_str()),
            None => String::new(),
        };
        let after = if self.after_end.is_empty() {
            String::new()
        } else {
            format!(
                ", USED AFTER ACCESS ENDED ({} events)",
                self.after_end.len()
            )
        };
        format!(
            "Break-glass report: {} as {} on {} — {} events, {} writes{flags}{after}",
            self.header.user, self.header.permission_set, account, self.total, self.writes
        )
    }

    pub fn html(&self) -> Result<String, askama::Error> {
        HtmlReport { v: self }.render()
    }

    pub fn text(&self) -> Result<String, askama::Error> {
        TextReport { v: self }.render()
    }

    /// Renders the HTML straight into `w` (no page-sized string in memory).
    pub fn write_html(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        HtmlReport { v: self }.write_into(w)
    }

    pub fn write_text(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        TextReport { v: self }.write_into(w)
    }
}

/// One CSV cell, safe for spreadsheets: always quoted, quotes doubled, and a value that a
/// spreadsheet would run as a formula prefixed with `'`.
pub fn csv_cell(out: &mut String, v: &str) {
    let formula = v.starts_with(['=', '+', '-', '@', '\t', '\r']);
    out.push('"');
    if formula {
        out.push('\'');
    }
    for c in v.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

/// The full timeline as CSV (the mail's attachment when the timeline is capped), cells made
/// safe by [`csv_cell`].
pub fn csv(events: &[Event]) -> String {
    let cell = csv_cell;
    let mut out = String::from(
        "time,region,service,action,read_only,resource,source_ip,user_agent,error_code,error_message,event_id\r\n",
    );
    for e in events {
        let read_only = match e.read_only {
            Some(true) => "true",
            Some(false) => "false",
            None => "",
        };
        let fields = [
            rfc3339(e.time),
            e.region.clone(),
            e.service().to_owned(),
            e.name.clone(),
            read_only.to_owned(),
            e.resource.clone(),
            e.source_ip.clone(),
            e.user_agent.clone(),
            e.error_code.clone(),
            e.error_message.clone(),
            e.id.clone(),
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            cell(&mut out, f);
        }
        out.push_str("\r\n");
    }
    out
}

#[derive(Template)]
#[template(path = "report.html")]
struct HtmlReport<'a> {
    v: &'a View<'a>,
}

#[derive(Template)]
#[template(path = "report.txt")]
struct TextReport<'a> {
    v: &'a View<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{ALICE, record};
    use crate::time_util::from_rfc3339;

    fn cover(incomplete: &[String]) -> Coverage {
        Coverage::new(vec!["us-east-1".into()], Some(3), incomplete)
    }

    fn header() -> Header {
        Header {
            user: "alice@example.com".into(),
            account_id: "123456789012".into(),
            account_name: Some("production".into()),
            more_accounts: Vec::new(),
            permission_set: "BreakGlassAdmin".into(),
            from: from_rfc3339("2026-11-24T08:00:00Z").unwrap(),
            to: from_rfc3339("2026-11-24T09:00:00Z").unwrap(),
            request_id: Some("bg-0123".into()),
            reason: Some("db <down>".into()),
            slack_link: None,
            incident: None,
            ended_at: None,
        }
    }

    #[test]
    fn a_session_over_several_accounts_has_a_section_for_each() {
        let mut events = Vec::new();
        for (account, name) in [
            ("123456789012", "PutObject"),
            ("210987654321", "GetObject"),
            ("210987654321", "ListBuckets"),
        ] {
            let mut e =
                Event::from_record(&record(name, "s3.amazonaws.com", ALICE, false)).unwrap();
            e.account_id = account.into();
            events.push(e);
        }
        let mut h = header();
        let single = View::new(&h, &events, &[], &[], cover(&[]), MAX_TIMELINE_ROWS);
        assert!(single.by_account.is_empty(), "one account: no sections");
        assert!(!single.text().unwrap().contains("BY ACCOUNT"));
        h.more_accounts = vec![("210987654321".into(), Some("network <b>".into()))];
        let v = View::new(&h, &events, &[], &[], cover(&[]), MAX_TIMELINE_ROWS);
        let rows: Vec<(&str, usize)> = v
            .by_account
            .iter()
            .map(|a| (a.account.as_str(), a.events))
            .collect();
        assert_eq!(
            rows,
            [
                ("123456789012 (production)", 1),
                ("210987654321 (network <b>)", 2)
            ]
        );
        let text = v.text().unwrap();
        assert!(
            text.contains("Accounts:       123456789012 (production), 210987654321 (network <b>)"),
            "{text}"
        );
        assert!(text.contains("BY ACCOUNT"), "{text}");
        assert!(v.subject().contains("on 2 accounts"), "{}", v.subject());
        let html = v.html().unwrap();
        assert!(html.contains("By account (2)"));
        assert!(html.contains("network &#60;b&#62;"), "escaped");
        assert_eq!(v.total, 3, "one session: the events of every account");
    }

    #[test]
    fn html_escapes_hostile_strings() {
        let mut r = record("PutObject", "s3.amazonaws.com", ALICE, false);
        r["userAgent"] = serde_json::json!("<script>alert(1)</script>");
        r["errorCode"] = serde_json::json!("AccessDenied");
        r["errorMessage"] = serde_json::json!("<img src=x onerror=alert(2)> & \"quoted\"");
        let events = vec![Event::from_record(&r).unwrap()];
        let h = header();
        let v = View::new(&h, &events, &[], &[], cover(&[]), MAX_TIMELINE_ROWS);
        let html = v.html().unwrap();
        assert!(!html.contains("<script>alert"), "raw script in HTML");
        assert!(!html.contains("<img src=x"), "raw img in HTML");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{html}"
        );
        assert!(html.contains("123456789012") && html.contains("production"));
        assert!(html.contains("CloudTrail can lag"));
        let text = v.text().unwrap();
        assert!(
            text.contains("<script>alert(1)</script>"),
            "text keeps the raw string"
        );
        assert!(text.contains("PutObject"));
        assert!(v.subject().contains("1 events, 1 writes"));
    }

    #[test]
    fn a_reason_cannot_forge_lines_of_the_text_report() {
        let mut h = header();
        h.reason = Some(format!(
            "db down\nFLAGGED EVENTS\n  2026-11-24T08:00:00Z  [fine] nothing to see\u{2028}\u{202e}{}",
            "x".repeat(400)
        ));
        h.user = "alice\r\nWho: mallory".into();
        let incomplete = ["a\nb".to_owned()];
        let v = View::new(&h, &[], &[], &[], cover(&incomplete), MAX_TIMELINE_ROWS);
        let text = v.text().unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("FLAGGED EVENTS") || l.starts_with("Who: mallory")),
            "{text}"
        );
        let reason = lines.iter().find(|l| l.starts_with("Reason:")).unwrap();
        assert!(reason.contains("db down\\nFLAGGED EVENTS"), "{reason}");
        assert!(
            reason.contains("\\u{2028}") && reason.contains("\\u{202e}"),
            "{reason}"
        );
        assert!(
            reason.contains("more characters]"),
            "cut with a marker: {reason}"
        );
        assert!(text.contains("  - a\\nb"), "{text}");
        assert!(!v.subject().contains('\n'));
    }

    #[test]
    fn caps_the_timeline() {
        let one =
            Event::from_record(&record("ListBuckets", "s3.amazonaws.com", ALICE, true)).unwrap();
        let events = vec![one; MAX_TIMELINE_ROWS + 5];
        let h = header();
        let v = View::new(&h, &events, &[], &[], cover(&[]), MAX_TIMELINE_ROWS);
        assert_eq!(v.timeline.len(), MAX_TIMELINE_ROWS);
        assert_eq!(v.omitted, 5);
        assert!(
            v.text()
                .unwrap()
                .contains("5 more events are not shown here")
        );
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let mut r = record("PutObject", "s3.amazonaws.com", ALICE, false);
        r["userAgent"] = serde_json::json!("=HYPERLINK(\"http://evil\")");
        r["errorMessage"] = serde_json::json!("a,b\nc");
        let events = vec![Event::from_record(&r).unwrap()];
        let out = csv(&events);
        let line = out.lines().nth(1).unwrap();
        assert!(
            line.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
            "{line}"
        );
        assert!(
            out.contains("\"a,b\\nc\""),
            "a newline stays visible, not a new row"
        );
        assert!(out.starts_with("time,region,service,action"));
    }

    #[test]
    fn says_when_collection_was_incomplete() {
        let h = header();
        let incomplete = vec!["us-east-1: throttled".to_owned()];
        let v = View::new(&h, &[], &[], &[], cover(&incomplete), MAX_TIMELINE_ROWS);
        assert!(v.html().unwrap().contains("us-east-1: throttled"));
        assert!(v.text().unwrap().contains("INCOMPLETE"));
    }
}
