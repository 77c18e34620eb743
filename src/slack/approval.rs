//! The approval step's messages: the approval request (in the rule's channel and to each
//! approver named by Slack id) with **Approve** and **Deny**, the same message once decided
//! (no buttons), and what the requester hears. All user-supplied text is escaped.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::escape;
use super::messages::slack_time;
use super::payload::{APPROVE_ACTION, DENY_ACTION};
use crate::domain::approval::ApprovalState;
use crate::domain::request::RequestRecord;
use crate::policy::Policy;

/// What the requester hears at once when their request needs approval.
pub fn asked(rec: &RequestRecord, why: &str) -> String {
    let within = rec
        .approval
        .timeout
        .map(|t| format!(" If nobody decides within {t}, nothing is granted."))
        .unwrap_or_default();
    format!(
        "Approval needed: {}. The approvers have been asked (request `{}`); you will hear here when one decides.{within}",
        escape(why),
        rec.id
    )
}

/// The request, as the approvers read it.
fn summary(rec: &RequestRecord, policy: &Policy, permission_set: &str) -> String {
    let account = super::accounts_mrkdwn(&rec.accounts(), policy);
    let mut text = format!(
        "*Break-glass approval needed*\n<@{}> asks for *{}* on {account} for {}.",
        escape(&rec.slack_user_id),
        escape(permission_set),
        rec.duration
    );
    if let Some(reason) = &rec.reason {
        text.push_str(&format!(
            "\n*Reason:* {}",
            escape(crate::domain::truncate(reason, 500))
        ));
    }
    match (&rec.incident_id, &rec.incident_url) {
        (Some(id), Some(url)) => {
            text.push_str(&format!("\n*Incident:* <{}|{}>", escape(url), escape(id)))
        }
        (Some(id), None) => text.push_str(&format!("\n*Incident:* {}", escape(id))),
        _ => {}
    }
    if let Some(why) = &rec.approval.why {
        text.push_str(&format!(
            "\n*Why approval:* {}",
            escape(crate::domain::truncate(why, 500))
        ));
    }
    text
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

/// The approval request with **Approve** and **Deny** (value: the request id).
pub fn request(rec: &RequestRecord, policy: &Policy, permission_set: &str) -> Value {
    let id = rec.id.as_str();
    let expires = rec
        .approval
        .timeout
        .map(|t| {
            let until = rec.requested_at + time::Duration::seconds(t.as_secs() as i64);
            format!(
                "Expires {} if nobody decides; the requester cannot approve their own request.",
                slack_time(until)
            )
        })
        .unwrap_or_default();
    json!({
        "text": format!("Break-glass approval needed: {} asks for {permission_set}", rec.slack_user_id),
        "blocks": [
            section(summary(rec, policy, permission_set)),
            {"type": "context", "elements": [{"type": "mrkdwn", "text": expires}]},
            {"type": "actions", "block_id": "approval", "elements": [
                {"type": "button", "action_id": APPROVE_ACTION, "value": id, "style": "primary",
                 "text": {"type": "plain_text", "text": "Approve"}},
                {"type": "button", "action_id": DENY_ACTION, "value": id, "style": "danger",
                 "text": {"type": "plain_text", "text": "Deny"}},
            ]},
        ],
    })
}

/// One line saying how the approval ended.
pub fn outcome_line(state: ApprovalState, by: Option<&str>, at: OffsetDateTime) -> String {
    let who = by
        .map(|b| format!(" by <@{}>", escape(b)))
        .unwrap_or_default();
    match state {
        ApprovalState::Approved => format!(
            ":white_check_mark: Approved{who} at {}: access is being granted.",
            slack_time(at)
        ),
        ApprovalState::Denied => format!(
            ":no_entry: Denied{who} at {}: nothing was granted.",
            slack_time(at)
        ),
        ApprovalState::Expired => format!(
            ":hourglass: Expired at {}: nobody decided in time; nothing was granted.",
            slack_time(at)
        ),
        ApprovalState::Pending => "Waiting for approval.".to_owned(),
    }
}

/// The approval request once decided: the same summary, the outcome, no buttons.
pub fn decided(rec: &RequestRecord, policy: &Policy, permission_set: &str, line: &str) -> Value {
    json!({
        "text": line,
        "blocks": [
            section(summary(rec, policy, permission_set)),
            section(line.to_owned()),
        ],
    })
}

/// What the requester hears once the approval is decided.
pub fn for_requester(rec: &RequestRecord, line: &str) -> Value {
    json!({"text": format!("Your break-glass request `{}`: {line}", rec.id)})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::store::tests::sample;
    use crate::domain::Duration;
    use crate::domain::approval::Approval;

    #[test]
    fn the_request_has_both_buttons_and_escapes_what_users_wrote() {
        let policy = Policy::parse(
            "version = 1\n[[rule]]\nname = \"oncall\"\neffect = \"allow\"\nslack_users = [\"*\"]\naccounts = [\"*\"]\npermission_sets = [\"*\"]\ndefault_duration = \"1h\"\nmax_duration = \"1h\"\n",
        )
        .unwrap();
        let mut rec = sample();
        rec.reason = Some("<!channel> db down & more".into());
        rec.approval = Approval::pending("you are not on call".into(), Duration::from_secs(1800));
        let m = request(&rec, &policy, "BreakGlassAdmin");
        let text = m["blocks"].to_string();
        assert!(
            text.contains("&lt;!channel&gt; db down &amp; more"),
            "{text}"
        );
        assert!(!text.contains("<!channel>"));
        assert!(text.contains("you are not on call"));
        let buttons: Vec<(&str, &str)> = m["blocks"][2]["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["action_id"].as_str().unwrap(),
                    b["value"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            buttons,
            [
                ("approve_request", rec.id.as_str()),
                ("deny_request", rec.id.as_str())
            ]
        );
        // A request for several accounts names every one of them to the approvers.
        let mut several = rec.clone();
        several.more_accounts = vec![crate::domain::request::Part::new(
            crate::domain::AccountId::parse("210987654321").unwrap(),
        )];
        let text = request(&several, &policy, "BreakGlassAdmin")["blocks"].to_string();
        assert!(text.contains("`123456789012`, `210987654321`"), "{text}");
        let line = outcome_line(ApprovalState::Denied, Some("U0LEAD"), rec.requested_at);
        let d = decided(&rec, &policy, "BreakGlassAdmin", &line);
        assert!(
            !d.to_string().contains("approve_request"),
            "no buttons once decided"
        );
        assert!(d.to_string().contains("Denied by <@U0LEAD>"));
        assert!(asked(&rec, "you are not on call").contains("30m"));
    }
}
