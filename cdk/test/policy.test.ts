import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ANY, assignmentResources, grantScope, readPolicyRules } from '../lib/policy';
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
