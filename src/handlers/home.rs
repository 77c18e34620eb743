//! The App Home tab, shared by both roles: the webhook publishes it when a user opens the tab
//! and after End, Extend or a review; the worker after a grant and a revoke. Read through the
//! table's indexes only (the last week by day, and the pending reviews), never a Scan.

use std::collections::BTreeSet;

use serde_json::Value;
use time::OffsetDateTime;

use crate::aws::store::Store;
use crate::domain::request::Status;
use crate::error::Error;
use crate::handlers::webhook::live;
use crate::policy::Policy;
use crate::slack::api::SlackApi;
use crate::slack::home::{Home, view};

/// How far back the Home looks: a week of requests (leases last at most a day).
const DAYS: u32 = 7;

/// Builds `user`'s Home view. `groups` are the user's Identity Center groups (for a
/// reviewer by group), when known.
pub async fn home_view(
    store: &Store,
    policy: &Policy,
    user: &str,
    groups: &BTreeSet<String>,
    now: OffsetDateTime,
) -> Result<Value, Error> {
    let recent = store.requests_since(DAYS, now).await?;
    let reviewer = policy
        .review
        .as_ref()
        .is_some_and(|r| r.is_reviewer(user, groups));
    let sees_all = reviewer || policy.responders.contains(user);
    let live_now =
        |r: &&crate::domain::request::RequestRecord| r.status == Status::Granted && live(r, now);
    let pending = if reviewer {
        let mut p = store.pending_reviews().await?;
        p.sort_by_key(|r| r.reported_at);
        Some(p)
    } else {
        None
    };
    let home = Home {
        user,
        mine_live: recent
            .iter()
            .filter(|r| r.slack_user_id == user)
            .filter(live_now)
            .collect(),
        mine_recent: recent.iter().filter(|r| r.slack_user_id == user).collect(),
        everyone_live: sees_all.then(|| recent.iter().filter(live_now).collect()),
        pending: pending.as_ref().map(|p| p.iter().collect()),
        responder: policy.responders.contains(user),
    };
    Ok(view(&home, policy, now))
}

/// Publishes `user`'s Home view. Best effort: a failure is logged, never fails the caller.
pub async fn refresh(
    store: &Store,
    policy: &Policy,
    slack: &SlackApi,
    user: &str,
    groups: &BTreeSet<String>,
) {
    let now = OffsetDateTime::now_utc();
    let result = match home_view(store, policy, user, groups, now).await {
        Ok(v) => slack
            .publish_view(user, &v)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        tracing::warn!(user, error = %e, "could not publish the Home view");
    }
}
