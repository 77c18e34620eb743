//! Timestamps as Step Functions and DynamoDB want them: RFC 3339, UTC, whole seconds, `Z`.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).expect("0 is a valid nanosecond");
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .expect("UTC times format as RFC 3339")
}

/// `t` rounded up to a whole second (itself when it is one).
pub fn ceil_second(t: OffsetDateTime) -> OffsetDateTime {
    let whole = t.replace_nanosecond(0).expect("0 is a valid nanosecond");
    if whole == t {
        t
    } else {
        whole + time::Duration::SECOND
    }
}

pub fn from_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// `HH:MM UTC`, for humans.
pub fn hhmm(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:02}:{:02} UTC", t.hour(), t.minute())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_in_utc() {
        let t = from_rfc3339("2026-11-24T09:30:15.999+01:00").unwrap();
        assert_eq!(rfc3339(t), "2026-11-24T08:30:15Z");
        assert_eq!(hhmm(t), "08:30 UTC");
        assert!(from_rfc3339("yesterday").is_none());
        assert_eq!(rfc3339(ceil_second(t)), "2026-11-24T08:30:16Z");
        let whole = from_rfc3339("2026-11-24T08:30:15Z").unwrap();
        assert_eq!(ceil_second(whole), whole);
    }
}
