//! The domain: newtypes for every value that crosses a trust boundary (parsed with `parse()`,
//! so the rest of the code can rely on its shape), a request and its changes
//! ([`request`]), leases with their pure decisions ([`lease`]), and the review of a use by a
//! second person ([`review`]). Nothing here does I/O.

pub mod approval;
pub mod lease;
pub mod request;
pub mod review;

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Why a value was rejected. The message names the value's kind and what was wrong.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{kind}: {problem}")]
pub struct ParseError {
    pub kind: &'static str,
    pub problem: String,
}

impl ParseError {
    fn new(kind: &'static str, problem: impl Into<String>) -> Self {
        Self {
            kind,
            problem: problem.into(),
        }
    }
}

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::new(
                "account id",
                format!("expected 12 digits, got {:?}", truncate(s, 40)),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Accounts as people read them: `111111111111, 222222222222`.
pub fn accounts_text(accounts: &[AccountId]) -> String {
    accounts
        .iter()
        .map(AccountId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `arn:<partition>:sso:::permissionSet/ssoins-<id>/ps-<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PermissionSetArn(String);

impl PermissionSetArn {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let bad = || {
            ParseError::new(
                "permission set ARN",
                format!(
                    "expected arn:aws:sso:::permissionSet/ssoins-…/ps-…, got {:?}",
                    truncate(s, 120)
                ),
            )
        };
        let rest = s.strip_prefix("arn:").ok_or_else(bad)?;
        let (partition, rest) = rest.split_once(':').ok_or_else(bad)?;
        if !matches!(partition, "aws" | "aws-us-gov" | "aws-cn") {
            return Err(bad());
        }
        let path = rest.strip_prefix("sso:::permissionSet/").ok_or_else(bad)?;
        let (instance, ps) = path.split_once('/').ok_or_else(bad)?;
        let id_ok = |id: &str, prefix: &str| {
            id.strip_prefix(prefix).is_some_and(|tail| {
                !tail.is_empty()
                    && tail.len() <= 64
                    && tail.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
        };
        if id_ok(instance, "ssoins-") && id_ok(ps, "ps-") {
            Ok(Self(s.to_owned()))
        } else {
            Err(bad())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The id of one break-glass request. It is also the Step Functions execution name, so it
/// is derived deterministically from the click: the same click delivered twice maps to the
/// same id, and the second delivery finds the first one's record and execution.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId(String);

impl RequestId {
    const PREFIX: &'static str = "bg-";
    const HEX_LEN: usize = 24;

    /// Derives the id from the parts that identify one click. Parts are length-prefixed so
    /// that no two different part lists hash the same input.
    pub fn derive(parts: &[&str]) -> Self {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p.as_bytes());
        }
        let digest = hex::encode(h.finalize());
        Self(format!("{}{}", Self::PREFIX, &digest[..Self::HEX_LEN]))
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok = s.strip_prefix(Self::PREFIX).is_some_and(|hex| {
            hex.len() == Self::HEX_LEN
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::new(
                "request id",
                format!("expected bg-<24 hex digits>, got {:?}", truncate(s, 40)),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A whole number of seconds, written in policy files as `90s`, `15m`, `1h`, `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Duration(u64);

impl Duration {
    /// No lease may be longer than a day: Identity Center sessions are at most 12 h and a
    /// break-glass lease longer than that is standing access by another name.
    pub const MAX: Duration = Duration(24 * 3600);

    pub fn from_secs(secs: u64) -> Self {
        Self(secs)
    }
    pub fn as_secs(self) -> u64 {
        self.0
    }

    pub const fn from_secs_const(secs: u64) -> Self {
        Self(secs)
    }

    /// `1h30m`, `90s`: at most [`Duration::MAX`] (a lease).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Self::parse_at_most(s, Self::MAX)
    }

    /// The same syntax, at most `max` (a review may wait longer than a lease may last).
    pub fn parse_at_most(s: &str, max: Duration) -> Result<Self, ParseError> {
        let bad =
            |why: &str| ParseError::new("duration", format!("{why} in {:?}", truncate(s, 40)));
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        let mut last_unit = u64::MAX;
        for c in s.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return Err(bad("unknown unit (use h, m, s)")),
            };
            if digits.is_empty() {
                return Err(bad("missing number"));
            }
            if unit >= last_unit {
                return Err(bad("units out of order"));
            }
            last_unit = unit;
            let n: u64 = digits.parse().map_err(|_| bad("number too large"))?;
            digits.clear();
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| bad("number too large"))?;
        }
        if !digits.is_empty() {
            return Err(bad("missing unit"));
        }
        if total == 0 {
            return Err(bad("must be positive"));
        }
        if total > max.0 {
            return Err(bad(&format!("longer than {max}")));
        }
        Ok(Self(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.0 / 3600, self.0 / 60 % 60, self.0 % 60);
        let mut out = String::new();
        if h > 0 {
            out += &format!("{h}h");
        }
        if m > 0 {
            out += &format!("{m}m");
        }
        if s > 0 || out.is_empty() {
            out += &format!("{s}s");
        }
        f.write_str(&out)
    }
}

/// A plain e-mail address (RFC 5322 `addr-spec` with a dot-atom local part and a domain
/// name): no display name, no comments, no quoting, no CR/LF or other control characters, at
/// most 254 characters. Only these go into mail headers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(a: &str) -> Result<Self, ParseError> {
        let bad = |why: &str| {
            Err(ParseError::new(
                "e-mail address",
                format!("{:?} is not a plain e-mail address: {why}", truncate(a, 80)),
            ))
        };
        if a.len() > 254 {
            return bad("longer than 254 characters");
        }
        let Some((local, domain)) = a.rsplit_once('@') else {
            return bad("no @");
        };
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        let dot_atom = |s: &str, ok: &dyn Fn(char) -> bool| {
            !s.is_empty()
                && s.split('.')
                    .all(|part| !part.is_empty() && part.chars().all(ok))
        };
        if local.len() > 64 || !dot_atom(local, &atext) {
            return bad("the part before @ is not a dot-atom");
        }
        let label = |c: char| c.is_ascii_alphanumeric() || c == '-';
        if !domain.contains('.')
            || !dot_atom(domain, &label)
            || domain
                .split('.')
                .any(|l| l.starts_with('-') || l.ends_with('-') || l.len() > 63)
        {
            return bad("the part after @ is not a domain name");
        }
        Ok(Self(a.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `arn:<partition>:states:<region>:<account>:stateMachine:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StateMachineArn(String);

impl StateMachineArn {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let parts: Vec<&str> = s.splitn(7, ':').collect();
        let ok = parts.len() == 7
            && parts[0] == "arn"
            && matches!(parts[1], "aws" | "aws-us-gov" | "aws-cn")
            && parts[2] == "states"
            && !parts[3].is_empty()
            && parts[4].len() == 12
            && parts[4].bytes().all(|b| b.is_ascii_digit())
            && parts[5] == "stateMachine"
            && !parts[6].is_empty()
            && !parts[6].contains(':');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::new(
                "state machine ARN",
                format!(
                    "expected arn:aws:states:<region>:<account>:stateMachine:<name>, got {:?}",
                    truncate(s, 120)
                ),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype_impls {
    ($($t:ty),*) => {$(
        impl TryFrom<String> for $t {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                Self::parse(&s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
string_newtype_impls!(
    AccountId,
    PermissionSetArn,
    RequestId,
    EmailAddress,
    StateMachineArn
);

/// Shortens untrusted text for error messages and logs (on a char boundary).
pub fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        assert!(AccountId::parse("123456789012").is_ok());
        for bad in [
            "",
            "12345678901",
            "1234567890123",
            "12345678901a",
            " 123456789012",
        ] {
            assert!(AccountId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn permission_set_arns() {
        assert!(
            PermissionSetArn::parse("arn:aws:sso:::permissionSet/ssoins-12345/ps-12345").is_ok()
        );
        for bad in [
            "arn:aws:sso:::permissionSet/ssoins-12345/ps-",
            "arn:aws:sso:::permissionSet/ssoins-12345",
            "arn:aws:iam::123456789012:role/x",
            "arn:evil:sso:::permissionSet/ssoins-1/ps-1",
            "arn:aws:sso:::permissionSet/ssoins-1/ps-1/x",
            "arn:aws:sso:::permissionSet/ssoins-1/ps-1?",
            "retry",
        ] {
            assert!(PermissionSetArn::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn request_ids_are_deterministic_and_unambiguous() {
        let a = RequestId::derive(&["T1", "U1", "ab"]);
        assert_eq!(a, RequestId::derive(&["T1", "U1", "ab"]));
        assert_ne!(a, RequestId::derive(&["T1", "U1a", "b"]));
        assert_eq!(RequestId::parse(a.as_str()), Ok(a.clone()));
        assert_eq!(a.as_str().len(), 27);
        assert!(RequestId::parse("bg-XYZ").is_err());
        assert!(RequestId::parse("bg-0123456789abcdef01234567/x").is_err());
    }

    #[test]
    fn e_mail_addresses_and_state_machine_arns() {
        for ok in [
            "security@example.com",
            "a.b+tag@sub.example.co.uk",
            "o'brien@example.com",
        ] {
            assert!(EmailAddress::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "alice@example.com\r\nBcc: evil@example.net",
            "alice@example.com\n",
            "Alice <alice@example.com>",
            "alice@example",
            "alice@@example.com",
            "@example.com",
            "alice.@example.com",
            "al ice@example.com",
            "\"alice\"@example.com",
            "alice@-example.com",
            "alice@exa_mple.com",
            "",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
        assert!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
        assert!(
            StateMachineArn::parse("arn:aws:states:eu-west-1:123456789012:stateMachine:bg").is_ok()
        );
        for bad in [
            "bg",
            "arn:aws:states:eu-west-1:123456789012:activity:bg",
            "arn:aws:states:eu-west-1:12345:stateMachine:bg",
            "arn:aws:states:eu-west-1:123456789012:stateMachine:bg:1",
        ] {
            assert!(StateMachineArn::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(Duration::parse("90s").unwrap().as_secs(), 90);
        assert_eq!(Duration::parse("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(Duration::parse("24h").unwrap().as_secs(), 86400);
        for bad in [
            "",
            "0s",
            "1",
            "h",
            "1d",
            "30m1h",
            "25h",
            "1h1h",
            "99999999999999999999s",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Duration::from_secs(5400).to_string(), "1h30m");
        assert_eq!(Duration::from_secs(20).to_string(), "20s");
    }
}
