//! The table's validation, and each rule's conditions against a matching and a near-miss
//! record.

use super::*;
use serde_json::json;

const OURS: &str = "123456789012";

fn rule_for(source: &str, action: &str, error: &str, params: Value) -> Option<String> {
    detections()
        .classify(source, action, error, Some(&params), OURS)
        .map(|r| r.id.clone())
}

#[test]
fn the_table_is_valid() {
    let d = detections();
    assert!(d.rules.len() >= 40, "{} rules", d.rules.len());
    assert!(d.left_behind.len() >= 15);
    let bad = "[[rule]]\nid = \"X\"\ntitle = \"\"\nseverity = \"high\"\ntechnique = \"T12\"\ntactic = \"Napping\"\nsource = \"ec2\"\nactions = []\n[[rule.when]]\npaths = [\"a\"]\nexists = true\nequals = [\"b\"]\n\n[[left_behind]]\ntitle = \"t\"\ncreate = \"CreateUser\"\nundo = []\nkey = \"k\"\n";
    let e = Detections::parse(bad).unwrap_err();
    for problem in [
        "the id is lowercase",
        "no title",
        "not an ATT&CK id",
        "not an ATT&CK tactic",
        "not an eventSource",
        "no actions",
        "exactly one test",
        "not service:Action",
        "nothing undoes it",
    ] {
        assert!(e.contains(problem), "{problem} missing from {e}");
    }
    assert!(Detections::parse("[[rule]]\nid = \"x\"\nunknown = 1\n").is_err());
}

#[test]
fn lambda_versions_count_as_their_base_name() {
    assert_eq!(base_action("AddPermission20150331v2"), "AddPermission");
    assert_eq!(base_action("CreateFunction20150331"), "CreateFunction");
    assert_eq!(base_action("GetObject"), "GetObject");
    assert_eq!(base_action("Describe2"), "Describe2");
    assert_eq!(
        rule_for(
            "lambda.amazonaws.com",
            "AddPermission20150331v2",
            "",
            json!({})
        ),
        Some("lambda-code-changed".into())
    );
}

#[test]
fn sharing_a_snapshot_or_image_needs_an_added_permission() {
    let shared = json!({"snapshotId": "snap-1", "createVolumePermission": {"add": {"items": [{"userId": "210987654321"}]}}});
    assert_eq!(
        rule_for("ec2.amazonaws.com", "ModifySnapshotAttribute", "", shared),
        Some("snapshot-shared".into())
    );
    let public =
        json!({"imageId": "ami-1", "launchPermission": {"add": {"items": [{"group": "all"}]}}});
    assert_eq!(
        rule_for("ec2.amazonaws.com", "ModifyImageAttribute", "", public),
        Some("image-shared".into())
    );
    let removed = json!({"snapshotId": "snap-1", "createVolumePermission": {"remove": {"items": [{"userId": "210987654321"}]}}});
    assert_eq!(
        rule_for("ec2.amazonaws.com", "ModifySnapshotAttribute", "", removed),
        None,
        "taking a share away is no exfiltration"
    );
    let rds =
        json!({"dBSnapshotIdentifier": "x", "attributeName": "restore", "valuesToAdd": ["all"]});
    assert_eq!(
        rule_for("rds.amazonaws.com", "ModifyDBSnapshotAttribute", "", rds),
        Some("rds-snapshot-shared".into())
    );
    let rds_remove =
        json!({"dBSnapshotIdentifier": "x", "attributeName": "restore", "valuesToRemove": ["all"]});
    assert_eq!(
        rule_for(
            "rds.amazonaws.com",
            "ModifyDBSnapshotAttribute",
            "",
            rds_remove
        ),
        None
    );
}

#[test]
fn a_security_group_open_to_the_internet() {
    let open = |cidr: &str, key: &str, range: &str| json!({"groupId": "sg-1", "ipPermissions": {"items": [{"ipProtocol": "tcp", range: {"items": [{key: cidr}]}}]}});
    for (cidr, key, range) in [
        ("0.0.0.0/0", "cidrIp", "ipRanges"),
        ("::/0", "cidrIpv6", "ipv6Ranges"),
    ] {
        assert_eq!(
            rule_for(
                "ec2.amazonaws.com",
                "AuthorizeSecurityGroupIngress",
                "",
                open(cidr, key, range)
            ),
            Some("security-group-opened".into()),
            "{cidr}"
        );
    }
    assert_eq!(
        rule_for(
            "ec2.amazonaws.com",
            "AuthorizeSecurityGroupIngress",
            "",
            open("10.0.0.0/8", "cidrIp", "ipRanges")
        ),
        None,
        "a private range is not the internet"
    );
}

#[test]
fn bucket_policies_and_role_trust_that_let_others_in() {
    let policy = |principal: Value| json!({"bucketName": "b", "bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": principal, "Action": "s3:GetObject"}]}});
    for p in [
        json!("*"),
        json!({"AWS": "*"}),
        json!({"AWS": ["arn:aws:iam::210987654321:root"]}),
        json!({"AWS": "210987654321"}),
    ] {
        assert_eq!(
            rule_for("s3.amazonaws.com", "PutBucketPolicy", "", policy(p.clone())),
            Some("bucket-policy-opened".into()),
            "{p}"
        );
    }
    for p in [
        json!({"Service": "cloudtrail.amazonaws.com"}),
        json!({"AWS": format!("arn:aws:iam::{OURS}:root")}),
    ] {
        assert_eq!(
            rule_for("s3.amazonaws.com", "PutBucketPolicy", "", policy(p.clone())),
            Some("bucket-policy-changed".into()),
            "{p}: a change, not an opening"
        );
    }
    // Trust policies arrive as JSON inside a string.
    let role = |aws: &str| json!({"roleName": "r", "assumeRolePolicyDocument": format!("{{\"Statement\":[{{\"Effect\":\"Allow\",\"Principal\":{{\"AWS\":\"{aws}\"}},\"Action\":\"sts:AssumeRole\"}}]}}")});
    assert_eq!(
        rule_for(
            "iam.amazonaws.com",
            "CreateRole",
            "",
            role("arn:aws:iam::210987654321:root")
        ),
        Some("role-trusts-another-account".into())
    );
    assert_eq!(
        rule_for("iam.amazonaws.com", "CreateRole", "", role(OURS)),
        Some("role-created".into())
    );
}

#[test]
fn admin_access_wins_over_a_plain_attachment() {
    let attach = |arn: &str| json!({"userName": "u", "policyArn": arn});
    assert_eq!(
        rule_for(
            "iam.amazonaws.com",
            "AttachUserPolicy",
            "",
            attach("arn:aws:iam::aws:policy/AdministratorAccess")
        ),
        Some("admin-policy-attached".into())
    );
    assert_eq!(
        rule_for(
            "iam.amazonaws.com",
            "AttachUserPolicy",
            "",
            attach("arn:aws:iam::aws:policy/ReadOnlyAccess")
        ),
        Some("permissions-granted".into())
    );
}

#[test]
fn conditions_on_flags_and_names() {
    assert_eq!(
        rule_for(
            "ssm.amazonaws.com",
            "GetParameter",
            "",
            json!({"name": "/db/pw", "withDecryption": true})
        ),
        Some("parameter-decrypted".into())
    );
    assert_eq!(
        rule_for(
            "ssm.amazonaws.com",
            "GetParameter",
            "",
            json!({"name": "/db/host"})
        ),
        None
    );
    assert_eq!(
        rule_for(
            "ec2.amazonaws.com",
            "DescribeInstanceAttribute",
            "Client.UnauthorizedOperation",
            json!({"instanceId": "i-1", "attribute": "userData"})
        ),
        Some("user-data-read".into()),
        "a failed attempt keeps its rule"
    );
    assert_eq!(
        rule_for(
            "ec2.amazonaws.com",
            "DescribeInstanceAttribute",
            "",
            json!({"instanceId": "i-1", "attribute": "instanceType"})
        ),
        None
    );
    assert_eq!(
        rule_for(
            "ec2.amazonaws.com",
            "ModifyInstanceAttribute",
            "",
            json!({"instanceId": "i-1", "userData": {"value": "x"}})
        ),
        Some("user-data-changed".into())
    );
    assert_eq!(
        rule_for(
            "ec2.amazonaws.com",
            "ModifyInstanceAttribute",
            "",
            json!({"instanceId": "i-1", "disableApiTermination": {"value": false}})
        ),
        None
    );
}

#[test]
fn denials_are_signals_and_missing_configuration_is_not() {
    assert_eq!(
        rule_for(
            "ce.amazonaws.com",
            "GetCostAndUsage",
            "AccessDenied",
            json!({})
        ),
        Some("denied".into())
    );
    assert_eq!(
        rule_for(
            "ec2.amazonaws.com",
            "DescribeImages",
            "Client.UnauthorizedOperation",
            json!({})
        ),
        Some("denied".into())
    );
    for (source, action, error) in [
        (
            "s3.amazonaws.com",
            "GetBucketCors",
            "NoSuchCORSConfiguration",
        ),
        ("s3.amazonaws.com", "GetBucketPolicy", "NoSuchBucketPolicy"),
        (
            "ec2.amazonaws.com",
            "DescribeVpcs",
            "Client.InvalidVpcID.NotFound",
        ),
        (
            "s3.amazonaws.com",
            "GetBucketReplication",
            "ReplicationConfigurationNotFoundError",
        ),
        (
            "ssm.amazonaws.com",
            "DescribeParameters",
            "ThrottlingException",
        ),
        ("ssm.amazonaws.com", "PutParameter", "ThrottlingException"),
    ] {
        assert_eq!(
            rule_for(source, action, error, json!({})),
            None,
            "{action} {error}"
        );
    }
    assert_eq!(
        rule_for(
            "cloudtrail.amazonaws.com",
            "StopLogging",
            "TrailNotFoundException",
            json!({"name": "t"})
        ),
        Some("cloudtrail-tampered".into()),
        "the attempt is the signal"
    );
}

#[test]
fn left_behind_pairs_creations_with_their_undoing() {
    let d = detections();
    let created = d.lifecycle(
        "iam.amazonaws.com",
        "CreateAccessKey",
        Some(&json!({"userName": "u"})),
        Some(&json!({"accessKey": {"accessKeyId": "AKIA1"}})),
    );
    assert_eq!(created.len(), 1);
    assert_eq!(
        (created[0].1, created[0].2.clone()),
        (true, vec!["AKIA1".to_owned()])
    );
    let deleted = d.lifecycle(
        "iam.amazonaws.com",
        "DeleteAccessKey",
        Some(&json!({"userName": "u", "accessKeyId": "AKIA1"})),
        None,
    );
    assert_eq!(
        deleted,
        vec![(created[0].0, false, vec!["AKIA1".to_owned()])]
    );
    let role_gone = d.lifecycle(
        "iam.amazonaws.com",
        "DeleteRole",
        Some(&json!({"roleName": "r"})),
        None,
    );
    assert!(
        role_gone.len() >= 3,
        "a deleted role undoes its creation, trust change and policies"
    );
}

#[test]
fn wildcards_and_accounts() {
    assert!(wildcard("AccessDenied*", "AccessDeniedException"));
    assert!(wildcard(
        "*UnauthorizedOperation",
        "Client.UnauthorizedOperation"
    ));
    assert!(wildcard("*NotAuthorized*", "Client.NotAuthorizedToDoThat"));
    assert!(!wildcard("AccessDenied*", ""));
    assert!(!wildcard("AccessDenied", "AccessDeniedException"));
    assert_eq!(
        accounts_in("arn:aws:iam::210987654321:root").collect::<Vec<_>>(),
        ["210987654321"]
    );
    assert_eq!(
        accounts_in("210987654321").collect::<Vec<_>>(),
        ["210987654321"]
    );
    assert_eq!(accounts_in("arn:aws:iam::aws:policy/X").count(), 0);
}
