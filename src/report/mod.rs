//! The access report: CloudTrail records of one break-glass session, summarised and rendered.
//!
//! Every string that comes from CloudTrail is attacker-controlled (user agents, error
//! messages, resource names): it is only ever rendered through Askama's HTML escaping or into
//! plain text, and long values are cut with a visible marker.

pub mod analysis;
pub mod collect;
pub mod detect;
pub mod render;
pub mod resources;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::time_util::from_rfc3339;

/// Longest value shown from CloudTrail; the rest is cut with a marker.
pub const MAX_FIELD_CHARS: usize = 256;

/// One CloudTrail record, reduced to what the report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub time: OffsetDateTime,
    pub region: String,
    pub source: String,
    pub name: String,
    /// `None` when CloudTrail does not say.
    pub read_only: Option<bool>,
    pub user_arn: String,
    /// `userIdentity.userName`: who, for Identity Center portal and sign-in events.
    pub user_name: String,
    pub account_id: String,
    pub source_ip: String,
    pub user_agent: String,
    pub error_code: String,
    pub error_message: String,
    /// What it touched, named (`bucket logs`, `user mallory`, or an ARN).
    pub resource: String,
    /// The detection rule it matches, if any ([`detect`]).
    pub rule: Option<&'static detect::Rule>,
    /// What it created or undid of what the left-behind table tracks: (entry, creates, names).
    pub lifecycle: Vec<(usize, bool, Vec<String>)>,
}

impl Event {
    /// The service's short name: `iam` for `iam.amazonaws.com`.
    pub fn service(&self) -> &str {
        self.source
            .strip_suffix(".amazonaws.com")
            .unwrap_or(&self.source)
    }
    pub fn is_write(&self) -> bool {
        self.read_only == Some(false)
    }
    pub fn is_error(&self) -> bool {
        !self.error_code.is_empty()
    }
}

/// A CloudTrail record as CloudTrail writes it (to S3, or inside LookupEvents'
/// `CloudTrailEvent` string). Every field may be missing or null. Strings are borrowed from
/// the input where they can be (no escapes in them): a record costs a copy of what the report
/// keeps, not of everything it reads.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawRecord<'a> {
    /// CloudTrail spells it `eventID`, not camel case.
    #[serde(rename = "eventID", borrow)]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    aws_region: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_name: Option<Cow<'a, str>>,
    read_only: Option<serde_json::Value>,
    #[serde(borrow)]
    user_identity: Option<RawIdentity<'a>>,
    #[serde(borrow)]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(rename = "sourceIPAddress", borrow)]
    source_ip_address: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    error_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    error_message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resources: Option<Vec<RawResource<'a>>>,
    /// Kept as text and parsed only when something needs it: most events are read-only
    /// look-ups whose parameters matter for nothing but their resource's name.
    #[serde(borrow)]
    request_parameters: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    response_elements: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawIdentity<'a> {
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_name: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawResource<'a> {
    #[serde(rename = "ARN", borrow)]
    arn: Option<Cow<'a, str>>,
}

/// Cuts `s` to [`MAX_FIELD_CHARS`] characters, marking the cut, and makes control characters
/// visible (`\n` stays two characters), so a hostile value cannot forge lines of the plain-text
/// report. Line and paragraph separators and bidirectional overrides (which can make text
/// read differently from what it is) are made visible too.
pub fn clip(s: &str) -> String {
    // Most values are short printable ASCII: one copy, nothing else.
    if s.len() <= MAX_FIELD_CHARS && s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return s.to_owned();
    }
    let cut = s.char_indices().nth(MAX_FIELD_CHARS).map(|(i, _)| i);
    let kept = &s[..cut.unwrap_or(s.len())];
    let mut out = String::with_capacity(kept.len() + 32);
    for c in kept.chars() {
        if c.is_control() || deceptive(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if let Some(i) = cut {
        out += &format!("… [{} more characters]", s[i..].chars().count());
    }
    out
}

/// Characters that are not control characters but move or reorder text.
fn deceptive(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl Event {
    /// Parses one record. `None` when it has no usable time (it cannot be placed in a window).
    pub fn from_record(v: &serde_json::Value) -> Option<Event> {
        Self::from_json(&v.to_string())
    }

    /// Parses the JSON text of one record (LookupEvents' `CloudTrailEvent`).
    pub fn from_json(s: &str) -> Option<Event> {
        Self::from_raw(serde_json::from_str(s).ok()?)
    }

    fn from_raw(raw: RawRecord<'_>) -> Option<Event> {
        let time = from_rfc3339(raw.event_time.as_deref()?)?;
        let read_only = match raw.read_only {
            Some(serde_json::Value::Bool(b)) => Some(b),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        let identity = raw.user_identity.unwrap_or_default();
        let text = |v: &Option<Cow<'_, str>>| v.as_deref().unwrap_or_default().to_owned();
        let source = raw.event_source.as_deref().unwrap_or_default();
        let name = raw.event_name.as_deref().unwrap_or_default();
        let error_code = raw.error_code.as_deref().unwrap_or_default();
        let account_id = raw
            .recipient_account_id
            .as_deref()
            .or(identity.account_id.as_deref())
            .unwrap_or_default();
        let arns: Vec<String> = raw
            .resources
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| r.arn.map(Cow::into_owned))
            .collect();
        let table = detect::detections();
        let interested = table.interested(source, name);
        let parse = |raw: Option<&serde_json::value::RawValue>| {
            raw.and_then(|r| serde_json::from_str::<serde_json::Value>(r.get()).ok())
        };
        let request = if interested || arns.is_empty() {
            parse(raw.request_parameters)
        } else {
            None
        };
        let response = if interested {
            parse(raw.response_elements)
        } else {
            None
        };
        let service = detect::service_of(source);
        let rule = table.classify(source, name, error_code, request.as_ref(), account_id);
        // A failed call created or undid nothing.
        let lifecycle = if interested && error_code.is_empty() {
            table.lifecycle(source, name, request.as_ref(), response.as_ref())
        } else {
            Vec::new()
        };
        let resource = resources::name(service, &arns, request.as_ref(), response.as_ref());
        let o = |v: &Option<Cow<'_, str>>| clip(v.as_deref().unwrap_or_default());
        Some(Event {
            id: o(&raw.event_id),
            time,
            region: o(&raw.aws_region),
            source: clip(source),
            name: clip(name),
            read_only,
            user_arn: text(&identity.arn),
            user_name: text(&identity.user_name),
            account_id: account_id.to_owned(),
            source_ip: o(&raw.source_ip_address),
            user_agent: o(&raw.user_agent),
            error_code: clip(error_code),
            error_message: o(&raw.error_message),
            resource: clip(&resource),
            rule,
            lifecycle,
        })
    }
}

/// Reads a CloudTrail file, `{"Records": [...]}` as CloudTrail writes it to S3 or a
/// LookupEvents response `{"Events": [{"CloudTrailEvent": "..."}]}`, keeping only the events
/// `keep` accepts. A file up to [`IN_MEMORY_BYTES`] is read whole and parsed in place
/// (`size_hint`, its size when known, else 0, sizes the buffer); a larger one streams, a record
/// at a time, so memory follows the events kept, not the file.
pub fn read_file<R: std::io::Read>(
    reader: R,
    size_hint: u64,
    keep: impl Fn(&Event) -> bool + Sync,
) -> Result<Vec<Event>, String> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    struct File<F> {
        keep: F,
        stream: bool,
    }
    struct List<'a, F> {
        keep: &'a mut F,
        out: &'a mut Vec<Event>,
        lookup: bool,
        stream: bool,
    }
    #[derive(Deserialize)]
    struct LookupEvent {
        #[serde(rename = "CloudTrailEvent")]
        cloud_trail_event: Option<String>,
    }

    impl<'de, F: Fn(&Event) -> bool + Sync> DeserializeSeed<'de> for List<'_, F> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de, F: Fn(&Event) -> bool + Sync> Visitor<'de> for List<'_, F> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of CloudTrail records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            loop {
                let event = if self.lookup {
                    match seq.next_element::<LookupEvent>()? {
                        None => return Ok(()),
                        Some(e) => e.cloud_trail_event.as_deref().and_then(Event::from_json),
                    }
                } else if self.stream {
                    // A reader lends nothing: each record is read whole, then parsed from it.
                    match seq.next_element::<Box<serde_json::value::RawValue>>()? {
                        None => return Ok(()),
                        Some(r) => Event::from_raw(
                            serde_json::from_str(r.get()).map_err(serde::de::Error::custom)?,
                        ),
                    }
                } else {
                    // In memory: the records' text is found first (cheap), then parsed on
                    // every core, then kept in file order.
                    let mut raws: Vec<&'de serde_json::value::RawValue> = Vec::new();
                    while let Some(r) = seq.next_element()? {
                        raws.push(r);
                    }
                    *self.out =
                        parse_parallel(&raws, &*self.keep).map_err(serde::de::Error::custom)?;
                    return Ok(());
                };
                if let Some(e) = event
                    && (self.keep)(&e)
                {
                    self.out.push(e);
                }
            }
        }
    }
    impl<'de, F: Fn(&Event) -> bool + Sync> Visitor<'de> for File<F> {
        type Value = Vec<Event>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(r#"{"Records": [...]} or {"Events": [...]}"#)
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Vec<Event>, A::Error> {
            let mut out = Vec::new();
            let mut found = false;
            while let Some(key) = map.next_key::<String>()? {
                let lookup = match key.as_str() {
                    "Records" => false,
                    "Events" => true,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                };
                if found {
                    return Err(serde::de::Error::custom("both Records and Events"));
                }
                found = true;
                map.next_value_seed(List {
                    keep: &mut self.keep,
                    out: &mut out,
                    lookup,
                    stream: self.stream,
                })?;
            }
            if !found {
                return Err(serde::de::Error::custom(
                    r#"expected {"Records": [...]} or {"Events": [...]}"#,
                ));
            }
            Ok(out)
        }
    }
    // Files up to IN_MEMORY_BYTES are parsed from memory (several times faster); larger ones
    // stream, so memory stays bounded whatever the file's size.
    let mut reader = reader;
    // Sized up front when the caller knows the size: no growing and copying of a 12 MB buffer.
    let mut head = Vec::with_capacity(size_hint.min(IN_MEMORY_BYTES + 1) as usize);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(&mut reader, IN_MEMORY_BYTES + 1),
        &mut head,
    )
    .map_err(|e| e.to_string())?;
    if head.len() as u64 <= IN_MEMORY_BYTES {
        let mut de = serde_json::Deserializer::from_slice(&head);
        let events = de
            .deserialize_map(File {
                keep,
                stream: false,
            })
            .map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
        return Ok(events);
    }
    let chained = std::io::Read::chain(std::io::Cursor::new(head), reader);
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 16, chained));
    let events = de
        .deserialize_map(File { keep, stream: true })
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(events)
}

/// Parses records' JSON texts into the events `keep` accepts, in file order, split across the
/// machine's cores. Records without a usable time are dropped; a record that is not a
/// CloudTrail record fails the whole file.
fn parse_parallel(
    raws: &[&serde_json::value::RawValue],
    keep: &(impl Fn(&Event) -> bool + Sync),
) -> Result<Vec<Event>, String> {
    const MIN_PER_THREAD: usize = 1_000;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(raws.len() / MIN_PER_THREAD)
        .max(1);
    let parse = |chunk: &[&serde_json::value::RawValue]| -> Result<Vec<Event>, String> {
        let mut out = Vec::with_capacity(chunk.len());
        for r in chunk {
            let raw: RawRecord<'_> = serde_json::from_str(r.get()).map_err(|e| e.to_string())?;
            out.extend(Event::from_raw(raw).filter(keep));
        }
        Ok(out)
    };
    if threads == 1 {
        return parse(raws);
    }
    let parts: Vec<Result<Vec<Event>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = raws
            .chunks(raws.len().div_ceil(threads))
            .map(|c| s.spawn(move || parse(c)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    // Appended to the first part: a large buffer grows in place, no second copy of the events.
    let mut parts = parts.into_iter();
    let mut out = parts.next().unwrap_or(Ok(Vec::new()))?;
    for part in parts {
        out.append(&mut part?);
    }
    Ok(out)
}

/// Largest CloudTrail file parsed from memory; larger files stream.
pub const IN_MEMORY_BYTES: u64 = 32 * 1024 * 1024;

/// Whose events belong in a report: one Identity Center user's session of one permission
/// set in one account. Compared exactly, never by pattern.
#[derive(Debug, Clone)]
pub struct Session {
    pub account_id: String,
    /// The request's other accounts: the session is the same person's in each.
    pub more_accounts: Vec<String>,
    pub permission_set_name: String,
    pub user_name: String,
}

impl Session {
    /// `arn:aws:sts::<account>:assumed-role/AWSReservedSSO_<permission set>_<16 hex>/<user>`.
    pub fn owns(&self, e: &Event) -> bool {
        let Some(rest) = e.user_arn.strip_prefix("arn:") else {
            return false;
        };
        // partition:sts::account:assumed-role/role/session
        let mut parts = rest.splitn(5, ':');
        let (Some(_partition), Some("sts"), Some(""), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return false;
        };
        let Some(role_session) = resource.strip_prefix("assumed-role/") else {
            return false;
        };
        let Some((role, session)) = role_session.split_once('/') else {
            return false;
        };
        let suffix_ok = role
            .strip_prefix("AWSReservedSSO_")
            .and_then(|r| r.strip_prefix(self.permission_set_name.as_str()))
            .and_then(|r| r.strip_prefix('_'))
            .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        (account == self.account_id || self.more_accounts.iter().any(|a| a == account))
            && suffix_ok
            && session == self.user_name
    }
}

impl Session {
    /// The user's own Identity Center portal and sign-in events (in the Identity Center
    /// account): the user name compared exactly.
    pub fn signed_in(&self, e: &Event) -> bool {
        let portal = e.source == "signin.amazonaws.com" || e.source.ends_with("sso.amazonaws.com");
        portal && e.user_name == self.user_name
    }
}

/// One line of the summary table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    pub service: String,
    pub action: String,
    pub kind: &'static str,
    pub count: usize,
}

/// Counts by service and action, writes first, then by count (most first), then by name.
pub fn summarise(events: &[Event]) -> Vec<SummaryRow> {
    let mut counts: BTreeMap<(u8, &str, &str), usize> = BTreeMap::new();
    for e in events {
        let rank = match e.read_only {
            Some(false) => 0,
            None => 1,
            Some(true) => 2,
        };
        *counts.entry((rank, e.service(), &e.name)).or_default() += 1;
    }
    let mut rows: Vec<(u8, SummaryRow)> = counts
        .into_iter()
        .map(|((rank, service, action), count)| {
            let kind = ["write", "unknown", "read"][rank as usize];
            (
                rank,
                SummaryRow {
                    service: service.into(),
                    action: action.into(),
                    kind,
                    count,
                },
            )
        })
        .collect();
    rows.sort_by(|(ra, a), (rb, b)| {
        ra.cmp(rb)
            .then(b.count.cmp(&a.count))
            .then_with(|| (&a.service, &a.action).cmp(&(&b.service, &b.action)))
    });
    rows.into_iter().map(|(_, r)| r).collect()
}

/// Why an event deserves a reviewer's attention first: its detection rule's title.
pub fn flag(e: &Event) -> Option<&'static str> {
    e.rule.map(|r| r.title.as_str())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn record(name: &str, source: &str, arn: &str, read_only: bool) -> serde_json::Value {
        json!({
            "eventVersion": "1.09", "eventID": format!("id-{name}"), "eventTime": "2026-11-24T08:10:00Z",
            "awsRegion": "us-east-1", "eventSource": source, "eventName": name, "readOnly": read_only,
            "userIdentity": {"type": "AssumedRole", "arn": arn, "accountId": "123456789012"},
            "recipientAccountId": "123456789012", "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2"
        })
    }

    pub const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_BreakGlassAdmin_0123456789abcdef/alice@example.com";

    fn session() -> Session {
        Session {
            account_id: "123456789012".into(),
            more_accounts: Vec::new(),
            permission_set_name: "BreakGlassAdmin".into(),
            user_name: "alice@example.com".into(),
        }
    }

    #[test]
    fn session_match_is_exact() {
        let s = session();
        let ev =
            |arn: &str| Event::from_record(&record("X", "s3.amazonaws.com", arn, true)).unwrap();
        assert!(s.owns(&ev(ALICE)));
        for other in [
            ALICE.replace("alice@example.com", "alice@example.com.evil"),
            ALICE.replace("alice@example.com", "alice@exampleXcom"),
            ALICE.replace("alice@example.com", "bob@example.com"),
            ALICE.replace("BreakGlassAdmin_", "BreakGlassAdminX_"),
            ALICE.replace(
                "BreakGlassAdmin_0123456789abcdef",
                "BreakGlassAdmin_x_0123456789abcdef",
            ),
            ALICE.replace("123456789012", "210987654321"),
            ALICE.replace("assumed-role", "federated-user"),
            ALICE.replace(":sts:", ":iam:"),
            String::new(),
        ] {
            assert!(!s.owns(&ev(&other)), "{other}");
        }
    }

    #[test]
    fn portal_sign_ins_match_the_user_name_exactly() {
        let s = session();
        let portal = |user: &str, source: &str| {
            let mut r = record("Authenticate", source, "", false);
            r["userIdentity"] = serde_json::json!({"type": "Unknown", "userName": user, "accountId": "111111111111"});
            Event::from_record(&r).unwrap()
        };
        assert!(s.signed_in(&portal("alice@example.com", "sso.amazonaws.com")));
        assert!(s.signed_in(&portal("alice@example.com", "signin.amazonaws.com")));
        assert!(!s.signed_in(&portal("alice@example.com.evil", "sso.amazonaws.com")));
        assert!(!s.signed_in(&portal("ALICE@example.com", "sso.amazonaws.com")));
        assert!(!s.signed_in(&portal("alice@example.com", "s3.amazonaws.com")));
    }

    #[test]
    fn summary_puts_writes_first() {
        let evs: Vec<Event> = [
            record("ListBuckets", "s3.amazonaws.com", ALICE, true),
            record("ListBuckets", "s3.amazonaws.com", ALICE, true),
            record("CreateAccessKey", "iam.amazonaws.com", ALICE, false),
        ]
        .iter()
        .filter_map(Event::from_record)
        .collect();
        let rows = summarise(&evs);
        assert_eq!(rows[0].action, "CreateAccessKey");
        assert_eq!(rows[0].kind, "write");
        assert_eq!((rows[1].service.as_str(), rows[1].count), ("s3", 2));
    }

    #[test]
    fn hostile_and_missing_fields() {
        let mut r = record("GetObject", "s3.amazonaws.com", ALICE, true);
        r["userAgent"] = json!("x".repeat(100_000));
        r["errorCode"] = serde_json::Value::Null;
        r.as_object_mut().unwrap().remove("awsRegion");
        let e = Event::from_record(&r).unwrap();
        assert!(e.user_agent.len() < 400 && e.user_agent.contains("more characters"));
        assert_eq!(e.region, "");
        assert!(!e.is_error());
        assert!(Event::from_record(&json!({"eventName": "NoTime"})).is_none());
        assert!(Event::from_record(&json!("not an object")).is_none());
    }

    #[test]
    fn control_characters_cannot_forge_lines() {
        assert_eq!(
            clip("ok\nFLAGGED EVENTS\r\t\u{1b}[31m"),
            "ok\\nFLAGGED EVENTS\\r\\t\\u{1b}[31m"
        );
        assert_eq!(clip("héllo"), "héllo");
    }

    #[test]
    fn reads_files_as_a_stream() {
        let rec = record("ListBuckets", "s3.amazonaws.com", ALICE, true);
        let s3 = json!({"Records": [rec.clone(), rec.clone()], "extra": 1}).to_string();
        assert_eq!(read_file(s3.as_bytes(), 0, |_| true).unwrap().len(), 2);
        assert_eq!(read_file(s3.as_bytes(), 0, |_| false).unwrap().len(), 0);
        let lookup =
            json!({"Events": [{"CloudTrailEvent": rec.to_string()}], "NextToken": "x"}).to_string();
        assert_eq!(read_file(lookup.as_bytes(), 0, |_| true).unwrap().len(), 1);
        for bad in [
            "{}",
            "[]",
            "{\"Records\": 3}",
            "{\"Records\": [1]}",
            "{\"Records\": []} trailing",
            &s3[..s3.len() / 2],
        ] {
            assert!(read_file(bad.as_bytes(), 0, |_| true).is_err(), "{bad}");
        }
    }

    #[test]
    fn large_files_parse_on_every_core_in_file_order() {
        // Enough records for several threads: the order, the filter and a bad record's
        // failure must be those of a single pass.
        let n = 4_321;
        let records: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                let mut r = record("ListBuckets", "s3.amazonaws.com", ALICE, true);
                r["eventID"] = json!(format!("id-{i}"));
                r
            })
            .collect();
        let file = json!({"Records": records}).to_string();
        let ids: Vec<String> = read_file(file.as_bytes(), 0, |e| !e.id.ends_with('7'))
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        let want: Vec<String> = (0..n)
            .map(|i| format!("id-{i}"))
            .filter(|id| !id.ends_with('7'))
            .collect();
        assert_eq!(ids, want);
        let mut bad = records.clone();
        bad[n - 3] = json!({"eventTime": ["not", "a", "time"]});
        let file = json!({"Records": bad}).to_string();
        assert!(read_file(file.as_bytes(), 0, |_| true).is_err());
    }

    #[test]
    fn flags() {
        let e = |n: &str, s: &str, ro: bool| Event::from_record(&record(n, s, ALICE, ro)).unwrap();
        assert_eq!(
            flag(&e("CreateAccessKey", "iam.amazonaws.com", false)),
            Some("IAM access key created")
        );
        assert_eq!(
            flag(&e("ConsoleLogin", "signin.amazonaws.com", false)),
            Some("Console sign-in")
        );
        assert_eq!(
            flag(&e("DeleteBucket", "s3.amazonaws.com", false)),
            Some("Data store deleted (bucket, database, snapshot)")
        );
        assert_eq!(flag(&e("ListBuckets", "s3.amazonaws.com", true)), None);
        assert_eq!(
            flag(&e("GetObject", "s3.amazonaws.com", true)),
            None,
            "a plain read is no flag"
        );
    }
}
