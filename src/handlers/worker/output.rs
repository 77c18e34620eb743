//! What the tasks return. The state machine reads these fields by path
//! (`$.Payload.expires_at`), so they are types, and `tests/asl_contract.rs` checks every path
//! the ASL reads against them: renaming a field without the ASL fails a test.

use serde::Serialize;

pub use super::hold::LeaseState;

/// `hold`: whether the token is stored (the Hold waits), or was completed at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Held {
    pub armed: bool,
    pub expires_at: Option<String>,
}

/// `revoke`: when access ended, and until when the user's old sessions are denied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Revoked {
    pub revoked_at: Option<String>,
    pub sessions_denied_until: Option<String>,
}

/// `revoke_failed`: the alarm was raised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Alarm {
    pub alarm: bool,
}

/// `report`: what was collected and mailed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reported {
    /// Events of the session (`None` when it had been reported already).
    pub events: Option<usize>,
    pub calls: usize,
    pub incomplete: Vec<String>,
    pub message_id: Option<String>,
    pub already_reported: bool,
    /// When to look again for use of the session after its access ended: once every
    /// credential issued before the end has expired, and CloudTrail has caught up.
    pub after_end_check_at: Option<String>,
}

/// `after_end`: the session's events after its access ended, until its credentials expired.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AfterEndChecked {
    pub events: usize,
    pub until: Option<String>,
    pub already_checked: bool,
}

/// `lift_sessions`: the deny statements removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Lifted {
    pub lifted: Vec<String>,
    pub sessions_denied: bool,
}

/// What the state machine reads after an approval wait ended without a callback: grant, or
/// stop with nothing granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApprovalOver {
    pub approved: bool,
}

/// The fields of the output of the task `kind` (its `type`), for the contract test.
pub fn fields_of(kind: &str) -> Option<Vec<String>> {
    let sample = match kind {
        "approval_over" => serde_json::to_value(ApprovalOver::default()),
        "grant" | "check" => serde_json::to_value(LeaseState::default()),
        "hold" => serde_json::to_value(Held::default()),
        "revoke" => serde_json::to_value(Revoked::default()),
        "revoke_failed" => serde_json::to_value(Alarm::default()),
        "report" => serde_json::to_value(Reported::default()),
        "lift_sessions" => serde_json::to_value(Lifted::default()),
        "after_end" => serde_json::to_value(AfterEndChecked::default()),
        _ => return None,
    }
    .ok()?;
    Some(sample.as_object()?.keys().cloned().collect())
}
