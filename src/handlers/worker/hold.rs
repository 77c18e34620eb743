//! Hold: the state machine waits on a callback token until the lease ends.
//!
//! The Hold state (`lambda:invoke.waitForTaskToken`) hands its token to the `hold` task,
//! which stores it on the request with a fenced write; its timeout is the time left on the
//! lease, at most the re-check interval (`HOLD_RECHECK_SECONDS`, 1 h by default):
//!
//! - **End access now** (the webhook) marks the request ended, then completes the stored
//!   token: Revoke starts at once;
//! - **expiry** is the timeout: the `check` task looks at the lease and releases it;
//! - **Extend** moves `expires_at`: the wait that ends at the old end re-checks and waits
//!   again for the rest;
//! - a lost callback cannot hold access past `expires_at` by more than the re-check interval
//!   (and the reconciler revokes any lease its execution has not ended within its grace).
//!
//! The token write and End's write are both fenced on the request's version, so whichever
//! comes second sees the first: End finds the token, or `hold` finds the lease ended and
//! completes its own token at once. A lease costs a handful of state transitions whatever
//! its length.

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::Worker;
use super::output::Held;
use crate::domain::RequestId;
use crate::domain::request::{RequestRecord, Status};
use crate::error::Error;
use crate::time_util::rfc3339;

/// The re-check interval of a Hold by default: a lost callback holds access at most this
/// much past the lease's end.
pub const DEFAULT_RECHECK_SECONDS: u64 = 3600;

/// What the Hold state needs: when the lease ends, how long to wait before looking again,
/// and whether to release now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LeaseState {
    pub expires_at: String,
    pub wait_seconds: u64,
    pub release: bool,
}

impl LeaseState {
    /// The lease of `rec` at `now`: released when the request is no longer granted, was
    /// ended (for good: nothing brings it back), or has expired; otherwise the wait until
    /// its end, at most `cap` seconds.
    pub fn of(rec: &RequestRecord, now: OffsetDateTime, cap: u64) -> Self {
        let expires = rec.expires_at.unwrap_or(now);
        let release = rec.status != Status::Granted || rec.ended_by.is_some() || expires <= now;
        // Rounded up: a wait that ends a fraction of a second early would look at a lease
        // that has not ended yet.
        let left = (expires - now).as_seconds_f64().ceil();
        let wait_seconds = if release {
            0
        } else {
            (left as u64).min(cap.max(1)).max(1)
        };
        LeaseState {
            expires_at: rfc3339(expires),
            wait_seconds,
            release,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Attempts at storing the token before handing back to the state machine's retry.
const ATTEMPTS: usize = 5;

impl Worker {
    /// Stores the Hold state's token on the request, or completes it at once when the lease
    /// is already over.
    pub async fn hold(&self, id: &RequestId, token: &str, cap: u64) -> Result<Held, Error> {
        if token.is_empty() || token.len() > 4096 {
            return Err(Error::InvalidInput(
                "the hold task needs its task token".into(),
            ));
        }
        for _ in 0..ATTEMPTS {
            let rec = self.load(id).await?;
            let state = LeaseState::of(&rec, OffsetDateTime::now_utc(), cap);
            if state.release {
                let delivered = self.executions.complete(token, &state.json()).await?;
                tracing::info!(delivered, "hold released at once");
                return Ok(Held {
                    armed: false,
                    expires_at: None,
                });
            }
            match self.store.arm_hold(&rec, token).await {
                Ok(_) => {
                    tracing::info!(expires = %state.expires_at, "holding");
                    return Ok(Held {
                        armed: true,
                        expires_at: Some(state.expires_at),
                    });
                }
                // End (or Extend) wrote first: look again.
                Err(Error::StateConflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Transient(format!(
            "request {id} kept changing while its hold was armed"
        )))
    }

    /// After a Hold timed out: has the lease ended (expired, or ended early)?
    pub async fn check(&self, id: &RequestId, cap: u64) -> Result<LeaseState, Error> {
        let rec = self.load(id).await?;
        Ok(LeaseState::of(&rec, OffsetDateTime::now_utc(), cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_state_for_the_hold() {
        let mut rec = crate::aws::store::tests::sample();
        rec.status = Status::Granted;
        let expires = rec.expires_at.unwrap();
        let at = |s: i64| expires - time::Duration::seconds(s);
        let v = LeaseState::of(&rec, at(7200), 3600);
        assert_eq!(
            (v.wait_seconds, v.release),
            (3600, false),
            "at most the re-check interval"
        );
        assert_eq!(LeaseState::of(&rec, at(7), 3600).wait_seconds, 7);
        let almost = expires - time::Duration::milliseconds(400);
        assert_eq!(
            (
                LeaseState::of(&rec, almost, 3600).release,
                LeaseState::of(&rec, almost, 3600).wait_seconds
            ),
            (false, 1),
            "not released a fraction of a second early"
        );
        assert!(LeaseState::of(&rec, expires, 3600).release);
        assert_eq!(LeaseState::of(&rec, at(1), 0).wait_seconds, 1, "never 0");
        rec.ended_by = Some("U1".into());
        assert!(
            LeaseState::of(&rec, at(100), 3600).release,
            "an ended lease is released whatever its end says"
        );
        rec.ended_by = None;
        rec.status = Status::Revoked;
        assert!(
            LeaseState::of(&rec, at(100), 3600).release,
            "a lease no longer granted is released"
        );
    }
}
