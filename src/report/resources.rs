//! What an event touched, named for a reviewer: `bucket logs-archive`, `user mallory`,
//! `instance i-0abc`. From the record's `resources[]` when CloudTrail fills it, otherwise from
//! the request parameters of the common services (and, for what only exists once created, the
//! response: a new access key, launched instances).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::detect::{scalar, values_at};

/// (where in the request parameters, what it is), most telling first.
const REQUEST: &[(&str, &str)] = &[
    ("bucketName", "bucket"),
    ("userName", "user"),
    ("roleName", "role"),
    ("policyArn", "policy"),
    ("groupName", "group"),
    ("instanceProfileName", "instance profile"),
    ("accessKeyId", "access key"),
    ("functionName", "function"),
    ("secretId", "secret"),
    ("trailName", "trail"),
    ("logGroupName", "log group"),
    ("keyId", "key"),
    ("snapshotId", "snapshot"),
    ("imageId", "image"),
    ("dBSnapshotIdentifier", "RDS snapshot"),
    ("dBClusterSnapshotIdentifier", "RDS snapshot"),
    ("dBInstanceIdentifier", "RDS instance"),
    ("dBClusterIdentifier", "RDS cluster"),
    ("instanceId", "instance"),
    ("instanceIds[]", "instance"),
    ("instancesSet.items[].instanceId", "instance"),
    ("groupId", "security group"),
    ("volumeId", "volume"),
    ("roleArn", "role"),
    ("trustAnchorId", "trust anchor"),
    ("detectorId", "detector"),
    ("configurationRecorderName", "recorder"),
    ("alarmNames[]", "alarm"),
    ("flowLogIds[]", "flow log"),
    ("tableName", "table"),
    ("vpcId", "VPC"),
    ("subnetId", "subnet"),
    ("policyName", "policy"),
    ("names[]", "parameter"),
];

/// `name` means something else in each service.
const NAME_BY_SERVICE: &[(&str, &str)] = &[
    ("ssm", "parameter"),
    ("cloudtrail", "trail"),
    ("secretsmanager", "secret"),
    ("kms", "key"),
    ("organizations", "policy"),
];

/// Where a created resource's name is in the response.
const RESPONSE: &[(&str, &str)] = &[
    ("accessKey.accessKeyId", "access key"),
    ("instancesSet.items[].instanceId", "instance"),
    ("trustAnchor.trustAnchorId", "trust anchor"),
    ("policy.arn", "policy"),
    ("snapshotId", "snapshot"),
    ("imageId", "image"),
];

/// At most this many names for one event.
const MOST: usize = 3;

/// The event's resource: its `resources[]` ARNs, else what the request (or response) names.
pub fn name(
    service: &str,
    arns: &[String],
    request: Option<&Value>,
    response: Option<&Value>,
) -> String {
    if !arns.is_empty() {
        return join(arns.to_vec());
    }
    if let Some(p) = request {
        for (path, kind) in candidates(p) {
            let found = found_at(p, path);
            if !found.is_empty() {
                return labelled(kind, found);
            }
        }
        if let Some((_, kind)) = NAME_BY_SERVICE.iter().find(|(s, _)| *s == service) {
            let found = found_at(p, "name");
            if !found.is_empty() {
                return labelled(kind, found);
            }
        }
    }
    if let Some(r) = response {
        for (path, kind) in RESPONSE {
            let found = found_at(r, path);
            if !found.is_empty() {
                return labelled(kind, found);
            }
        }
    }
    String::new()
}

/// The entries of [`REQUEST`] that can match `p`, in order: for an object, only those whose
/// first key it has (most events carry a few keys; the table has dozens).
fn candidates(p: &Value) -> Vec<&'static (&'static str, &'static str)> {
    static BY_FIRST_KEY: OnceLock<HashMap<&'static str, Vec<usize>>> = OnceLock::new();
    let Value::Object(map) = p else {
        return REQUEST.iter().collect();
    };
    let index = BY_FIRST_KEY.get_or_init(|| {
        let mut index: HashMap<&'static str, Vec<usize>> = HashMap::new();
        for (i, (path, _)) in REQUEST.iter().enumerate() {
            let first = path.split('.').next().unwrap_or(path);
            index
                .entry(first.strip_suffix("[]").unwrap_or(first))
                .or_default()
                .push(i);
        }
        index
    });
    let mut found: Vec<usize> = map
        .keys()
        .filter_map(|k| index.get(k.as_str()))
        .flatten()
        .copied()
        .collect();
    found.sort_unstable();
    found.into_iter().map(|i| &REQUEST[i]).collect()
}

fn found_at(v: &Value, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    values_at(v, path, &mut |x| {
        if let Some(s) = scalar(x).filter(|s| !s.is_empty()) {
            out.push(s);
        }
    });
    out
}

fn labelled(kind: &str, names: Vec<String>) -> String {
    format!("{kind} {}", join(names))
}

fn join(mut names: Vec<String>) -> String {
    names.dedup();
    let more = names.len().saturating_sub(MOST);
    names.truncate(MOST);
    let mut s = names.join(", ");
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_what_the_event_touched() {
        let n = |service: &str, req: Value| name(service, &[], Some(&req), None);
        assert_eq!(
            n("s3", json!({"bucketName": "logs", "Host": "x"})),
            "bucket logs"
        );
        assert_eq!(n("iam", json!({"userName": "mallory"})), "user mallory");
        assert_eq!(
            n(
                "iam",
                json!({"roleName": "r", "policyArn": "arn:aws:iam::aws:policy/X"})
            ),
            "role r",
            "the most telling name first"
        );
        assert_eq!(
            n(
                "ec2",
                json!({"instancesSet": {"items": [{"instanceId": "i-1"}, {"instanceId": "i-2"}]}})
            ),
            "instance i-1, i-2"
        );
        assert_eq!(
            n(
                "ssm",
                json!({"instanceIds": ["i-1", "i-2", "i-3", "i-4", "i-5"]})
            ),
            "instance i-1, i-2, i-3 and 2 more"
        );
        assert_eq!(
            n("ssm", json!({"name": "/db/password"})),
            "parameter /db/password"
        );
        assert_eq!(n("cloudtrail", json!({"name": "main"})), "trail main");
        assert_eq!(n("ec2", json!({"dryRun": false})), "");
        assert_eq!(
            name(
                "iam",
                &[],
                Some(&json!({"userName": "u"})),
                Some(&json!({"accessKey": {"accessKeyId": "AKIA1"}}))
            ),
            "user u"
        );
        assert_eq!(
            name(
                "ec2",
                &[],
                Some(&json!({"instanceType": "t3.micro"})),
                Some(&json!({"instancesSet": {"items": [{"instanceId": "i-9"}]}}))
            ),
            "instance i-9"
        );
        assert_eq!(
            name(
                "ec2",
                &["arn:aws:ec2:us-east-1:1:instance/i-1".into()],
                Some(&json!({"instanceId": "i-2"})),
                None
            ),
            "arn:aws:ec2:us-east-1:1:instance/i-1"
        );
    }
}
