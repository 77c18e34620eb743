//! **End access now** and **Extend**: only the requester or a responder, each a fenced write
//! that records the click (delivered twice, it acts once). End is final and immediate: it
//! marks the request ended and completes the Hold's callback, and no Extend brings the access
//! back. [`lease_change`] is the pure decision.

use time::OffsetDateTime;

use super::{Reply, Webhook};
use crate::domain::request::{Audit, Change, RequestRecord, Status};
use crate::domain::{Duration, RequestId};
use crate::handlers::worker::hold::LeaseState;
use crate::slack;
use crate::slack::messages::slack_time;
use crate::slack::payload::LeaseClick;

impl Webhook {
    /// **End access now** and **Extend**: only the requester or a responder, each a fenced
    /// write that also records the click (delivered twice, it acts once). End is final: it
    /// marks the request ended and wakes the Hold at once, and no Extend brings it back.
    pub(super) async fn lease(&self, l: LeaseClick, now: OffsetDateTime) -> Reply {
        let Ok(id) = RequestId::parse(&l.request_id) else {
            return Reply::ephemeral("This button does not name a break-glass request.");
        };
        tracing::Span::current().record("request", id.as_str());
        let user = l.origin.user_id.as_str();
        let click = format!("{user}:{}", l.action_ts);
        for _ in 0..4 {
            let rec = match self.store.get(&id).await {
                Ok(Some(r)) => r,
                Ok(None) => return Reply::ephemeral("This break-glass request does not exist."),
                Err(e) => {
                    tracing::error!(error = %e, "could not read the request");
                    return Reply::ephemeral("Could not read the request; try again in a moment.");
                }
            };
            if rec.slack_user_id != user && !self.policy.responders.contains(user) {
                tracing::warn!(user, "refused a lease button from someone else");
                return Reply::ephemeral(
                    "Only the requester or a responder can end or extend this access.",
                );
            }
            let change = if rec.clicks.contains(&click) {
                LeaseChange::Repeated
            } else {
                lease_change(&rec, user, l.extend, now)
            };
            let (changes, audit, answer) = match change {
                LeaseChange::Refused(why) => return Reply::ephemeral(&why),
                LeaseChange::Repeated | LeaseChange::EndedAlready if l.extend => {
                    return Reply::ephemeral(&repeated_answer(&rec, true));
                }
                LeaseChange::Repeated | LeaseChange::EndedAlready => {
                    // The Hold may not have heard: wake it again (harmless if it did).
                    return self.wake(&rec, &repeated_answer(&rec, false)).await;
                }
                LeaseChange::Extend(until) => (
                    vec![Change::ExpiresAt(until)],
                    Audit {
                        event: "extended",
                        actor: user,
                        detail: format!("until {}", crate::time_util::rfc3339(until)),
                    },
                    format!("Extended until {}.", slack_time(until)),
                ),
                LeaseChange::End => (
                    vec![
                        Change::ExpiresAt(now),
                        Change::EndedBy(user.to_owned()),
                        Change::EndedAt(now),
                    ],
                    Audit {
                        event: "ended_early",
                        actor: user,
                        detail: format!("End access now pressed by {user}"),
                    },
                    "Access is being removed now; the report follows.".to_owned(),
                ),
            };
            let mut changes = changes;
            changes.push(Change::Clicks(rec.clicks_with(&click)));
            match self
                .store
                .advance(&rec, Status::Granted, changes, audit)
                .await
            {
                Ok(updated) => {
                    tracing::info!(user, extend = l.extend, "lease changed");
                    let reply = if l.extend {
                        Reply::ephemeral(&answer)
                    } else {
                        self.wake(&updated, &answer).await
                    };
                    // The Homes that show this access: the requester's, and the clicker's.
                    if user == updated.slack_user_id {
                        self.refresh_home(user).await;
                    } else {
                        tokio::join!(
                            self.refresh_home(&updated.slack_user_id),
                            self.refresh_home(user)
                        );
                    }
                    return reply;
                }
                // The Hold stored its token, or another click landed: look again.
                Err(crate::error::Error::StateConflict(_)) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "could not change the lease");
                    return Reply::ephemeral("Could not change the access; try again in a moment.");
                }
            }
        }
        Reply::ephemeral(
            "This access changed at the same moment; look at its latest state and try again.",
        )
    }

    /// Completes the Hold's callback of an ended request, so that Revoke starts now. Without
    /// a token the Hold has not stored one yet, and it finds the lease ended when it does.
    pub(super) async fn wake(&self, rec: &RequestRecord, answer: &str) -> Reply {
        let Some(token) = &rec.hold_token else {
            return Reply::ephemeral(answer);
        };
        let released = LeaseState::of(rec, OffsetDateTime::now_utc(), 1);
        match self.executions.complete(token, &released.json()).await {
            Ok(delivered) => {
                tracing::info!(delivered, "hold woken");
                Reply::ephemeral(answer)
            }
            Err(e) => {
                tracing::error!(error = %e, "could not wake the hold");
                Reply::ephemeral(
                    "Access is ended, but its removal could not be started right now: press End access now again (otherwise it is removed at the hold's next check).",
                )
            }
        }
    }
}

/// What a lease button press does to a request (pure: the caller writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseChange {
    /// End the access now, for good.
    End,
    /// Move the end to this moment.
    Extend(OffsetDateTime),
    /// The access was ended already (End pressed again: wake the Hold again).
    EndedAlready,
    /// This very click was applied already.
    Repeated,
    /// Nothing changes; the answer says why.
    Refused(String),
}

/// Decides a press of **End access now** (`extend` false) or **Extend** on `rec`. End is
/// final: once the access was ended (by anyone) or has expired, Extend is refused with the
/// reason; Extend is capped by the rule's maximum.
pub fn lease_change(
    rec: &RequestRecord,
    _user: &str,
    extend: bool,
    now: OffsetDateTime,
) -> LeaseChange {
    let (Status::Granted, Some(granted_at), Some(expires_at)) =
        (rec.status, rec.granted_at, rec.expires_at)
    else {
        return LeaseChange::Refused(match rec.status {
            Status::Revoked | Status::Reported if extend => {
                "This access has ended and cannot be extended. Break glass again if you still need access."
                    .to_owned()
            }
            Status::Revoked | Status::Reported => "This access has already ended.".to_owned(),
            other => format!("This access is not active yet (it is {}).", other.as_str()),
        });
    };
    if let Some(by) = &rec.ended_by {
        if !extend {
            return LeaseChange::EndedAlready;
        }
        let at = rec.ended_at.map(slack_time).unwrap_or_default();
        return LeaseChange::Refused(format!(
            "This access was ended by <@{}> {at} and cannot be extended. Break glass again if you still need access.",
            slack::escape(by)
        ));
    }
    if !extend {
        return LeaseChange::End;
    }
    if expires_at <= now {
        return LeaseChange::Refused(
            "This access has expired and is being removed; it cannot be extended. Break glass again if you still need access."
                .to_owned(),
        );
    }
    match extended_until(granted_at, expires_at, now, rec.duration, rec.max_duration) {
        Some(until) => LeaseChange::Extend(until),
        None => LeaseChange::Refused(format!(
            "This access is already at its maximum of {}.",
            rec.max_duration
        )),
    }
}

/// The answer to a lease click that was applied already (or to End on ended access).
fn repeated_answer(rec: &RequestRecord, extend: bool) -> String {
    match (extend, rec.expires_at) {
        (true, Some(until)) if rec.ended_by.is_none() => {
            format!("Extended until {}.", slack_time(until))
        }
        (true, _) => "This access has ended and cannot be extended.".to_owned(),
        (false, _) => "Access is being removed now; the report follows.".to_owned(),
    }
}

/// Where **Extend** moves a lease's end: by the request's duration from its end (or from now,
/// if it already passed), never past `max` after the grant. `None` when there is no room.
pub fn extended_until(
    granted_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
    step: Duration,
    max: Duration,
) -> Option<OffsetDateTime> {
    let cap = granted_at + time::Duration::seconds(max.as_secs() as i64);
    let until = (expires_at.max(now) + time::Duration::seconds(step.as_secs() as i64)).min(cap);
    (until > expires_at).then_some(until)
}
