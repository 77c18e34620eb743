// The policy as the deploy sees it: read by the break-glass binary (`policy scope --json`), then
// turned into IAM resources. These run the real binary (BREAK_GLASS_BIN, else the repository's
// target/debug or target/release build, else the PATH): build it first (`cargo build`).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  ANY, GrantScope, PolicyScope, assignmentResources, checkPolicyScope, deployScope, parsePolicyScope, permissionSetResources,
  policyBinary, readPolicyScope,
} from '../lib/policy';
import { FIXTURES, INSTANCE_ARN, PS_DBA, PS_ONCALL } from './helpers';

const REPO = path.join(__dirname, '..', '..');
const CORPUS = path.join(REPO, 'config', 'testdata', 'policy');

function policyFile(toml: string): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bg-policy-')), 'policy.toml');
  fs.writeFileSync(file, toml);
  return file;
}

/** An allow rule the binary accepts, with `extra` lines appended to it. */
function allowRule(name: string, accounts: string[], permissionSets: string[], extra = ''): string {
  return `[[rule]]
name = "${name}"
effect = "allow"
sso_groups = ["oncall"]
accounts = ${JSON.stringify(accounts)}
permission_sets = ${JSON.stringify(permissionSets)}
default_duration = "1h"
max_duration = "1h"
${extra}`;
}

/** Asserts that reading `file` fails with the binary's one line, naming the file, that includes `part`. */
function refuses(file: string, part: string): void {
  assert.throws(() => readPolicyScope(file), (e: Error) => {
    assert.doesNotMatch(e.message, /\n/, 'one line');
    assert.ok(e.message.startsWith(`break-glass: ${file}: `), `names the file: ${e.message}`);
    assert.ok(e.message.includes(part), `${part} in ${e.message}`);
    return true;
  });
}

/** PolicyScope → the binary's JSON: the typed conversion must lose nothing. */
function toJson(s: PolicyScope): unknown {
  const grant = (g: GrantScope) => ({
    accounts: g.accounts,
    permission_sets: g.permissionSets,
    widened_by: { accounts: g.widenedBy.accounts, permission_sets: g.widenedBy.permissionSets },
  });
  return { grants: grant(s.grants), end_sessions: s.endSessions === undefined ? null : grant(s.endSessions), remove_standing: s.removeStanding, channels: s.channels };
}

/** A shell script standing in for the binary. */
function stubBinary(script: string): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bg-bin-')), 'break-glass');
  fs.writeFileSync(file, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  return file;
}

describe('policy scope, read by the binary', () => {
  it('reads what the deploy needs of the fixture', () => {
    const scope = readPolicyScope(path.join(FIXTURES, 'policy.toml'));
    assert.deepEqual(scope, {
      grants: { accounts: ['111111111111', '222222222222'], permissionSets: [PS_ONCALL, PS_DBA], widenedBy: { accounts: [], permissionSets: [] } },
      endSessions: { accounts: ['111111111111', '222222222222'], permissionSets: [PS_ONCALL], widenedBy: { accounts: [], permissionSets: [] } },
      removeStanding: ['dba'],
      channels: ['C0SECURITY1'],
    });
  });

  it('scopes ending sessions to the accounts and permission sets of the rules that opt in', () => {
    const scope = deployScope(path.join(FIXTURES, 'policy.toml'), INSTANCE_ARN).endSessions!;
    assert.deepEqual(scope, { accounts: ['111111111111', '222222222222'], permissionSets: [PS_ONCALL], widenedBy: { accounts: [], permissionSets: [] } });
    assert.deepEqual(permissionSetResources(scope, INSTANCE_ARN), [INSTANCE_ARN, PS_ONCALL]);
    assert.equal(deployScope(path.join(FIXTURES, 'policy-wildcard.toml'), INSTANCE_ARN).endSessions, undefined);
    const named = deployScope(policyFile(`version = 1
${allowRule('admins', ['*'], ['AdministratorAccess'], 'end_sessions = true')}
${allowRule('quiet', ['111111111111'], [PS_DBA])}
`), INSTANCE_ARN).endSessions!;
    assert.deepEqual(named.widenedBy, { accounts: ['admins'], permissionSets: ['admins'] });
    assert.deepEqual(assignmentResources(named, INSTANCE_ARN), [
      INSTANCE_ARN, 'arn:aws:sso:::permissionSet/ssoins-aaaabbbbccccdddd/*', 'arn:aws:sso:::account/*',
    ]);
  });

  it('refuses end_sessions and standing_access where the binary refuses them, with its words', () => {
    const deny = (extra: string) => `version = 1
[[rule]]
name = "not-bob"
effect = "deny"
slack_users = ["U0BOB00001"]
accounts = ["*"]
permission_sets = ["*"]
${extra}
`;
    refuses(policyFile(`version = 1\n${allowRule('ok', ['111111111111'], [PS_ONCALL], 'standing_access = "delete"')}`),
      'rule[0].standing_access: expected "warn" or "remove", got "delete"');
    refuses(policyFile(`version = 1\n${allowRule('ok', ['111111111111'], [PS_ONCALL], 'end_sessions = "yes"')}`), 'expected a boolean');
    refuses(policyFile(deny('end_sessions = true')), 'rule[0].end_sessions: a deny rule grants nothing to end');
    refuses(policyFile(deny('standing_access = "warn"')), 'rule[0].standing_access: only an allow rule says what happens to standing access');
    refuses(policyFile(`version = 1\n${allowRule('wild', ['*'], [PS_ONCALL], 'standing_access = "remove"')}`),
      'rule[0].standing_access: "remove" needs the rule to name its accounts and permission sets');
    // end_sessions = false says nothing, so a deny rule may carry it.
    readPolicyScope(policyFile(deny('end_sessions = false')));
  });

  it('accepts [reconcile] with a Slack channel and nothing else, and refuses keys the binary does not know', () => {
    const rule = allowRule('r', ['111111111111'], [PS_ONCALL]);
    assert.deepEqual(readPolicyScope(policyFile(`version = 1\n[reconcile]\nnotify_channel = "G0PRIVATE01"\n${rule}`)).channels, ['G0PRIVATE01']);
    assert.deepEqual(readPolicyScope(policyFile(`version = 1\n[reconcile]\n${rule}`)).channels, []);
    refuses(policyFile(`version = 1\nreconcile = "hourly"\n${rule}`), 'invalid type');
    refuses(policyFile(`version = 1\nowners = ["U0ALICE0001"]\n${rule}`), 'unknown field `owners`');
    refuses(policyFile(`version = 1\n[reconcile]\nschedule = "rate(1 hour)"\n${rule}`), 'unknown field `schedule`');
    refuses(policyFile(`version = 1\n[reconcile]\nnotify_channel = "#security"\n${rule}`), 'reconcile.notify_channel: not a Slack channel id');
    refuses(policyFile(`version = 1\n${rule}end_session = true\n`), 'unknown field `end_session`');
  });

  it('reads the repository example policy', () => {
    const scope = deployScope(path.join(REPO, 'config', 'policy.example.toml'), 'arn:aws:sso:::instance/ssoins-1234567890abcdef');
    assert.ok(scope.grants.accounts === ANY || scope.grants.accounts.length > 0);
  });

  it('derives the accounts and permission sets of the allow rules only', () => {
    const { grants } = deployScope(path.join(FIXTURES, 'policy.toml'), INSTANCE_ARN);
    assert.deepEqual(grants, {
      accounts: ['111111111111', '222222222222'],
      permissionSets: [PS_ONCALL, PS_DBA],
      widenedBy: { accounts: [], permissionSets: [] },
    });
    assert.deepEqual(assignmentResources(grants, INSTANCE_ARN), [
      INSTANCE_ARN, PS_ONCALL, PS_DBA, 'arn:aws:sso:::account/111111111111', 'arn:aws:sso:::account/222222222222',
    ]);
  });

  it('widens only the dimension that has a "*"', () => {
    const { grants } = deployScope(policyFile(`version = 1
${allowRule('anywhere', ['*'], [PS_ONCALL])}
${allowRule('dba', ['111111111111'], [PS_DBA])}
`), INSTANCE_ARN);
    assert.equal(grants.accounts, ANY);
    assert.deepEqual(grants.widenedBy, { accounts: ['anywhere'], permissionSets: [] });
    assert.deepEqual(assignmentResources(grants, INSTANCE_ARN), [INSTANCE_ARN, PS_ONCALL, PS_DBA, 'arn:aws:sso:::account/*']);
    const any = deployScope(path.join(FIXTURES, 'policy-wildcard.toml'), INSTANCE_ARN).grants;
    assert.deepEqual(assignmentResources(any, INSTANCE_ARN), [
      INSTANCE_ARN, 'arn:aws:sso:::permissionSet/ssoins-aaaabbbbccccdddd/*', 'arn:aws:sso:::account/*',
    ]);
  });

  it('widens permission sets to the instance when a rule names them by name', () => {
    const { grants } = deployScope(policyFile(`version = 1\n${allowRule('admins', ['111111111111'], ['AdministratorAccess', PS_ONCALL])}`), INSTANCE_ARN);
    assert.deepEqual(grants.widenedBy, { accounts: [], permissionSets: ['admins'] });
    assert.deepEqual(assignmentResources(grants, INSTANCE_ARN), [
      INSTANCE_ARN, 'arn:aws:sso:::permissionSet/ssoins-aaaabbbbccccdddd/*', 'arn:aws:sso:::account/111111111111',
    ]);
  });

  it('refuses permission sets of another instance', () => {
    assert.throws(() => deployScope(path.join(FIXTURES, 'policy.toml'), 'arn:aws:sso:::instance/ssoins-0000000000000000'),
      /^Error: permission sets not in Identity Center instance arn:aws:sso:::instance\/ssoins-0000000000000000 \(-c ssoInstanceArn=…\): .*ps-1111111111111111/);
    // Also those only the end_sessions rules list, when names widen the grants to the instance.
    const foreign = 'arn:aws:sso:::permissionSet/ssoins-0000000000000000/ps-3333333333333333';
    const file = policyFile(`version = 1
${allowRule('by-name', ['111111111111'], ['ReadOnly'])}
${allowRule('ender', ['111111111111'], [foreign], 'end_sessions = true')}
`);
    assert.throws(() => deployScope(file, INSTANCE_ARN), new RegExp(`not in Identity Center instance .*: ${foreign}$`));
  });

  it('refuses a policy without allow rules', () => {
    const file = policyFile('version = 1\n[[rule]]\nname = "d"\neffect = "deny"\nslack_users = ["*"]\naccounts = ["*"]\npermission_sets = ["*"]\n');
    const scope = readPolicyScope(file);
    assert.deepEqual(scope.grants, { accounts: [], permissionSets: [], widenedBy: { accounts: [], permissionSets: [] } });
    assert.throws(() => checkPolicyScope(scope, INSTANCE_ARN), /^Error: policy has no allow rule: break-glass could never grant anything$/);
    refuses(policyFile('version = 1\n'), 'no rules');
  });

  it('reports a malformed value with the binary\'s one line', () => {
    refuses(policyFile(`version = 2\n${allowRule('r', ['111111111111'], [PS_ONCALL])}`), 'version');
    refuses(policyFile(`version = 1\n${allowRule('r', ['111111111111'], [PS_ONCALL]).replace('"allow"', '"maybe"')}`), 'rule[0].effect');
    refuses(policyFile(`version = 1\n${allowRule('r', ['12345'], [PS_ONCALL])}`), 'rule[0].accounts[0]');
    refuses(policyFile(`version = 1\n${allowRule('r', [], [PS_ONCALL])}`), 'rule[0].accounts');
    refuses(policyFile(`version = 1\n${allowRule('r', ['111111111111'], ['arn:aws:iam::aws:policy/AdministratorAccess'])}`), 'rule[0].permission_sets[0]');
    refuses(policyFile(`version = 1\n${allowRule('r', ['111111111111'], ['Admin Access'])}`), 'rule[0].permission_sets[0]');
  });

  it('names the file when the TOML does not parse', () => {
    refuses(policyFile('version = = 1'), 'line 1');
  });
});

describe('shared policy corpus (config/testdata/policy)', () => {
  const valid = fs.readdirSync(path.join(CORPUS, 'valid')).filter((f) => f.endsWith('.toml')).sort();
  const invalid = fs.readdirSync(path.join(CORPUS, 'invalid')).filter((f) => f.endsWith('.toml')).sort();

  it('has policies to read', () => {
    assert.ok(valid.length > 0 && invalid.length > 0);
  });

  for (const name of valid) {
    it(`valid/${name} reads as its committed scope`, () => {
      const file = path.join(CORPUS, 'valid', name);
      const expected = JSON.parse(fs.readFileSync(file.replace(/\.toml$/, '.scope.json'), 'utf8'));
      assert.deepEqual(toJson(readPolicyScope(file)), expected);
    });
  }

  for (const name of invalid) {
    it(`invalid/${name} is refused, naming the file`, () => {
      const file = path.join(CORPUS, 'invalid', name);
      assert.throws(() => readPolicyScope(file), (e: Error) => {
        assert.ok(e.message.startsWith(`break-glass: ${file}: `), e.message);
        assert.doesNotMatch(e.message, /\n/);
        return true;
      });
    });
  }
});

describe('policy binary', () => {
  it('is BREAK_GLASS_BIN, else the repository\'s build, else break-glass on the PATH', () => {
    assert.equal(policyBinary({ BREAK_GLASS_BIN: '/opt/bg/break-glass' }), '/opt/bg/break-glass');
    const found = policyBinary({});
    const builds = ['debug', 'release'].map((p) => path.join(REPO, 'target', p, 'break-glass')).filter((f) => fs.existsSync(f));
    assert.equal(found, builds[0] ?? 'break-glass');
  });

  it('says to build it when there is none to run', () => {
    const missing = path.join(os.tmpdir(), 'no-such-dir', 'break-glass');
    assert.throws(() => readPolicyScope(path.join(FIXTURES, 'policy.toml'), missing), (e: Error) => {
      assert.match(e.message, /cannot run .*no-such-dir\/break-glass \(ENOENT\)/);
      assert.match(e.message, /cargo build/);
      return true;
    });
  });

  it('tells a binary that predates `policy scope` from an invalid policy', () => {
    const old = stubBinary("echo \"error: unrecognized subcommand 'scope'\" >&2\necho >&2\necho 'Usage: break-glass policy <COMMAND>' >&2\nexit 2");
    assert.throws(() => readPolicyScope(path.join(FIXTURES, 'policy.toml'), old), /failed \(exit 2\): error: unrecognized subcommand 'scope'.*rebuild it/);
  });

  it('refuses an answer of another shape', () => {
    assert.throws(() => readPolicyScope(path.join(FIXTURES, 'policy.toml'), stubBinary('echo not json')), /printed no JSON/);
    const ok = readPolicyScope(path.join(FIXTURES, 'policy.toml'));
    const json = toJson(ok) as Record<string, any>;
    assert.deepEqual(parsePolicyScope(json, 'test'), ok);
    for (const broken of [
      { ...json, grants: undefined },
      { ...json, grants: { ...json.grants, accounts: 'all' } },
      { ...json, end_sessions: { ...json.end_sessions, widened_by: { accounts: [] } } },
      { ...json, channels: [1] },
      [],
    ]) {
      assert.throws(() => parsePolicyScope(broken, 'test'), /unexpected output from test/);
    }
  });
});
