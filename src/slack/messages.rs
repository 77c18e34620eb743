//! The follow-up messages of a request's conversation: granted (with **End access now** and
//! **Extend**), revoked, and the report's summary. All user-supplied text is escaped.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::escape;
use super::payload::{END_ACCESS_ACTION, EXTEND_ACCESS_ACTION};
use crate::time_util::hhmm;

/// What the messages say about a request.
pub struct About<'a> {
    pub request_id: &'a str,
    pub user: &'a str,
    /// The account ids, plain (`111111111111, 222222222222`).
    pub account_ids: String,
    /// The accounts in mrkdwn, named where the policy names them ([`super::accounts_mrkdwn`]).
    pub accounts: String,
    pub permission_set: &'a str,
}

impl About<'_> {
    fn target(&self) -> String {
        format!("{} as *{}*", self.accounts, escape(self.permission_set))
    }
}

/// `<!date^…>` renders in each reader's time zone; the fallback is UTC.
pub fn slack_time(t: OffsetDateTime) -> String {
    format!("<!date^{}^{{time}}|{}>", t.unix_timestamp(), hhmm(t))
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

pub fn granted(a: &About<'_>, until: OffsetDateTime) -> Value {
    let text = format!(
        ":unlock: {} has access to {} until {}.",
        escape(a.user),
        a.target(),
        slack_time(until)
    );
    json!({
        "text": text,
        "blocks": [
            section(text.clone()),
            {"type": "actions", "block_id": "lease", "elements": [
                {"type": "button", "action_id": END_ACCESS_ACTION, "value": a.request_id, "style": "danger",
                 "text": {"type": "plain_text", "text": "End access now"},
                 "confirm": {"title": {"type": "plain_text", "text": "End access now?"},
                             "text": {"type": "plain_text", "text": "The assignment is removed at once, and the access cannot be extended any more."},
                             "confirm": {"type": "plain_text", "text": "End access"},
                             "deny": {"type": "plain_text", "text": "Keep it"}}},
                {"type": "button", "action_id": EXTEND_ACCESS_ACTION, "value": a.request_id,
                 "text": {"type": "plain_text", "text": "Extend"}}
            ]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("Request `{}`", a.request_id)}]}
        ]
    })
}

pub fn revoked(a: &About<'_>, why: &str) -> Value {
    let text = format!(
        ":lock: Access to {} for {} has ended ({}).",
        a.target(),
        escape(a.user),
        escape(why)
    );
    json!({"text": text, "blocks": [section(text.clone())]})
}

/// This request's lease ended, but the assignment stays for another live request of the
/// same person (a shared lease): say so, rather than that access has ended.
pub fn continues(a: &About<'_>, why: &str, other: &str, until: Option<OffsetDateTime>) -> Value {
    let until = until
        .map(|t| format!(" until {}", slack_time(t)))
        .unwrap_or_default();
    let text = format!(
        ":hourglass: Request `{}` for {} on {} has ended ({}), but access continues under request `{}`{until}.",
        escape(a.request_id),
        escape(a.user),
        a.target(),
        escape(why),
        escape(other)
    );
    json!({"text": text, "blocks": [section(text.clone())]})
}

/// Revoke gave up; `still` names the accounts still assigned when the request has several.
pub fn revoke_failed(a: &About<'_>, still: Option<&str>) -> Value {
    let text = format!(
        ":rotating_light: Access to {} for {} could *not* be revoked{}. The security team has been alerted; remove the assignment by hand.",
        a.target(),
        escape(a.user),
        still.map(|s| format!(" in {s}")).unwrap_or_default()
    );
    json!({"text": text, "blocks": [section(text.clone())]})
}

/// Access is gone, but the deny on the user's live sessions could not be put in place.
pub fn sessions_not_ended(a: &About<'_>) -> Value {
    let text = format!(
        ":rotating_light: Access to {} for {} was removed, but their live sessions could *not* be ended. The security team has been alerted.",
        a.target(),
        escape(a.user)
    );
    json!({"text": text, "blocks": [section(text.clone())]})
}

/// The reconciler's summary for its channel: one line per assignment it acted on (or
/// failed to), already written as Slack text.
pub fn reconciled(lines: &[String]) -> Value {
    let text = format!(
        ":broom: The break-glass reconciler acted on {} assignment(s):\n{}",
        lines.len(),
        lines.join("\n")
    );
    json!({"text": text, "blocks": [section(text.clone())]})
}

/// One row of flags in the summary.
pub struct Flagged<'a> {
    pub severity: &'a str,
    pub title: &'a str,
    pub service: &'a str,
    pub action: &'a str,
    pub count: usize,
    pub failed: bool,
}

/// What the report's summary in Slack says.
pub struct ReportSummary<'a> {
    pub events: usize,
    pub writes: usize,
    pub errors: usize,
    /// "2 critical, 5 high" (or "none").
    pub severities: String,
    /// The flag rows, most severe first.
    pub flagged: &'a [Flagged<'a>],
    pub left_behind: usize,
    pub after_end: usize,
    pub recipients: &'a str,
    pub incomplete: bool,
}

pub fn reported(a: &About<'_>, r: &ReportSummary<'_>) -> Value {
    let flagged: usize = r.flagged.iter().map(|f| f.count).sum();
    let mut text = format!(
        ":page_facing_up: Report on {} for {} sent to {}: {} events, {} writes, {} errors, {flagged} flagged ({}).",
        a.target(),
        escape(a.user),
        escape(r.recipients),
        r.events,
        r.writes,
        r.errors,
        escape(&r.severities)
    );
    if r.after_end > 0 {
        text += &format!(
            "\n:rotating_light: *Critical: the session's credentials were used {} time(s) after the access ended.*",
            r.after_end
        );
    }
    if r.left_behind > 0 {
        text += &format!(
            "\n:warning: {} thing(s) the session created were left behind (see the report).",
            r.left_behind
        );
    }
    for f in r.flagged.iter().take(5) {
        text += &format!(
            "\n• *{}* {}: {}:{} ×{}{}",
            escape(f.severity),
            escape(f.title),
            escape(f.service),
            escape(f.action),
            f.count,
            if f.failed { " (failed)" } else { "" }
        );
    }
    if r.flagged.len() > 5 {
        text += &format!("\n• … and {} more rows in the report", r.flagged.len() - 5);
    }
    if r.incomplete {
        text += "\n:warning: CloudTrail could not be read completely; the report says which parts are missing.";
    }
    json!({"text": text, "blocks": [section(text.clone())]})
}

/// One event of the session after its access ended, for the thread.
pub struct UsedAfter<'a> {
    pub time: OffsetDateTime,
    pub service: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    pub source_ip: &'a str,
}

/// The look for use after the end: what it found (critical), or that it found nothing.
pub fn after_end(a: &About<'_>, used: &[UsedAfter<'_>], until: OffsetDateTime) -> Value {
    if used.is_empty() {
        let text = format!(
            ":white_check_mark: No use of {} by {} after the access ended (checked until {}, when every credential it issued had expired).",
            a.target(),
            escape(a.user),
            slack_time(until)
        );
        return json!({"text": text, "blocks": [section(text.clone())]});
    }
    let mut text = format!(
        ":rotating_light: *Critical: {} used {} {} time(s) after the access ended.* Credentials issued before the end stayed valid; the security team has the details.",
        escape(a.user),
        a.target(),
        used.len()
    );
    for u in used.iter().take(5) {
        text += &format!(
            "\n• {} {}:{} {} from {}",
            hhmm(u.time),
            escape(u.service),
            escape(u.action),
            escape(u.resource),
            escape(u.source_ip)
        );
    }
    if used.len() > 5 {
        text += &format!("\n• … and {} more", used.len() - 5);
    }
    json!({"text": text, "blocks": [section(text.clone())]})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about() -> About<'static> {
        About {
            request_id: "bg-0123",
            user: "alice@example.com",
            account_ids: "123456789012".into(),
            accounts: format!("*{}* (`123456789012`)", escape("prod <!channel>")),
            permission_set: "Admin&Co",
        }
    }

    #[test]
    fn granted_has_the_lease_buttons_and_escapes() {
        let until = crate::time_util::from_rfc3339("2026-11-24T09:30:00Z").unwrap();
        let m = granted(&about(), until);
        let text = m["text"].as_str().unwrap();
        assert!(
            text.contains("prod &lt;!channel&gt;") && text.contains("Admin&amp;Co"),
            "{text}"
        );
        assert!(
            text.contains("<!date^1795512600^{time}|09:30 UTC>"),
            "{text}"
        );
        let buttons = &m["blocks"][1]["elements"];
        assert_eq!(buttons[0]["action_id"], "end_access");
        assert_eq!(buttons[0]["value"], "bg-0123");
        assert_eq!(buttons[1]["action_id"], "extend_access");
        assert_eq!(buttons[1]["value"], "bg-0123");
    }

    #[test]
    fn report_summary_lists_flag_rows_and_the_worst_news() {
        let flagged: Vec<Flagged> = (0..7)
            .map(|_| Flagged {
                severity: "high",
                title: "IAM access key created",
                service: "iam",
                action: "<b>",
                count: 2,
                failed: true,
            })
            .collect();
        let m = reported(
            &about(),
            &ReportSummary {
                events: 10,
                writes: 3,
                errors: 7,
                severities: "14 high".into(),
                flagged: &flagged,
                left_behind: 1,
                after_end: 2,
                recipients: "sec@example.com",
                incomplete: true,
            },
        );
        let text = m["text"].as_str().unwrap();
        assert!(
            text.contains("10 events, 3 writes, 7 errors, 14 flagged (14 high)"),
            "{text}"
        );
        assert!(
            text.contains("used 2 time(s) after the access ended"),
            "{text}"
        );
        assert!(text.contains("left behind"));
        assert!(text.contains("&lt;b&gt;") && !text.contains("<b>"));
        assert!(text.contains("(failed)"));
        assert!(text.contains("and 2 more rows"));
        assert!(text.contains("could not be read completely"));
        let until = crate::time_util::from_rfc3339("2026-11-24T10:00:00Z").unwrap();
        let none = after_end(&about(), &[], until);
        assert!(none["text"].as_str().unwrap().contains("No use of"));
        let some = after_end(
            &about(),
            &[UsedAfter {
                time: until,
                service: "s3",
                action: "ListBuckets",
                resource: "",
                source_ip: "198.51.100.7",
            }],
            until,
        );
        assert!(
            some["text"]
                .as_str()
                .unwrap()
                .contains("1 time(s) after the access ended")
        );
    }
}
