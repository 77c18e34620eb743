//! Ending a user's live sessions when their access ends, the way AWS documents it for IAM
//! Identity Center: deleting an assignment stops *new* sessions, but credentials already
//! issued stay valid for up to the permission set's session duration. So we add a Deny to
//! the permission set's inline policy for exactly that user's sessions, in exactly that
//! account, issued before the moment access ended (the deny is put in place once the
//! assignment is gone, while the lease still keeps a new grant out):
//!
//! ```json
//! {"Sid": "BreakGlassEndSessions<request><account>", "Effect": "Deny", "Action": "*", "Resource": "*",
//!  "Condition": {"StringEquals": {"identitystore:userId": "<user>", "aws:PrincipalAccount": "<account>"},
//!                "DateLessThan": {"aws:TokenIssueTime": "<revoked at>"}}}
//! ```
//!
//! Other users, and the same user's later sessions (a new grant), are untouched. Once the
//! session duration has passed every such session has expired and the statement is lifted.
//!
//! The statements we own live in DynamoDB (one item per permission set, versioned); the
//! inline policy is rendered from them plus whatever statements the operator put there
//! (kept as they are). Writers re-render until the version they rendered is still the
//! latest after their write, so concurrent revokes on one permission set never lose a
//! statement.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::error::Error;
use crate::time_util::rfc3339;

/// Added to "now" when a deny is put in place: sessions issued until then, by AWS's clock,
/// are old ones. (Once the assignment is gone no session can be issued, and the lease being
/// released keeps a new grant of the same access out until the deny is in place.)
pub const CLOCK_SKEW: time::Duration = time::Duration::seconds(5);

/// Prefix of the `Sid` of every statement break glass owns.
pub const SID_PREFIX: &str = "BreakGlassEndSessions";

/// One deny on a user's old sessions of a permission set in one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deny {
    /// `BreakGlassEndSessions` + the request id's hex: one statement per request.
    pub sid: String,
    pub request_id: String,
    /// Identity Store user id (what `identitystore:userId` holds).
    pub user_id: String,
    pub account_id: String,
    /// Sessions issued before this are denied (when access ended).
    #[serde(with = "time::serde::rfc3339")]
    pub before: OffsetDateTime,
    /// When every such session has expired and the statement can go.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

impl Deny {
    /// The deny of `user_id`'s sessions issued before `before` (in `account_id`), until
    /// they have all expired: `session` (the permission set's session duration) plus
    /// `margin` later. Both times are rounded up to whole seconds, the precision they are
    /// stored and handed to the state machine with: the request's record, the Wait before
    /// the lift and the deny itself then agree on the very second the deny may go (with
    /// fractions, the lift woke a fraction too early, found the deny not yet expired and
    /// left it in place).
    pub fn new(
        request_id: &str,
        user_id: &str,
        account_id: &str,
        before: OffsetDateTime,
        session: std::time::Duration,
        margin: std::time::Duration,
    ) -> Self {
        let before = crate::time_util::ceil_second(before);
        Deny {
            sid: Self::sid_for(request_id, account_id),
            request_id: request_id.to_owned(),
            user_id: user_id.to_owned(),
            account_id: account_id.to_owned(),
            before,
            until: crate::time_util::ceil_second(before + session + margin),
        }
    }

    /// One statement per request and account: a request with several accounts ends the
    /// sessions of each when that account's access ends.
    pub fn sid_for(request_id: &str, account_id: &str) -> String {
        let hex: String = request_id
            .chars()
            .chain(account_id.chars())
            .filter(char::is_ascii_alphanumeric)
            .collect();
        format!("{SID_PREFIX}{hex}")
    }

    pub fn statement(&self) -> Value {
        json!({
            "Sid": self.sid,
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "identitystore:userId": self.user_id,
                    "aws:PrincipalAccount": self.account_id,
                },
                "DateLessThan": {"aws:TokenIssueTime": rfc3339(self.before)},
            },
        })
    }
}

fn ours(statement: &Value) -> bool {
    statement
        .get("Sid")
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with(SID_PREFIX))
}

/// The inline policy with our statements replaced by `denies`; the operator's statements
/// are kept as they are. `None` when nothing is left (the inline policy is deleted).
pub fn render(current: Option<&str>, denies: &[Deny]) -> Result<Option<String>, Error> {
    let mut doc = match current {
        Some(text) => serde_json::from_str::<Value>(text).map_err(|e| {
            Error::Aws(format!(
                "the permission set's inline policy is not JSON ({e}); not touching it"
            ))
        })?,
        None => json!({"Version": "2012-10-17"}),
    };
    let Some(obj) = doc.as_object_mut() else {
        return Err(Error::Aws(
            "the permission set's inline policy is not a JSON object; not touching it".into(),
        ));
    };
    let mut statements: Vec<Value> = match obj.remove("Statement") {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(one) => vec![one],
    };
    statements.retain(|s| !ours(s));
    statements.extend(denies.iter().map(Deny::statement));
    if statements.is_empty() {
        return Ok(None);
    }
    obj.entry("Version").or_insert_with(|| json!("2012-10-17"));
    obj.insert("Statement".into(), Value::Array(statements));
    Ok(Some(doc.to_string()))
}

/// Whether two inline policies say the same (so an unchanged one is not written again).
pub fn same_policy(a: Option<&str>, b: Option<&str>) -> bool {
    let parse = |s: Option<&str>| s.and_then(|t| serde_json::from_str::<Value>(t).ok());
    match (a, b) {
        (None, None) => true,
        (Some(_), Some(_)) => parse(a).is_some() && parse(a) == parse(b),
        _ => false,
    }
}

/// An ISO 8601 `SessionDuration` such as `PT1H`, `PT8H30M`, `PT900S`. Anything else reads
/// as 12 hours, the longest Identity Center allows: a deny lasting too long is safe, one
/// lifted too early is not.
pub fn session_duration(iso: &str) -> std::time::Duration {
    const LONGEST: std::time::Duration = std::time::Duration::from_secs(12 * 3600);
    let Some(rest) = iso.trim().strip_prefix("PT") else {
        return LONGEST;
    };
    let (mut total, mut digits) = (0u64, String::new());
    for c in rest.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let Ok(n) = digits.parse::<u64>() else {
            return LONGEST;
        };
        digits.clear();
        total += match c {
            'H' => n * 3600,
            'M' => n * 60,
            'S' => n,
            _ => return LONGEST,
        };
    }
    if !digits.is_empty() || total == 0 {
        return LONGEST;
    }
    std::time::Duration::from_secs(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time_util::from_rfc3339;

    fn deny(user: &str) -> Deny {
        Deny {
            sid: Deny::sid_for("bg-0123456789abcdef01234567", "123456789012"),
            request_id: "bg-0123456789abcdef01234567".into(),
            user_id: user.into(),
            account_id: "123456789012".into(),
            before: from_rfc3339("2026-11-24T10:00:00Z").unwrap(),
            until: from_rfc3339("2026-11-24T11:05:00Z").unwrap(),
        }
    }

    #[test]
    fn the_statement_denies_exactly_that_users_old_sessions_in_that_account() {
        let s = deny("u-1").statement();
        assert_eq!(
            s["Sid"],
            "BreakGlassEndSessionsbg0123456789abcdef01234567123456789012"
        );
        assert_eq!(s["Effect"], "Deny");
        assert_eq!(
            s["Condition"]["StringEquals"]["identitystore:userId"],
            "u-1"
        );
        assert_eq!(
            s["Condition"]["StringEquals"]["aws:PrincipalAccount"],
            "123456789012"
        );
        assert_eq!(
            s["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
            "2026-11-24T10:00:00Z"
        );
    }

    #[test]
    fn render_keeps_the_operators_statements() {
        let operator = r#"{"Version":"2012-10-17","Statement":{"Sid":"Mine","Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#;
        let with = render(Some(operator), &[deny("u-1")]).unwrap().unwrap();
        let v: Value = serde_json::from_str(&with).unwrap();
        let sids: Vec<&str> = v["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert_eq!(
            sids,
            [
                "Mine",
                "BreakGlassEndSessionsbg0123456789abcdef01234567123456789012"
            ]
        );
        // Rendering again with the same denies changes nothing; without them restores the
        // operator's statement alone.
        assert!(same_policy(
            render(Some(&with), &[deny("u-1")]).unwrap().as_deref(),
            Some(&with)
        ));
        let back = render(Some(&with), &[]).unwrap().unwrap();
        let v: Value = serde_json::from_str(&back).unwrap();
        assert_eq!(v["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(v["Statement"][0]["Sid"], "Mine");
    }

    #[test]
    fn render_without_an_inline_policy() {
        assert_eq!(render(None, &[]).unwrap(), None);
        let p = render(None, &[deny("u-1")]).unwrap().unwrap();
        let v: Value = serde_json::from_str(&p).unwrap();
        assert_eq!(v["Version"], "2012-10-17");
        assert_eq!(render(Some(&p), &[]).unwrap(), None, "ours only: deleted");
        assert!(render(Some("not json"), &[]).is_err());
        assert!(render(Some("[1]"), &[]).is_err());
    }

    #[test]
    fn session_durations() {
        let h = |n| std::time::Duration::from_secs(n);
        assert_eq!(session_duration("PT1H"), h(3600));
        assert_eq!(session_duration("PT8H30M"), h(8 * 3600 + 1800));
        assert_eq!(session_duration("PT45S"), h(45));
        for bad in ["", "1H", "PT", "PTXH", "P1D", "PT1H5"] {
            assert_eq!(session_duration(bad), h(12 * 3600), "{bad:?}");
        }
    }

    #[test]
    fn a_deny_is_in_whole_seconds_as_it_is_stored_and_waited_for() {
        let before =
            from_rfc3339("2026-11-24T10:00:00Z").unwrap() + time::Duration::milliseconds(600);
        let d = Deny::new(
            "bg-0123",
            "u-1",
            "123456789012",
            before,
            std::time::Duration::from_secs(3600),
            std::time::Duration::from_secs(300),
        );
        assert!(d.before >= before, "never denies fewer sessions than asked");
        assert_eq!(crate::time_util::rfc3339(d.before), "2026-11-24T10:00:01Z");
        assert_eq!(crate::time_util::rfc3339(d.until), "2026-11-24T11:05:01Z");
        // What the request records (and the state machine waits until) is the deny's own
        // `until`, to the nanosecond: a lift that wakes at it finds the deny expired.
        assert_eq!(
            from_rfc3339(&crate::time_util::rfc3339(d.until)),
            Some(d.until)
        );
        assert_eq!(d.sid, Deny::sid_for("bg-0123", &d.account_id));
    }
}
