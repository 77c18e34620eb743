//! `[review]`: who reviews each use of break glass, where, and how soon (validated in
//! `file.rs`; the two-person rule itself is [`crate::domain::review::may_review`]).

use std::collections::BTreeSet;

use crate::domain::Duration;

/// `[review]`: every use of break glass is reviewed by a second person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewPolicy {
    /// Where the review message goes.
    pub channel: String,
    /// Slack user ids who may review.
    pub reviewers: BTreeSet<String>,
    /// Identity Center groups (display names) whose members may review.
    pub reviewer_groups: BTreeSet<String>,
    /// A review pending this long is reminded; twice this long, escalated.
    pub within: Duration,
    pub escalate_to: Option<Escalation>,
}

/// Where an overdue review escalates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escalation {
    /// A channel (`C…`/`G…`): the escalation is posted there.
    Channel(String),
    /// A user group mention (`<!subteam^S…>`): posted in the review channel, mentioning it.
    Mention(String),
}

impl ReviewPolicy {
    /// Whether `slack_user` (a member of `groups`) may review. Never decides the two-person
    /// rule: see [`crate::domain::review::may_review`].
    pub fn is_reviewer(&self, slack_user: &str, groups: &BTreeSet<String>) -> bool {
        self.reviewers.contains(slack_user)
            || self.reviewer_groups.iter().any(|g| groups.contains(g))
    }
}
