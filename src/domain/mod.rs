//! The domain: newtypes for every value that crosses a trust boundary (parsed with `parse()`,
//! so the rest of the code can rely on its shape), a request and its changes
//! ([`request`]), and leases with their pure decisions ([`lease`]). Nothing here does I/O.

pub mod lease;
pub mod request;

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

    pub fn parse(s: &str) -> Result<Self, ParseError> {
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
        if total > Self::MAX.0 {
            return Err(bad("longer than 24h"));
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
string_newtype_impls!(AccountId, PermissionSetArn, RequestId);

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
