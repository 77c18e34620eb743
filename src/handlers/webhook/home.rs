//! `app_home_opened` (Events API, on the same URL and with the same signature and workspace
//! checks as interactivity): publish the user's Home view. Slack retries an event it got no
//! answer to (`X-Slack-Retry-Num`); publishing again is harmless.

use std::collections::BTreeSet;

use http::StatusCode;
use time::OffsetDateTime;

use super::{Reply, Webhook};
use crate::handlers::home;

impl Webhook {
    pub(super) async fn home_opened(&self, user: &str, now: OffsetDateTime) -> Reply {
        let groups = self.groups_of(user).await;
        match home::home_view(&self.store, &self.policy, user, &groups, now).await {
            Ok(view) => {
                if let Err(e) = self.directory.slack.publish_view(user, &view).await {
                    tracing::warn!(error = %e, "views.publish failed");
                }
            }
            Err(e) => tracing::error!(error = %e, "could not build the Home view"),
        }
        // Events are acknowledged whatever happened: a retry would not do better.
        Reply::bare(StatusCode::OK)
    }

    /// Publishes `user`'s Home again (after End, Extend or a review changed something).
    pub(super) async fn refresh_home(&self, user: &str) {
        let groups = self.groups_of(user).await;
        home::refresh(
            &self.store,
            &self.policy,
            &self.directory.slack,
            user,
            &groups,
        )
        .await;
    }

    /// The user's Identity Center groups, looked up only when a reviewer group could make
    /// them a reviewer (else none are needed).
    async fn groups_of(&self, user: &str) -> BTreeSet<String> {
        let by_group = self
            .policy
            .review
            .as_ref()
            .is_some_and(|r| !r.reviewer_groups.is_empty() && !r.reviewers.contains(user));
        if !by_group {
            return BTreeSet::new();
        }
        self.directory
            .resolve(&self.policy, user)
            .await
            .map(|p| p.groups)
            .unwrap_or_default()
    }
}
