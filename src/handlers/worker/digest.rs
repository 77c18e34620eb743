//! The weekly digest (scheduled, or invoked by hand with another week's end): the week's
//! uses by account and rule, how many were reviewed, are pending or need follow-up, the
//! median time to review, the most flagged sessions, and what ended badly, posted to the
//! review channel (else the reconciler's). Read through the by-day index: seven Queries.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use super::Worker;
use crate::domain::approval::ApprovalState;
use crate::domain::request::RequestRecord;
use crate::domain::review::Outcome;
use crate::error::Error;
use crate::policy::Policy;
use crate::slack::escape;
use crate::time_util::rfc3339;

/// The week's numbers (the task's output, and the message's content).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Digest {
    pub from: String,
    pub until: String,
    pub uses: usize,
    /// Uses by account (with its friendly name when the policy has one).
    pub by_account: BTreeMap<String, usize>,
    pub by_rule: BTreeMap<String, usize>,
    pub reviewed: usize,
    pub pending: usize,
    pub follow_ups: usize,
    pub median_seconds_to_review: Option<i64>,
    /// The most flagged sessions, worst first: (request id, "1 critical, 2 high").
    pub most_flagged: Vec<(String, String)>,
    pub ended_early: usize,
    pub revoke_failures: usize,
    /// Uses whose access the reconciler took away (a dead execution, a late grant).
    pub reconciler_revoked: usize,
    /// Requests that waited for an approver: approved (and counted as uses), and denied or
    /// expired (nothing granted: not uses).
    pub approved: usize,
    pub not_approved: usize,
    /// Where it was posted (`None`: no channel to post to).
    pub posted_to: Option<String>,
}

/// The digest of `requests` (the week's), pure.
pub fn digest_of(
    requests: &[RequestRecord],
    policy: &Policy,
    from: OffsetDateTime,
    until: OffsetDateTime,
) -> Digest {
    let mut d = Digest {
        from: rfc3339(from),
        until: rfc3339(until),
        ..Digest::default()
    };
    let mut waits = Vec::new();
    for r in requests {
        match r.approval.state {
            Some(ApprovalState::Denied | ApprovalState::Expired) => {
                d.not_approved += 1;
                continue;
            }
            // Still waiting: not a use (yet).
            Some(ApprovalState::Pending) => continue,
            _ => {}
        }
        d.uses += 1;
        d.approved += usize::from(r.approval.state.is_some());
        for a in r.accounts() {
            let account = match policy.account_name(&a) {
                Some(n) => format!("{n} ({})", a.as_str()),
                None => a.as_str().to_owned(),
            };
            *d.by_account.entry(account).or_default() += 1;
        }
        *d.by_rule.entry(r.rule.clone()).or_default() += 1;
        match r.review.outcome {
            Some(o) => {
                d.reviewed += 1;
                if o == Outcome::FollowUp {
                    d.follow_ups += 1;
                }
                if let (Some(reported), Some(at)) = (r.reported_at, r.review.at) {
                    waits.push((at - reported).whole_seconds());
                }
            }
            None if r.review.pending => d.pending += 1,
            None => {}
        }
        d.ended_early += usize::from(r.ended_by.is_some());
        d.revoke_failures += usize::from(r.revoke_failed_at.is_some());
        d.reconciler_revoked += usize::from(r.reconciled_at.is_some());
    }
    waits.sort_unstable();
    d.median_seconds_to_review = match waits.len() {
        0 => None,
        n if n % 2 == 1 => Some(waits[n / 2]),
        n => Some((waits[n / 2 - 1] + waits[n / 2]) / 2),
    };
    let mut flagged: Vec<&RequestRecord> = requests
        .iter()
        .filter(|r| {
            r.digest
                .as_ref()
                .is_some_and(|g| g.flags.iter().any(|n| *n > 0))
        })
        .collect();
    flagged.sort_by_key(|r| std::cmp::Reverse(r.digest.as_ref().map(|g| g.flags)));
    d.most_flagged = flagged
        .iter()
        .take(3)
        .map(|r| {
            (
                r.id.as_str().to_owned(),
                r.digest
                    .as_ref()
                    .map(|g| g.severities())
                    .unwrap_or_default(),
            )
        })
        .collect();
    d
}

/// The digest as Slack text.
fn message(d: &Digest) -> serde_json::Value {
    let list = |m: &BTreeMap<String, usize>| {
        if m.is_empty() {
            "none".to_owned()
        } else {
            m.iter()
                .map(|(k, n)| format!("{} ×{n}", escape(k)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let median = d
        .median_seconds_to_review
        .map(|s| crate::domain::Duration::from_secs(s.max(1) as u64).to_string())
        .unwrap_or_else(|| "–".into());
    let mut lines = vec![
        format!(
            ":bar_chart: *Break glass this week* ({} to {}): *{}* use(s)",
            d.from, d.until, d.uses
        ),
        format!("*By account:* {}", list(&d.by_account)),
        format!("*By rule:* {}", list(&d.by_rule)),
        format!(
            "*Reviews:* {} reviewed ({} need follow-up), {} pending; median time to review {median}",
            d.reviewed, d.follow_ups, d.pending
        ),
        format!(
            "*Ended early:* {}   *Revoked by the reconciler:* {}   *Revoke failures:* {}",
            d.ended_early, d.reconciler_revoked, d.revoke_failures
        ),
    ];
    if d.approved + d.not_approved > 0 {
        lines.push(format!(
            "*Approvals:* {} approved, {} denied or expired (nothing granted)",
            d.approved, d.not_approved
        ));
    }
    if !d.most_flagged.is_empty() {
        lines.push("*Most flagged:*".into());
        for (id, flags) in &d.most_flagged {
            lines.push(format!("    • `{id}`: {flags}"));
        }
    }
    let text = lines.join("\n");
    serde_json::json!({"text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    ]})
}

impl Worker {
    /// The digest of the seven days up to `until` (default now), posted to the review
    /// channel, else the reconciler's.
    pub async fn digest(&self, until: Option<OffsetDateTime>) -> Result<Digest, Error> {
        let until = until.unwrap_or_else(OffsetDateTime::now_utc);
        let from = until - time::Duration::days(7) + time::Duration::SECOND;
        let requests: Vec<RequestRecord> = self
            .store
            // Eight UTC days cover the seven times 24 h up to `until`; the rest is cut below.
            .requests_since(8, until)
            .await?
            .into_iter()
            .filter(|r| r.requested_at >= from)
            .collect();
        let mut d = digest_of(&requests, &self.policy, from, until);
        let channel = self
            .policy
            .review
            .as_ref()
            .map(|r| r.channel.clone())
            .or_else(|| self.policy.reconcile_channel.clone());
        if let Some(channel) = channel {
            self.slack
                .post_message(&channel, &message(&d), None)
                .await
                .map_err(|e| Error::Transient(format!("posting the digest: {e}")))?;
            d.posted_to = Some(channel);
        }
        tracing::info!(uses = d.uses, pending = d.pending, "digest");
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::request::Status;
    use crate::domain::review::{Digest as Found, Review};
    use crate::time_util::from_rfc3339;

    fn at(s: &str) -> OffsetDateTime {
        from_rfc3339(s).unwrap()
    }

    #[test]
    fn counts_medians_and_the_most_flagged() {
        let policy = Policy::parse(
            "version = 1\n[accounts]\n\"123456789012\" = \"production\"\n[[rule]]\nname = \"oncall\"\neffect = \"allow\"\nslack_users = [\"*\"]\naccounts = [\"*\"]\npermission_sets = [\"*\"]\ndefault_duration = \"1h\"\nmax_duration = \"1h\"\n",
        )
        .unwrap();
        let base = crate::aws::store::tests::sample();
        let with = |id: &str, outcome: Option<Outcome>, wait: i64, flags: [usize; 4]| {
            let mut r = base.clone();
            r.id = crate::domain::RequestId::derive(&[id]);
            r.status = Status::Reported;
            r.reported_at = Some(at("2026-11-24T10:00:00Z"));
            r.digest = Some(Found {
                flags,
                ..Found::default()
            });
            r.review = Review {
                pending: outcome.is_none(),
                outcome,
                at: outcome.map(|_| at("2026-11-24T10:00:00Z") + time::Duration::seconds(wait)),
                ..Review::default()
            };
            r
        };
        let mut other = with("d", None, 0, [0; 4]);
        other.account_id = crate::domain::AccountId::parse("210987654321").unwrap();
        // One use over two accounts counts once, and once for each account.
        other.more_accounts = vec![crate::domain::request::Part::new(
            crate::domain::AccountId::parse("333333333333").unwrap(),
        )];
        other.rule = "sre".into();
        other.ended_by = Some("U0ALICE".into());
        other.reconciled_at = Some(at("2026-11-24T11:00:00Z"));
        let mut approved = with("c", Some(Outcome::Fine), 120, [0, 0, 0, 0]);
        approved.approval.state = Some(crate::domain::approval::ApprovalState::Approved);
        let mut denied = with("e", None, 0, [0; 4]);
        denied.review.pending = false;
        denied.approval.state = Some(crate::domain::approval::ApprovalState::Denied);
        let week = [
            with("a", Some(Outcome::Fine), 60, [0, 1, 0, 0]),
            with("b", Some(Outcome::FollowUp), 600, [1, 0, 0, 0]),
            approved,
            other,
            denied,
        ];
        let d = digest_of(
            &week,
            &policy,
            at("2026-11-18T00:00:00Z"),
            at("2026-11-24T23:59:59Z"),
        );
        assert_eq!(d.uses, 4);
        assert_eq!(d.by_account["production (123456789012)"], 3);
        assert_eq!(d.by_account["210987654321"], 1);
        assert_eq!(d.by_account["333333333333"], 1);
        assert_eq!(d.by_rule["sre"], 1);
        assert_eq!((d.reviewed, d.follow_ups, d.pending), (3, 1, 1));
        assert_eq!(d.median_seconds_to_review, Some(120));
        assert_eq!((d.ended_early, d.reconciler_revoked), (1, 1));
        // Worst first: a critical flag beats any number of high ones.
        assert_eq!(d.most_flagged.len(), 2);
        assert_eq!(d.most_flagged[0].1, "1 critical");
        assert_eq!(d.most_flagged[1].1, "1 high");
        let text = message(&d)["text"].as_str().unwrap().to_owned();
        assert!(text.contains("*4* use(s)"), "{text}");
        assert!(text.contains("median time to review 2m"), "{text}");
        assert_eq!(
            (d.approved, d.not_approved),
            (1, 1),
            "a denied request is no use"
        );
        assert!(text.contains("1 approved, 1 denied or expired"), "{text}");
    }
}
