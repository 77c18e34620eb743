// What the deploy needs of the break-glass policy file, read by the Rust binary itself
// (`break-glass policy scope --json FILE`): one reader of the policy, so the IAM the stack
// derives and the decisions the functions take can never disagree on what the file says.
// The binary validates the whole file (keys, ids, durations, channels, end_sessions,
// standing_access) and refuses an invalid one with one line naming the file; synth then fails
// with that line. This module only turns the binary's answer into IAM resources, and checks
// what the binary cannot know: the Identity Center instance the stack is deployed for.
//
// Only `allow` rules widen IAM: a `deny` rule can only narrow what the binary does, so it adds
// nothing to the grants. Who a rule covers (Slack users, Identity Center groups) is not IAM's
// business either.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CDK_DIR } from './config';

/** `*` in a rule's list matches anything (the same convention as the binary). */
export const ANY = '*';

const PARTITION = '(aws|aws-us-gov|aws-cn)';
const ID = '[A-Za-z0-9-]{1,64}';
const INSTANCE_ARN = new RegExp(`^arn:${PARTITION}:sso:::instance/(ssoins-${ID})$`);
const PERMISSION_SET_ARN = new RegExp(`^arn:${PARTITION}:sso:::permissionSet/(ssoins-${ID})/ps-${ID}$`);

/** What a set of allow rules can reach: each dimension is either a list or `*`. */
export interface GrantScope {
  /** Sorted, unique account ids, or `*` when a rule names any account. */
  readonly accounts: readonly string[] | typeof ANY;
  /**
   * Sorted, unique permission set ARNs, or `*` when a rule names any permission set or names
   * one by name (IAM needs ARNs, and a name's ARN is only known at run time).
   */
  readonly permissionSets: readonly string[] | typeof ANY;
  /** The rules that made each dimension `*`, for the reasons given to cdk-nag. */
  readonly widenedBy: { readonly accounts: readonly string[]; readonly permissionSets: readonly string[] };
}

/** Everything about a policy the deploy depends on: `break-glass policy scope --json`, typed. */
export interface PolicyScope {
  /** What the allow rules can grant. */
  readonly grants: GrantScope;
  /**
   * What the worker may end live sessions of: the scope of the allow rules with
   * `end_sessions = true` (the binary ends sessions only for a lease granted by such a rule).
   * Undefined when no rule opts in: then the worker gets none of the inline-policy and
   * provisioning permissions.
   */
  readonly endSessions: GrantScope | undefined;
  /** The allow rules with `standing_access = "remove"`. */
  readonly removeStanding: readonly string[];
  /** Every Slack channel id the policy names (rules' notify channels, the reconcile channel). */
  readonly channels: readonly string[];
}

/**
 * The binary that reads the policy: `$BREAK_GLASS_BIN`, else the repository's debug build,
 * else its release build, else `break-glass` on the PATH.
 */
export function policyBinary(env: NodeJS.ProcessEnv = process.env): string {
  const given = env.BREAK_GLASS_BIN?.trim();
  if (given) return given;
  const repo = path.resolve(CDK_DIR, '..');
  for (const profile of ['debug', 'release']) {
    const built = path.join(repo, 'target', profile, 'break-glass');
    if (fs.existsSync(built)) return built;
  }
  return 'break-glass';
}

/**
 * Runs `break-glass policy scope --json FILE` and returns its answer, typed. Throws the
 * binary's own one-line message (`break-glass: FILE: problem`) when the policy is invalid, and
 * a message saying to build the binary when there is none to run.
 */
export function readPolicyScope(policyFile: string, bin: string = policyBinary()): PolicyScope {
  const args = ['policy', 'scope', '--json', policyFile];
  let stdout: string;
  try {
    stdout = execFileSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { status?: number | null; signal?: NodeJS.Signals | null; stderr?: string };
    if (err.code === 'ENOENT' || err.code === 'EACCES') {
      const where = bin === 'break-glass'
        ? `no break-glass binary in ${path.resolve(CDK_DIR, '..', 'target')}/{debug,release} nor on the PATH`
        : `cannot run ${bin} (${err.code})`;
      throw new Error(
        `${where}: it reads the policy ${policyFile} for synth. Build it first ` +
        '(`cargo build`, or `make synth` / `make test`, which build it), or set BREAK_GLASS_BIN to one',
      );
    }
    const stderr = (err.stderr ?? '').trim();
    const lines = stderr.split('\n').filter((l) => l.trim() !== '');
    // The binary's verdict on an invalid policy: exactly one line, naming the file.
    if (err.status === 2 && lines.length === 1 && lines[0].startsWith('break-glass: ')) throw new Error(lines[0]);
    const how = err.status != null ? `exit ${err.status}` : err.signal ? `signal ${err.signal}` : (err.code ?? err.message);
    throw new Error(
      `${bin} ${args.join(' ')} failed (${how})${lines.length > 0 ? `: ${lines.slice(0, 5).join(' | ')}` : ''}; ` +
      'if the binary predates `policy scope`, rebuild it (`cargo build`, or `make synth` / `make test`)',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch (e) {
    throw new Error(`${bin} ${args.join(' ')} printed no JSON: ${(e as Error).message}`);
  }
  return parsePolicyScope(json, `${bin} ${args.join(' ')}`);
}

/** The binary's JSON (snake_case) → PolicyScope; throws, naming `source`, on any other shape. */
export function parsePolicyScope(json: unknown, source: string): PolicyScope {
  const fail = (what: string): never => {
    throw new Error(`unexpected output from ${source}: ${what} (is the binary the same version as this CDK app?)`);
  };
  const object = (v: unknown, where: string): Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(`${where} is not an object`);
  const strings = (v: unknown, where: string): string[] =>
    Array.isArray(v) && v.every((x) => typeof x === 'string') ? [...v] : fail(`${where} is not a list of strings`);
  const listOrAny = (v: unknown, where: string): string[] | typeof ANY => (v === ANY ? ANY : strings(v, where));
  const grantScope = (v: unknown, where: string): GrantScope => {
    const o = object(v, where);
    const widenedBy = object(o.widened_by, `${where}.widened_by`);
    return {
      accounts: listOrAny(o.accounts, `${where}.accounts`),
      permissionSets: listOrAny(o.permission_sets, `${where}.permission_sets`),
      widenedBy: {
        accounts: strings(widenedBy.accounts, `${where}.widened_by.accounts`),
        permissionSets: strings(widenedBy.permission_sets, `${where}.widened_by.permission_sets`),
      },
    };
  };
  const top = object(json, 'the answer');
  return {
    grants: grantScope(top.grants, 'grants'),
    endSessions: top.end_sessions === null ? undefined : grantScope(top.end_sessions, 'end_sessions'),
    removeStanding: strings(top.remove_standing, 'remove_standing'),
    channels: strings(top.channels, 'channels'),
  };
}

/**
 * Checks what the binary cannot: that the policy grants anything at all, and that every
 * permission set ARN it names belongs to `instanceArn` (an ARN from another instance could
 * never be granted, and is almost surely a copy-paste slip). Returns the scope unchanged.
 * The ARNs checked are those the scope lists: when a dimension is `*` (a rule names any
 * permission set, or one by name), the binary's answer carries no ARNs for it, and IAM is then
 * bounded to this instance's permission sets anyway.
 */
export function checkPolicyScope(scope: PolicyScope, instanceArn: string): PolicyScope {
  const instance = parseInstanceArn(instanceArn);
  const { grants } = scope;
  // Every allow rule names at least one account and permission set: empty lists mean only deny rules.
  if ((grants.accounts !== ANY && grants.accounts.length === 0) || (grants.permissionSets !== ANY && grants.permissionSets.length === 0)) {
    throw new Error('policy has no allow rule: break-glass could never grant anything');
  }
  const arns = [grants, scope.endSessions].flatMap((s) => (s === undefined || s.permissionSets === ANY ? [] : s.permissionSets));
  const foreign = arns.filter((p) => PERMISSION_SET_ARN.exec(p)?.[2] !== instance.id);
  if (foreign.length > 0) {
    throw new Error(`permission sets not in Identity Center instance ${instanceArn} (-c ssoInstanceArn=…): ${[...new Set(foreign)].join(', ')}`);
  }
  return scope;
}

/** The policy's scope for a stack in `instanceArn`: read by the binary, then checked. */
export function deployScope(policyFile: string, instanceArn: string): PolicyScope {
  return checkPolicyScope(readPolicyScope(policyFile), instanceArn);
}

/** `arn:aws:sso:::instance/ssoins-…` → its partition and instance id. */
export function parseInstanceArn(arn: string): { partition: string; id: string } {
  const m = INSTANCE_ARN.exec(arn);
  if (!m) throw new Error(`not an Identity Center instance ARN (arn:aws:sso:::instance/ssoins-…): ${JSON.stringify(arn)}`);
  return { partition: m[1], id: m[2] };
}

/**
 * Resource ARNs for actions that authorize on the instance, the permission set and the account
 * (Create/DeleteAccountAssignment, ListAccountAssignments, ProvisionPermissionSet).
 */
export function assignmentResources(scope: GrantScope, instanceArn: string): string[] {
  const { partition } = parseInstanceArn(instanceArn);
  const accounts = scope.accounts === ANY ? [`arn:${partition}:sso:::account/*`] : scope.accounts.map((a) => `arn:${partition}:sso:::account/${a}`);
  return [...permissionSetResources(scope, instanceArn), ...accounts];
}

/** Resource ARNs for actions that authorize on the instance and the permission set only (the inline policy actions). */
export function permissionSetResources(scope: GrantScope, instanceArn: string): string[] {
  const { partition, id } = parseInstanceArn(instanceArn);
  const permissionSets = scope.permissionSets === ANY ? [`arn:${partition}:sso:::permissionSet/${id}/*`] : [...scope.permissionSets];
  return [instanceArn, ...permissionSets];
}
