//! The review step's messages: the review request in the review channel (with **Reviewed —
//! fine** and **Needs follow-up**), the same message once reviewed (no buttons), the
//! follow-up note's modal, and the reminder and escalation. All user-supplied text is escaped.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::escape;
use super::messages::{About, slack_time};
use super::payload::{REVIEW_FOLLOW_UP_ACTION, REVIEW_NOTE_CALLBACK, REVIEW_OK_ACTION};
use crate::domain::request::RequestRecord;
use crate::domain::review::{Digest, Outcome};
use crate::policy::Policy;

/// What every review message says about the request.
pub fn about<'a>(rec: &'a RequestRecord, policy: &'a Policy) -> About<'a> {
    About {
        request_id: rec.id.as_str(),
        user: &rec.sso_user_name,
        account_ids: rec.accounts_text(),
        accounts: super::accounts_mrkdwn(&rec.accounts(), policy),
        permission_set: rec
            .permission_set_name
            .as_deref()
            .unwrap_or(rec.permission_set_arn.as_str()),
    }
}

/// How the use ended, for the reviewer.
fn ended(rec: &RequestRecord) -> String {
    if rec.revoke_failed_at.is_some() {
        ":rotating_light: revoke *failed* (removed by hand or by the reconciler)".to_owned()
    } else if let Some(by) = &rec.ended_by {
        format!("ended early by <@{}>", escape(by))
    } else {
        "expired".to_owned()
    }
}

/// The facts a review message shows (`digest` from the record, or an empty one).
pub fn facts<'a>(rec: &'a RequestRecord, digest: &'a Digest) -> Facts<'a> {
    Facts {
        requester: &rec.slack_user_id,
        reason: rec.reason.as_deref(),
        granted_at: rec.granted_at,
        revoked_at: rec.revoked_at,
        ended: ended(rec),
        digest,
        incident: rec
            .incident_id
            .as_deref()
            .map(|id| (id, rec.incident_url.as_deref())),
        approved_by: rec.approval.by.as_deref().filter(|_| {
            rec.approval.state == Some(crate::domain::approval::ApprovalState::Approved)
        }),
        thread_link: rec
            .notify_channel
            .as_ref()
            .map(|c| channel_link(&rec.team_id, c)),
    }
}

pub fn channel_link(team: &str, channel: &str) -> String {
    format!("https://slack.com/app_redirect?team={team}&channel={channel}")
}

/// The longest follow-up note a reviewer may write.
pub const MAX_NOTE_CHARS: usize = 2000;

/// What a reviewer is told about a use.
pub struct Facts<'a> {
    pub requester: &'a str,
    pub reason: Option<&'a str>,
    pub granted_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    /// "expired", "ended early by <@U…>", "revoke failed: removed by hand".
    pub ended: String,
    pub digest: &'a Digest,
    /// The PagerDuty incident the request named: (id, its link if any).
    pub incident: Option<(&'a str, Option<&'a str>)>,
    /// Who approved the request before it was granted.
    pub approved_by: Option<&'a str>,
    /// The request's thread, where the report's summary is.
    pub thread_link: Option<String>,
}

/// Slack refuses a section whose text is longer than 3 000 characters (and with it the whole
/// message): what the requester or a reviewer wrote is cut, escaped, to fit.
const MAX_SECTION_CHARS: usize = 2_900;

fn section(text: String) -> Value {
    let text = match text.char_indices().nth(MAX_SECTION_CHARS) {
        Some((i, _)) => format!("{}… [cut]", &text[..i]),
        None => text,
    };
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn lasted(f: &Facts<'_>) -> String {
    match (f.granted_at, f.revoked_at) {
        (Some(g), Some(r)) if r >= g => {
            let secs = (r - g).whole_seconds().max(0) as u64;
            format!(
                "{} to {} ({})",
                slack_time(g),
                slack_time(r),
                crate::domain::Duration::from_secs(secs.max(1))
            )
        }
        _ => "never granted".to_owned(),
    }
}

/// The body shared by the review request and the reviewed message.
fn body(a: &About<'_>, f: &Facts<'_>) -> Vec<Value> {
    let label = if a.account_ids.contains(", ") {
        "Accounts"
    } else {
        "Account"
    };
    let account = &a.accounts;
    let mut lines = vec![
        format!(
            ":mag: *Review this use of break glass* by <@{}> ({})",
            escape(f.requester),
            escape(a.user)
        ),
        format!(
            "*{label}:* {account}   *Permission set:* {}",
            escape(a.permission_set)
        ),
        format!(
            "*Reason:* {}",
            f.reason
                .map(escape)
                .unwrap_or_else(|| "_none given_".into())
        ),
        format!("*When:* {}   *Ended:* {}", lasted(f), f.ended),
    ];
    match f.incident {
        Some((id, Some(url))) => {
            lines.push(format!("*Incident:* <{}|{}>", escape(url), escape(id)))
        }
        Some((id, None)) => lines.push(format!("*Incident:* {}", escape(id))),
        None => {}
    }
    if let Some(by) = f.approved_by {
        lines.push(format!("*Approved by:* <@{}>", escape(by)));
    }
    lines.extend([format!(
        "*Flags:* {} in {} events",
        f.digest.severities(),
        f.digest.events
    )]);
    for t in &f.digest.top {
        lines.push(format!("    • {}", escape(t)));
    }
    if f.digest.left_behind > 0 {
        lines.push(format!(
            ":warning: *{} thing(s) left behind* (created and not removed)",
            f.digest.left_behind
        ));
    }
    if f.digest.after_end > 0 {
        lines.push(format!(
            ":rotating_light: *{} event(s) after the access ended*",
            f.digest.after_end
        ));
    }
    let mut report = format!("Full report: mailed to {}", escape(&f.digest.mailed_to));
    if let Some(link) = &f.thread_link {
        report += &format!("; summary in <{link}|the request's thread>");
    }
    vec![
        section(lines.join("\n")),
        json!({"type": "context", "elements": [
            {"type": "mrkdwn", "text": format!("{report}. Request `{}`", a.request_id)}
        ]}),
    ]
}

fn fallback(a: &About<'_>, f: &Facts<'_>) -> String {
    format!(
        "Review break glass by {} on {}: flags {}",
        a.user,
        a.account_ids,
        f.digest.severities()
    )
}

/// The review request: the use, and the two buttons.
pub fn request(a: &About<'_>, f: &Facts<'_>) -> Value {
    let mut blocks = body(a, f);
    blocks.push(json!({"type": "actions", "block_id": "review", "elements": [
        {"type": "button", "action_id": REVIEW_OK_ACTION, "value": a.request_id, "style": "primary",
         "text": {"type": "plain_text", "text": "Reviewed — fine"}},
        {"type": "button", "action_id": REVIEW_FOLLOW_UP_ACTION, "value": a.request_id,
         "text": {"type": "plain_text", "text": "Needs follow-up"}}
    ]}));
    json!({"text": fallback(a, f), "blocks": blocks})
}

/// One line for the outcome: who, when, and the note.
pub fn outcome_line(outcome: Outcome, by: &str, at: OffsetDateTime, note: Option<&str>) -> String {
    let icon = match outcome {
        Outcome::Fine => ":white_check_mark:",
        Outcome::FollowUp => ":triangular_flag_on_post:",
    };
    let label = match outcome {
        Outcome::Fine => "Reviewed — fine",
        Outcome::FollowUp => "Needs follow-up",
    };
    let note = note
        .map(|n| format!(": “{}”", escape(n)))
        .unwrap_or_default();
    format!(
        "{icon} *{label}* by <@{}> {}{note}",
        escape(by),
        slack_time(at)
    )
}

/// The outcome, alone (for the request's thread).
pub fn outcome_message(line: &str) -> Value {
    json!({"text": crate::domain::truncate(line, MAX_SECTION_CHARS), "blocks": [section(line.to_owned())]})
}

/// The review message once reviewed: the same use, the outcome, no buttons.
pub fn reviewed(a: &About<'_>, f: &Facts<'_>, outcome_line: &str) -> Value {
    let mut blocks = body(a, f);
    blocks.push(section(outcome_line.to_owned()));
    json!({"text": format!("{} (reviewed)", fallback(a, f)), "blocks": blocks})
}

/// The follow-up note's modal (`private_metadata` = the request id).
pub fn note_modal(request_id: &str) -> Value {
    json!({
        "type": "modal",
        "callback_id": REVIEW_NOTE_CALLBACK,
        "private_metadata": request_id,
        "title": {"type": "plain_text", "text": "Needs follow-up"},
        "submit": {"type": "plain_text", "text": "Record"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("What needs following up on request `{request_id}`?")}},
            {"type": "input", "block_id": "note", "label": {"type": "plain_text", "text": "Note"},
             "element": {"type": "plain_text_input", "action_id": "note", "multiline": true,
                         "min_length": 1, "max_length": MAX_NOTE_CHARS}}
        ]
    })
}

/// In the review message's thread: still waiting.
pub fn reminder(reviewers: &str, since: OffsetDateTime) -> Value {
    let text = format!(
        ":alarm_clock: This use of break glass has waited for review since {}. {reviewers}: please review it.",
        slack_time(since)
    );
    json!({"text": text, "blocks": [section(text.clone())]})
}

/// To the escalation channel or mention: twice the review time has passed.
pub fn escalation(
    a: &About<'_>,
    mention: Option<&str>,
    since: OffsetDateTime,
    link: Option<&str>,
) -> Value {
    let link = link
        .map(|l| format!(" (<{l}|the review message>)"))
        .unwrap_or_default();
    let text = format!(
        ":rotating_light: {}Break glass by {} on `{}` has waited for review since {}{link}. Request `{}`.",
        mention.map(|m| format!("{m} ")).unwrap_or_default(),
        escape(a.user),
        a.account_ids,
        slack_time(since),
        a.request_id
    );
    json!({"text": text, "blocks": [section(text.clone())]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_cannot_push_the_message_past_slacks_limit() {
        // A reason of 500 `&` escapes to 2 500 characters; with the flags it would pass
        // Slack's 3 000 per section, and Slack would refuse the whole review request.
        let mut rec = crate::aws::store::tests::sample();
        rec.reason = Some("&".repeat(500));
        let digest = Digest {
            top: vec!["<b>".repeat(100); 3],
            ..Digest::default()
        };
        let policy = Policy::parse(
            "version = 1\n[[rule]]\nname = \"a\"\neffect = \"allow\"\nslack_users = [\"*\"]\naccounts = [\"*\"]\npermission_sets = [\"*\"]\ndefault_duration = \"1h\"\nmax_duration = \"1h\"\n",
        )
        .unwrap();
        let long_note = "<".repeat(2_000);
        let line = outcome_line(
            Outcome::FollowUp,
            "U0REVIEWER",
            rec.requested_at,
            Some(&long_note),
        );
        for message in [
            request(&about(&rec, &policy), &facts(&rec, &digest)),
            reviewed(&about(&rec, &policy), &facts(&rec, &digest), &line),
            outcome_message(&line),
        ] {
            for block in message["blocks"].as_array().unwrap() {
                if let Some(text) = block["text"]["text"].as_str() {
                    assert!(
                        text.chars().count() <= 3_000,
                        "{} characters",
                        text.chars().count()
                    );
                }
            }
        }
        let body = request(&about(&rec, &policy), &facts(&rec, &digest)).to_string();
        assert!(
            body.contains("&amp;&amp;") && !body.contains("<b>"),
            "escaped"
        );
    }
}
