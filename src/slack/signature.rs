//! Slack request signing: `v0=` HMAC-SHA256 over `v0:{timestamp}:{raw body}`.
//! <https://api.slack.com/authentication/verifying-requests-from-slack>
//!
//! Pure: the caller passes `now`, so tests need no clock.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far the request timestamp may be from our clock, in either direction.
pub const MAX_SKEW_SECS: i64 = 300;

/// Why a request was not accepted as coming from Slack. Deliberately coarse: none of these
/// is ever sent back to the caller (a refusal is a bare 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Slack-Request-Timestamp or X-Slack-Signature header")]
    MissingHeader,
    #[error("timestamp is not a number")]
    BadTimestamp,
    #[error("timestamp outside the replay window")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

/// Checks a request's signature against each accepted secret (two during rotation).
pub fn verify(
    secrets: &[impl AsRef<[u8]>],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(SignatureError::MissingHeader);
    };
    let ts_num: i64 = ts
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if now_unix.abs_diff(ts_num) > MAX_SKEW_SECS as u64 {
        return Err(SignatureError::Stale);
    }
    let Some(given) = sig.strip_prefix("v0=").and_then(|h| hex::decode(h).ok()) else {
        return Err(SignatureError::Mismatch);
    };
    // Evaluate every secret (no early exit) so timing does not reveal which one matched.
    let mut matched = subtle::Choice::from(0u8);
    for secret in secrets {
        let expected = mac(secret.as_ref(), ts, body);
        matched |= expected.as_slice().ct_eq(&given);
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Computes `v0=<hex>` for a body, as Slack does. Used by tests, the demo and the load test.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!("v0={}", hex::encode(mac(secret, timestamp, body)))
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut m =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(b"v0:");
    m.update(timestamp.as_bytes());
    m.update(b":");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's published example (api.slack.com/authentication/verifying-requests-from-slack).
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const NOW: i64 = 1531420618;

    fn check(
        ts: Option<&str>,
        sig: Option<&str>,
        body: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        verify(&[SECRET], ts, sig, body.as_bytes(), now)
    }

    #[test]
    fn slack_published_vector() {
        assert_eq!(sign(SECRET.as_bytes(), TS, BODY.as_bytes()), SIG);
        assert_eq!(check(Some(TS), Some(SIG), BODY, NOW), Ok(()));
    }

    #[test]
    fn replay_window_both_directions() {
        assert_eq!(check(Some(TS), Some(SIG), BODY, NOW + 300), Ok(()));
        assert_eq!(check(Some(TS), Some(SIG), BODY, NOW - 300), Ok(()));
        assert_eq!(
            check(Some(TS), Some(SIG), BODY, NOW + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(Some(TS), Some(SIG), BODY, NOW - 301),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn tampering_and_missing_parts() {
        let tampered = BODY.replace("roadrunner", "coyote");
        assert_eq!(
            check(Some(TS), Some(SIG), &tampered, NOW),
            Err(SignatureError::Mismatch)
        );
        let other_ts = (NOW + 1).to_string();
        assert_eq!(
            check(Some(&other_ts), Some(SIG), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(None, Some(SIG), BODY, NOW),
            Err(SignatureError::MissingHeader)
        );
        assert_eq!(
            check(Some(TS), None, BODY, NOW),
            Err(SignatureError::MissingHeader)
        );
        assert_eq!(
            check(Some("soon"), Some(SIG), BODY, NOW),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            check(Some(TS), Some(&SIG[3..]), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(Some(TS), Some("v0=zz"), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(Some(TS), Some("v0="), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn either_of_two_rotation_secrets() {
        let secrets = ["new-secret", SECRET];
        assert_eq!(
            verify(&secrets, Some(TS), Some(SIG), BODY.as_bytes(), NOW),
            Ok(())
        );
        assert_eq!(
            verify(&["new-secret"], Some(TS), Some(SIG), BODY.as_bytes(), NOW),
            Err(SignatureError::Mismatch)
        );
        let none: [&str; 0] = [];
        assert_eq!(
            verify(&none, Some(TS), Some(SIG), BODY.as_bytes(), NOW),
            Err(SignatureError::Mismatch)
        );
    }
}
