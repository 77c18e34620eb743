//! Showing an approval's outcome wherever its request was shown: the message in the rule's
//! channel and each copy sent to an approver directly are `chat.update`d (buttons gone), so
//! nobody is left looking at an Approve button of a decided request. Shared by the webhook
//! (a decision) and the worker (an expiry, or a decision made while the copies were being
//! sent). Best effort: the decision is recorded whatever Slack says.

use crate::domain::approval::Posted;
use crate::domain::request::RequestRecord;
use crate::policy::Policy;
use crate::slack::api::SlackApi;
use crate::slack::approval as message;

/// Every message asking for `rec`'s approval, replaced by the decided one carrying `line`.
pub async fn show_outcome(slack: &SlackApi, policy: &Policy, rec: &RequestRecord, line: &str) {
    let ps = rec
        .permission_set_name
        .as_deref()
        .unwrap_or(rec.permission_set_arn.as_str());
    let body = message::decided(rec, policy, ps, line);
    let channel = match (&rec.approval.channel, &rec.approval.ts) {
        (Some(channel), Some(ts)) => Some(Posted {
            channel: channel.clone(),
            ts: ts.clone(),
        }),
        _ => None,
    };
    let updates = channel
        .iter()
        .chain(&rec.approval.copies)
        .map(|at| async {
            if let Err(e) = slack.update_message(&at.channel, &at.ts, &body).await {
                tracing::warn!(error = %e, channel = at.channel.as_str(), "could not update an approval message");
            }
        });
    futures_util::future::join_all(updates).await;
}

/// [`show_outcome`], and the requester told in a direct message.
pub async fn announce_outcome(slack: &SlackApi, policy: &Policy, rec: &RequestRecord, line: &str) {
    let body = message::for_requester(rec, line);
    let tell = async {
        if let Err(e) = slack.post_message(&rec.slack_user_id, &body, None).await {
            tracing::warn!(error = %e, "could not tell the requester");
        }
    };
    tokio::join!(show_outcome(slack, policy, rec, line), tell);
}
