//! What the report says about a session beyond its timeline: flags collapsed into rows, ordered
//! by severity; what the session created and did not undo; what was done with its credentials
//! after the access ended; what was read (coverage); and a picture of the activity. All of it
//! pure, from parsed events; [`Twin`] is the machine-readable report (`--json`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use time::OffsetDateTime;

use super::Event;
use super::detect::{Severity, UNNAMED, detections};
use crate::time_util::rfc3339;

/// Most resources listed on one row (the count says how many events there were).
const MOST_RESOURCES: usize = 10;

/// Flagged events of one rule, service, action and outcome, collapsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagRow {
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    pub technique: String,
    pub tactic: String,
    /// The `eventSource` prefix (`ec2`).
    pub service: String,
    /// The `eventName`.
    pub action: String,
    pub count: usize,
    pub first: String,
    pub last: String,
    /// The distinct resources touched (at most ten; `resources_total` says how many).
    pub resources: Vec<String>,
    pub resources_total: usize,
    /// The attempt failed (denied, or its target missing): still the signal it was.
    pub failed: bool,
    pub error: Option<String>,
    #[serde(skip)]
    pub first_time: Option<OffsetDateTime>,
}

impl FlagRow {
    /// The resources as one line, with how many are not listed.
    pub fn resource_line(&self) -> String {
        let mut s = self.resources.join(", ");
        if self.resources_total > self.resources.len() {
            s.push_str(&format!(
                " and {} more",
                self.resources_total - self.resources.len()
            ));
        }
        s
    }

    /// `11:54:47–11:54:50` (or one time).
    pub fn span(&self) -> String {
        let t = |s: &str| s.get(11..19).unwrap_or(s).to_owned();
        if self.first == self.last {
            t(&self.first)
        } else {
            format!("{}–{}", t(&self.first), t(&self.last))
        }
    }
}

/// The flagged events as rows: one per (rule, service, action, error), most severe first,
/// then by time.
pub fn flag_rows(events: &[Event]) -> Vec<FlagRow> {
    let mut groups: BTreeMap<(&str, &str, &str, &str), Vec<&Event>> = BTreeMap::new();
    for e in events {
        if let Some(r) = e.rule {
            groups
                .entry((r.id.as_str(), e.service(), &e.name, &e.error_code))
                .or_default()
                .push(e);
        }
    }
    let mut rows: Vec<FlagRow> = groups
        .into_values()
        .map(|mut group| {
            group.sort_by_key(|e| e.time);
            let e = group[0];
            let rule = e.rule.expect("grouped by rule");
            let mut resources = BTreeSet::new();
            for g in &group {
                if !g.resource.is_empty() {
                    resources.insert(g.resource.clone());
                }
            }
            let resources_total = resources.len();
            FlagRow {
                rule: rule.id.clone(),
                title: rule.title.clone(),
                severity: rule.severity,
                technique: rule.technique.clone(),
                tactic: rule.tactic.clone(),
                service: e.service().to_owned(),
                action: e.name.clone(),
                count: group.len(),
                first: rfc3339(e.time),
                last: rfc3339(group[group.len() - 1].time),
                resources: resources.into_iter().take(MOST_RESOURCES).collect(),
                resources_total,
                failed: e.is_error(),
                error: (!e.error_code.is_empty()).then(|| e.error_code.clone()),
                first_time: Some(e.time),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.severity, a.first_time, &a.rule).cmp(&(b.severity, b.first_time, &b.rule))
    });
    rows
}

/// Flagged events by severity, most severe first (severities with none left out).
pub fn by_severity(rows: &[FlagRow]) -> Vec<(Severity, usize)> {
    Severity::ALL
        .iter()
        .map(|s| {
            (
                *s,
                rows.iter()
                    .filter(|r| r.severity == *s)
                    .map(|r| r.count)
                    .sum(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Something the session created and did not undo before it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftBehind {
    pub what: String,
    pub resource: String,
    pub service: String,
    pub action: String,
    pub time: String,
}

/// What the session created (in the left-behind table's sense) and did not undo, in order.
pub fn left_behind(events: &[Event]) -> Vec<LeftBehind> {
    let table = detections();
    // (entry, name, the event's id for what has no name) → the event that created it.
    let mut open: BTreeMap<(usize, String, Option<&str>), &Event> = BTreeMap::new();
    let mut ordered: Vec<&Event> = events.iter().collect();
    ordered.sort_by_key(|e| e.time);
    for e in ordered {
        for (entry, creates, names) in &e.lifecycle {
            for name in names {
                if name == UNNAMED {
                    // Nothing can undo what has no name: one row per such event.
                    open.insert((*entry, name.clone(), Some(&e.id)), e);
                } else if *creates {
                    open.entry((*entry, name.clone(), None)).or_insert(e);
                } else {
                    open.remove(&(*entry, name.clone(), None));
                }
            }
        }
    }
    let mut out: Vec<(OffsetDateTime, LeftBehind)> = open
        .into_iter()
        .map(|((entry, name, _), e)| {
            (
                e.time,
                LeftBehind {
                    what: table.left_behind[entry].title.clone(),
                    resource: name,
                    service: e.service().to_owned(),
                    action: e.name.clone(),
                    time: rfc3339(e.time),
                },
            )
        })
        .collect();
    out.sort_by(|a, b| (a.0, &a.1.what).cmp(&(b.0, &b.1.what)));
    out.into_iter().map(|(_, l)| l).collect()
}

/// What was read, and what cannot be there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coverage {
    pub regions: Vec<String>,
    /// LookupEvents calls made (none for a file).
    pub calls: Option<usize>,
    pub complete: bool,
    pub incomplete: Vec<String>,
    pub note: &'static str,
}

/// What CloudTrail's event history never holds.
pub const DATA_EVENTS_NOTE: &str = "CloudTrail's event history holds management events only: data events (S3 object reads and writes, Lambda invocations, DynamoDB item access) are not in this report. CloudTrail can lag by 15 minutes or more.";

impl Coverage {
    pub fn new(regions: Vec<String>, calls: Option<usize>, incomplete: &[String]) -> Self {
        Coverage {
            regions,
            calls,
            complete: incomplete.is_empty(),
            incomplete: incomplete.to_vec(),
            note: DATA_EVENTS_NOTE,
        }
    }
}

/// One event of the session after its access ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AfterEnd {
    pub time: String,
    pub region: String,
    pub service: String,
    pub action: String,
    pub resource: String,
    pub source_ip: String,
    pub error: Option<String>,
    pub rule: Option<String>,
}

impl AfterEnd {
    pub fn of(e: &Event) -> Self {
        AfterEnd {
            time: rfc3339(e.time),
            region: e.region.clone(),
            service: e.service().to_owned(),
            action: e.name.clone(),
            resource: e.resource.clone(),
            source_ip: e.source_ip.clone(),
            error: (!e.error_code.is_empty()).then(|| e.error_code.clone()),
            rule: e.rule.map(|r| r.id.clone()),
        }
    }
}

/// The report for machines: what the HTML gives people.
#[derive(Debug, Clone, Serialize)]
pub struct Twin<'a> {
    /// Events of the session while the access lasted.
    pub events: usize,
    pub flags: &'a [FlagRow],
    pub left_behind: &'a [LeftBehind],
    pub after_end: &'a [AfterEnd],
    pub coverage: &'a Coverage,
}

/// One column of the activity picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bin {
    /// `HH:MM` of its start.
    pub label: String,
    pub events: usize,
    pub writes: usize,
    pub flagged: usize,
    /// Bar heights in pixels: flagged, other writes, the rest (they stack).
    pub flagged_px: u32,
    pub writes_px: u32,
    pub reads_px: u32,
    /// What happened to the access in this bin (`granted`, `ended early`, `revoked`).
    pub marks: Vec<&'static str>,
}

/// Events per few minutes across the session, writes and flags marked, and the moments
/// that shaped the access drawn in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub bin_minutes: i64,
    pub bins: Vec<Bin>,
}

/// Tallest bar, in pixels.
const BAR_PX: u32 = 60;
/// Most columns the picture has.
const MOST_BINS: i64 = 48;

/// The activity between `from` and `to` (the access's window), in at most 48 columns of 1, 2,
/// 5, 10, 15, 30 or 60 minutes (or more hours); `marks` are (moment, what).
pub fn activity(
    events: &[Event],
    from: OffsetDateTime,
    to: OffsetDateTime,
    marks: &[(OffsetDateTime, &'static str)],
) -> Activity {
    let span = (to - from).whole_minutes().max(1);
    let step = [1, 2, 5, 10, 15, 30, 60, 120, 240]
        .into_iter()
        .find(|m| span / m < MOST_BINS)
        .unwrap_or(360);
    let start = from
        .replace_second(0)
        .unwrap_or(from)
        .replace_nanosecond(0)
        .unwrap_or(from);
    let count = (((to - start).whole_minutes()) / step + 1).clamp(1, MOST_BINS + 1) as usize;
    let index = |t: OffsetDateTime| -> Option<usize> {
        let i = (t - start).whole_minutes().div_euclid(step);
        (i >= 0 && (i as usize) < count).then_some(i as usize)
    };
    let mut bins: Vec<Bin> = (0..count)
        .map(|i| Bin {
            label: crate::time_util::hhmm(start + time::Duration::minutes(i as i64 * step))
                .trim_end_matches(" UTC")
                .to_owned(),
            events: 0,
            writes: 0,
            flagged: 0,
            flagged_px: 0,
            writes_px: 0,
            reads_px: 0,
            marks: Vec::new(),
        })
        .collect();
    for e in events {
        if let Some(i) = index(e.time) {
            bins[i].events += 1;
            if e.rule.is_some() {
                bins[i].flagged += 1;
            } else if e.is_write() {
                bins[i].writes += 1;
            }
        }
    }
    for (t, what) in marks {
        if let Some(i) = index(*t) {
            bins[i].marks.push(what);
        }
    }
    let most = bins.iter().map(|b| b.events).max().unwrap_or(0).max(1) as u32;
    let px = |n: usize| -> u32 {
        if n == 0 {
            0
        } else {
            ((n as u32 * BAR_PX).div_ceil(most)).max(2)
        }
    };
    for b in &mut bins {
        b.flagged_px = px(b.flagged);
        b.writes_px = px(b.writes);
        b.reads_px = px(b.events - b.flagged - b.writes);
    }
    Activity {
        bin_minutes: step,
        bins,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{ALICE, record};
    use serde_json::json;

    fn event(
        name: &str,
        source: &str,
        second: u32,
        params: serde_json::Value,
        error: Option<&str>,
    ) -> Event {
        let mut r = record(
            name,
            source,
            ALICE,
            name.starts_with("Get") || name.starts_with("Describe"),
        );
        r["eventTime"] = json!(format!(
            "2026-11-24T08:{:02}:{:02}Z",
            second / 60,
            second % 60
        ));
        r["requestParameters"] = params;
        r["eventID"] = json!(format!("{name}-{second}"));
        if let Some(e) = error {
            r["errorCode"] = json!(e);
        }
        Event::from_record(&r).unwrap()
    }

    #[test]
    fn repeats_collapse_into_one_row_with_count_span_and_resources() {
        let mut events: Vec<Event> = (0..29)
            .map(|i| {
                event(
                    "GetPasswordData",
                    "ec2.amazonaws.com",
                    i,
                    json!({"instanceId": format!("i-{i:03}")}),
                    Some("Client.UnauthorizedOperation"),
                )
            })
            .collect();
        events.push(event(
            "StopLogging",
            "cloudtrail.amazonaws.com",
            100,
            json!({"name": "main"}),
            None,
        ));
        events.push(event(
            "GetBucketCors",
            "s3.amazonaws.com",
            5,
            json!({"bucketName": "b"}),
            Some("NoSuchCORSConfiguration"),
        ));
        let rows = flag_rows(&events);
        assert_eq!(rows.len(), 2, "{rows:#?}");
        assert_eq!(rows[0].rule, "cloudtrail-tampered", "the most severe first");
        assert_eq!(rows[0].resources, ["trail main"]);
        let pw = &rows[1];
        assert_eq!(
            (pw.count, pw.failed, pw.severity),
            (29, true, Severity::High)
        );
        assert_eq!(pw.error.as_deref(), Some("Client.UnauthorizedOperation"));
        assert_eq!(
            (pw.first.as_str(), pw.last.as_str()),
            ("2026-11-24T08:00:00Z", "2026-11-24T08:00:28Z")
        );
        assert_eq!(pw.resources_total, 29);
        assert_eq!(pw.resources.len(), 10);
        assert_eq!(
            by_severity(&rows),
            [(Severity::Critical, 1), (Severity::High, 29)]
        );
    }

    #[test]
    fn left_behind_is_what_was_created_and_not_undone() {
        let mut created_key = event(
            "CreateAccessKey",
            "iam.amazonaws.com",
            1,
            json!({"userName": "u"}),
            None,
        );
        created_key.lifecycle = detections().lifecycle(
            "iam.amazonaws.com",
            "CreateAccessKey",
            Some(&json!({"userName": "u"})),
            Some(&json!({"accessKey": {"accessKeyId": "AKIA1"}})),
        );
        let events = vec![
            event(
                "CreateUser",
                "iam.amazonaws.com",
                0,
                json!({"userName": "kept"}),
                None,
            ),
            event(
                "CreateUser",
                "iam.amazonaws.com",
                2,
                json!({"userName": "gone"}),
                None,
            ),
            event(
                "DeleteUser",
                "iam.amazonaws.com",
                3,
                json!({"userName": "gone"}),
                None,
            ),
            created_key,
            event(
                "CreateUser",
                "iam.amazonaws.com",
                4,
                json!({"userName": "failed"}),
                Some("AccessDenied"),
            ),
            event(
                "CreateRole",
                "iam.amazonaws.com",
                5,
                json!({"roleName": "r"}),
                None,
            ),
            event(
                "UpdateAssumeRolePolicy",
                "iam.amazonaws.com",
                6,
                json!({"roleName": "r", "policyDocument": "{}"}),
                None,
            ),
            event(
                "DeleteRole",
                "iam.amazonaws.com",
                7,
                json!({"roleName": "r"}),
                None,
            ),
            // No response in the record: the key's id is unknown, and it is still left behind.
            event("CreateAccessKey", "iam.amazonaws.com", 8, json!({}), None),
        ];
        let left: Vec<(String, String)> = left_behind(&events)
            .into_iter()
            .map(|l| (l.what, l.resource))
            .collect();
        assert_eq!(
            left,
            [
                ("IAM user".to_owned(), "kept".to_owned()),
                ("IAM access key".to_owned(), "AKIA1".to_owned()),
                ("IAM access key".to_owned(), UNNAMED.to_owned())
            ]
        );
    }

    #[test]
    fn each_unnamed_creation_is_its_own_row() {
        // Two keys created without a response to name them: two keys left behind, told apart
        // by their events' ids (CloudTrail's `eventID`).
        let events = [
            event("CreateAccessKey", "iam.amazonaws.com", 1, json!({}), None),
            event("CreateAccessKey", "iam.amazonaws.com", 2, json!({}), None),
        ];
        assert_eq!(left_behind(&events).len(), 2);
    }

    #[test]
    fn the_activity_picture_bins_events_and_marks_moments() {
        let events = vec![
            event("ListBuckets", "s3.amazonaws.com", 10, json!({}), None),
            event(
                "PutObject",
                "s3.amazonaws.com",
                70,
                json!({"bucketName": "b"}),
                None,
            ),
            event(
                "StopLogging",
                "cloudtrail.amazonaws.com",
                75,
                json!({"name": "t"}),
                None,
            ),
        ];
        let from = crate::time_util::from_rfc3339("2026-11-24T08:00:00Z").unwrap();
        let to = from + time::Duration::minutes(30);
        let a = activity(&events, from, to, &[(from, "granted"), (to, "revoked")]);
        assert_eq!(a.bin_minutes, 1);
        assert_eq!(a.bins.len(), 31);
        assert_eq!(
            (a.bins[1].events, a.bins[1].writes, a.bins[1].flagged),
            (2, 1, 1)
        );
        assert_eq!(a.bins[0].marks, ["granted"]);
        assert_eq!(a.bins[30].marks, ["revoked"]);
        assert_eq!(
            a.bins[1].flagged_px + a.bins[1].writes_px,
            60,
            "the busiest bin is full height"
        );
        let day = activity(&events, from, from + time::Duration::hours(24), &[]);
        assert_eq!(
            (day.bin_minutes, day.bins.len()),
            (60, 25),
            "an hour a column for a day"
        );
    }
}
