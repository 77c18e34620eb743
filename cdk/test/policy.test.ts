import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ANY, assignmentResources, endSessionsScope, grantScope, permissionSetResources, readPolicyRules } from '../lib/policy';
import { FIXTURES, INSTANCE_ARN, PS_DBA, PS_ONCALL } from './helpers';

function policyFile(toml: string): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bg-policy-')), 'policy.toml');
  fs.writeFileSync(file, toml);
  return file;
}

describe('policy', () => {
  it('reads the rules of the fixture', () => {
    const rules = readPolicyRules(path.join(FIXTURES, 'policy.toml'));
    assert.deepEqual(rules.map((r) => [r.name, r.effect]), [['oncall', 'allow'], ['dba', 'allow'], ['no-audit', 'deny']]);
  });

  it('reads end_sessions and standing_access, with their defaults', () => {
    const rules = readPolicyRules(path.join(FIXTURES, 'policy.toml'));
    assert.deepEqual(rules.map((r) => [r.name, r.endSessions, r.standingAccess]), [
      ['oncall', true, 'warn'], ['dba', false, 'remove'], ['no-audit', false, 'warn'],
    ]);
  });

  it('scopes ending sessions to the accounts and permission sets of the rules that opt in', () => {
    const scope = endSessionsScope(readPolicyRules(path.join(FIXTURES, 'policy.toml')), INSTANCE_ARN)!;
    assert.deepEqual(scope, { accounts: ['111111111111', '222222222222'], permissionSets: [PS_ONCALL], widenedBy: { accounts: [], permissionSets: [] } });
    assert.deepEqual(permissionSetResources(scope, INSTANCE_ARN), [INSTANCE_ARN, PS_ONCALL]);
    assert.equal(endSessionsScope(readPolicyRules(path.join(FIXTURES, 'policy-wildcard.toml')), INSTANCE_ARN), undefined);
    const named = endSessionsScope(readPolicyRules(policyFile(`version = 1
[[rule]]
name = "admins"
effect = "allow"
sso_groups = ["oncall"]
accounts = ["*"]
permission_sets = ["AdministratorAccess"]
end_sessions = true
[[rule]]
name = "quiet"
effect = "allow"
sso_groups = ["oncall"]
accounts = ["111111111111"]
permission_sets = ["${PS_DBA}"]
`)), INSTANCE_ARN)!;
    assert.deepEqual(named.widenedBy, { accounts: ['admins'], permissionSets: ['admins'] });
    assert.deepEqual(assignmentResources(named, INSTANCE_ARN), [
      INSTANCE_ARN, 'arn:aws:sso:::permissionSet/ssoins-aaaabbbbccccdddd/*', 'arn:aws:sso:::account/*',
    ]);
  });

  it('refuses end_sessions and standing_access where the binary refuses them', () => {
    const deny = `version = 1
[[rule]]
name = "ok"
effect = "allow"
slack_users = ["*"]
accounts = ["111111111111"]
permission_sets = ["${PS_ONCALL}"]
standing_access = "delete"
end_sessions = "yes"
[[rule]]
name = "not-bob"
effect = "deny"
slack_users = ["U0BOB00001"]
accounts = ["*"]
permission_sets = ["*"]
end_sessions = true
standing_access = "warn"
[[rule]]
name = "wild"
effect = "allow"
slack_users = ["*"]
accounts = ["*"]
permission_sets = ["${PS_ONCALL}"]
default_duration = "1h"
max_duration = "1h"
standing_access = "remove"
`;
    assert.throws(() => readPolicyRules(policyFile(deny)), (e: Error) => {
      for (const part of [
        'rule[0].standing_access: expected "warn" or "remove", got "delete"',
        'rule[0].end_sessions must be true or false, got "yes"',
        'rule[1].end_sessions: a deny rule grants nothing to end',
        'rule[1].standing_access: only an allow rule says what happens to standing access',
        'rule[2].standing_access: "remove" needs the rule to name its accounts and permission sets',
      ]) {
        assert.ok(e.message.includes(part), `${part} in ${e.message}`);
      }
      return true;
    });
    // end_sessions = false says nothing, so a deny rule may carry it (as in the binary).
    readPolicyRules(policyFile('version = 1\n[[rule]]\nname = "d"\neffect = "deny"\nslack_users = ["*"]\naccounts = ["*"]\npermission_sets = ["*"]\nend_sessions = false\n'));
  });

  it('accepts [reconcile] with a Slack channel and nothing else, and refuses keys the binary does not know', () => {
    const rule = `[[rule]]\nname = "r"\neffect = "allow"\nslack_users = ["*"]\naccounts = ["111111111111"]\npermission_sets = ["${PS_ONCALL}"]\n`;
    readPolicyRules(policyFile(`version = 1\n[reconcile]\nnotify_channel = "G0PRIVATE01"\n${rule}`));
    readPolicyRules(policyFile(`version = 1\n[reconcile]\n${rule}`));
    assert.throws(() => readPolicyRules(policyFile(`version = 1\nreconcile = "hourly"\n${rule}`)), /reconcile must be a table/);
    const bad = `version = 1\nowners = ["U0ALICE0001"]\n[reconcile]\nnotify_channel = "#security"\nschedule = "rate(1 hour)"\n${rule}end_session = true\n`;
    assert.throws(() => readPolicyRules(policyFile(bad)), (e: Error) => {
      for (const part of [
        '"owners" is not a policy key',
        'reconcile."schedule" is not a policy key (known: notify_channel)',
        'reconcile.notify_channel: "#security" is not a Slack channel id',
        'rule[0]."end_session" is not a policy key',
      ]) {
        assert.ok(e.message.includes(part), `${part} in ${e.message}`);
      }
      return true;
    });
  });

  it('reads the repository example policy', () => {
    const rules = readPolicyRules(path.join(FIXTURES, '..', '..', '..', 'config', 'policy.example.toml'));
    assert.ok(rules.some((r) => r.effect === 'allow'));
  });

  it('derives the accounts and permission sets of the allow rules only', () => {
    const scope = grantScope(readPolicyRules(path.join(FIXTURES, 'policy.toml')), INSTANCE_ARN);
    assert.deepEqual(scope, {
      accounts: ['111111111111', '222222222222'],
      permissionSets: [PS_ONCALL, PS_DBA],
      widenedBy: { accounts: [], permissionSets: [] },
    });
    assert.deepEqual(assignmentResources(scope, INSTANCE_ARN), [
      INSTANCE_ARN, PS_ONCALL, PS_DBA, 'arn:aws:sso:::account/111111111111', 'arn:aws:sso:::account/222222222222',
    ]);
  });

  it('widens only the dimension that has a "*"', () => {
    const rules = readPolicyRules(policyFile(`version = 1
[[rule]]
name = "anywhere"
effect = "allow"
accounts = ["*"]
permission_sets = ["${PS_ONCALL}"]
[[rule]]
effect = "allow"
accounts = ["111111111111"]
permission_sets = ["${PS_DBA}"]
`));
    const scope = grantScope(rules, INSTANCE_ARN);
    assert.equal(scope.accounts, ANY);
    assert.deepEqual(scope.widenedBy, { accounts: ['anywhere'], permissionSets: [] });
    assert.deepEqual(assignmentResources(scope, INSTANCE_ARN), [INSTANCE_ARN, PS_ONCALL, PS_DBA, 'arn:aws:sso:::account/*']);
    const any = grantScope(readPolicyRules(path.join(FIXTURES, 'policy-wildcard.toml')), INSTANCE_ARN);
    assert.deepEqual(assignmentResources(any, INSTANCE_ARN), [
      INSTANCE_ARN, 'arn:aws:sso:::permissionSet/ssoins-aaaabbbbccccdddd/*', 'arn:aws:sso:::account/*',
    ]);
  });

  it('widens permission sets to the instance when a rule names them by name', () => {
    const rules = readPolicyRules(policyFile(`version = 1
[[rule]]
name = "admins"
effect = "allow"
sso_groups = ["oncall"]
accounts = ["111111111111"]
permission_sets = ["AdministratorAccess", "${PS_ONCALL}"]
`));
    const scope = grantScope(rules, INSTANCE_ARN);
    assert.deepEqual(scope.widenedBy, { accounts: [], permissionSets: ['admins'] });
    assert.deepEqual(assignmentResources(scope, INSTANCE_ARN), [
      INSTANCE_ARN, 'arn:aws:sso:::permissionSet/ssoins-aaaabbbbccccdddd/*', 'arn:aws:sso:::account/111111111111',
    ]);
  });

  it('refuses permission sets of another instance', () => {
    const rules = readPolicyRules(path.join(FIXTURES, 'policy.toml'));
    assert.throws(() => grantScope(rules, 'arn:aws:sso:::instance/ssoins-0000000000000000'), /not in Identity Center instance.*ps-1111111111111111/);
  });

  it('refuses a policy without allow rules', () => {
    const rules = readPolicyRules(policyFile('version = 1\n[[rule]]\neffect = "deny"\naccounts = ["*"]\npermission_sets = ["*"]\n'));
    assert.throws(() => grantScope(rules, INSTANCE_ARN), /no allow rule/);
  });

  it('reports every malformed value at once', () => {
    const file = policyFile(`version = 2
[[rule]]
effect = "maybe"
accounts = ["12345", "*"]
permission_sets = ["arn:aws:iam::aws:policy/AdministratorAccess", "Admin Access"]
[[rule]]
effect = "allow"
accounts = []
`);
    assert.throws(() => readPolicyRules(file), (e: Error) => {
      for (const part of ['version must be 1', 'rule[0].effect', 'rule[0].accounts[0]', 'rule[0].permission_sets[0]', 'rule[0].permission_sets[1]', 'rule[1].accounts must be', 'rule[1].permission_sets must be']) {
        assert.ok(e.message.includes(part), `${part} in ${e.message}`);
      }
      return true;
    });
  });

  it('names the file when the TOML does not parse', () => {
    const file = policyFile('version = = 1');
    assert.throws(() => readPolicyRules(file), new RegExp(`policy ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:`));
  });
});
