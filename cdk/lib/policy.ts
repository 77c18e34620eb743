// Reads the break-glass policy file (the same TOML the Rust binary enforces) and derives the
// IAM resources the worker needs to grant and revoke exactly what the policy allows.
//
// Only `allow` rules widen IAM: a `deny` rule can only narrow what the binary does, so it adds
// nothing here. Who a rule covers (Slack users, Identity Center groups) is not IAM's business
// either. The full validation of the file (users, groups, durations, channels) is the binary's
// job (`break-glass policy check FILE`); this reads what IAM depends on (accounts, permission
// sets, `end_sessions`), checks the keys that decide IAM or the reconciler, and refuses keys
// the binary does not know: a misspelt `end_sessions` must fail synth, not deploy a worker
// that lacks the permissions the binary then needs.
import * as fs from 'node:fs';
import { parse } from 'smol-toml';

/** `*` in a rule's list matches anything (the same convention as the binary). */
export const ANY = '*';

const PARTITION = '(aws|aws-us-gov|aws-cn)';
const ID = '[A-Za-z0-9-]{1,64}';
const INSTANCE_ARN = new RegExp(`^arn:${PARTITION}:sso:::instance/(ssoins-${ID})$`);
const PERMISSION_SET_ARN = new RegExp(`^arn:${PARTITION}:sso:::permissionSet/(ssoins-${ID})/ps-${ID}$`);
const ACCOUNT_ID = /^\d{12}$/;
/** Permission sets may also be named; their ARNs are only known at run time. */
const PERMISSION_SET_NAME = /^[\w+=,.@-]{1,32}$/;
/** Slack channel ids: public (C…) or private (G…), as the binary checks them. */
const SLACK_CHANNEL_ID = /^[CG][A-Z0-9]{2,31}$/;

/** The keys the binary accepts (it refuses any other: serde `deny_unknown_fields`). */
const TOP_LEVEL_KEYS = ['version', 'users', 'accounts', 'responders', 'rule', 'reconcile'];
const RULE_KEYS = [
  'name', 'effect', 'slack_users', 'sso_groups', 'accounts', 'permission_sets', 'default_duration', 'max_duration',
  'reason_required', 'notify_channel', 'end_sessions', 'standing_access',
];
const RECONCILE_KEYS = ['notify_channel'];

/** The part of one `[[rule]]` that the stack depends on (IAM, and what it checks like the binary). */
export interface PolicyRule {
  readonly name: string;
  readonly effect: 'allow' | 'deny';
  /** 12-digit account ids, or `*`. */
  readonly accounts: readonly string[];
  /** Permission set ARNs or names, or `*`. */
  readonly permissionSets: readonly string[];
  /** When a lease ends, deny the user's live sessions through the permission set's inline policy. */
  readonly endSessions: boolean;
  /** What the reconciler does with standing assignments of the rule's accounts × permission sets. */
  readonly standingAccess: 'warn' | 'remove';
}

/** What the allow rules of a policy can ever grant: each dimension is either a list or `*`. */
export interface GrantScope {
  /** Sorted, unique account ids, or `*` when an allow rule names any account. */
  readonly accounts: readonly string[] | typeof ANY;
  /**
   * Sorted, unique permission set ARNs, or `*` when an allow rule names any permission set or
   * names one by name (IAM needs ARNs, and a name's ARN is only known at run time).
   */
  readonly permissionSets: readonly string[] | typeof ANY;
  /** The allow rules that made each dimension `*`, for the reasons given to cdk-nag. */
  readonly widenedBy: { readonly accounts: readonly string[]; readonly permissionSets: readonly string[] };
}

/** Parses the rules of a policy file. Throws one error naming the file and every problem. */
export function readPolicyRules(file: string): PolicyRule[] {
  let doc: Record<string, unknown>;
  try {
    doc = parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`policy ${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  const problems: string[] = [];
  const unknownKeys = (table: Record<string, unknown>, known: readonly string[], where: string) => {
    for (const k of Object.keys(table).filter((k) => !known.includes(k))) {
      problems.push(`${where}${JSON.stringify(k)} is not a policy key (known: ${known.join(', ')})`);
    }
  };
  unknownKeys(doc, TOP_LEVEL_KEYS, '');
  if (doc.version !== 1) problems.push(`version must be 1, got ${JSON.stringify(doc.version)}`);
  const reconcile = doc.reconcile;
  if (reconcile !== undefined) {
    if (typeof reconcile !== 'object' || reconcile === null || Array.isArray(reconcile)) {
      problems.push('reconcile must be a table: [reconcile]');
    } else {
      const table = reconcile as Record<string, unknown>;
      unknownKeys(table, RECONCILE_KEYS, 'reconcile.');
      const channel = table.notify_channel;
      if (channel !== undefined && (typeof channel !== 'string' || !SLACK_CHANNEL_ID.test(channel))) {
        problems.push(`reconcile.notify_channel: ${JSON.stringify(channel)} is not a Slack channel id (C… or G…)`);
      }
    }
  }
  const raw = doc.rule;
  if (!Array.isArray(raw) || raw.length === 0) problems.push('no [[rule]] tables');

  const rules: PolicyRule[] = [];
  (Array.isArray(raw) ? raw : []).forEach((r: Record<string, unknown>, i) => {
    const where = `rule[${i}]`;
    unknownKeys(r, RULE_KEYS, `${where}.`);
    const list = (key: string): string[] => {
      const v = r[key];
      if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'string')) {
        problems.push(`${where}.${key} must be a non-empty list of strings`);
        return [];
      }
      return v as string[];
    };
    const effect = r.effect;
    if (effect !== 'allow' && effect !== 'deny') {
      problems.push(`${where}.effect must be "allow" or "deny", got ${JSON.stringify(effect)}`);
    }
    const accounts = list('accounts');
    accounts.forEach((a, j) => {
      if (a !== ANY && !ACCOUNT_ID.test(a)) problems.push(`${where}.accounts[${j}]: ${JSON.stringify(a)} is not a 12-digit account id or "*"`);
    });
    const permissionSets = list('permission_sets');
    permissionSets.forEach((p, j) => {
      const ok = p === ANY || (p.startsWith('arn:') ? PERMISSION_SET_ARN.test(p) : PERMISSION_SET_NAME.test(p));
      if (!ok) problems.push(`${where}.permission_sets[${j}]: ${JSON.stringify(p)} is not a permission set ARN, a permission set name or "*"`);
    });
    // end_sessions and standing_access: the binary's rules and words, so both fail alike.
    const endSessions = r.end_sessions ?? false;
    if (typeof endSessions !== 'boolean') {
      problems.push(`${where}.end_sessions must be true or false, got ${JSON.stringify(endSessions)}`);
    } else if (endSessions && effect === 'deny') {
      problems.push(`${where}.end_sessions: a deny rule grants nothing to end`);
    }
    const standing = r.standing_access;
    if (standing !== undefined) {
      if (effect === 'deny') {
        problems.push(`${where}.standing_access: only an allow rule says what happens to standing access`);
      } else if (standing !== 'warn' && standing !== 'remove') {
        problems.push(`${where}.standing_access: expected "warn" or "remove", got ${JSON.stringify(standing)}`);
      } else if (standing === 'remove' && (accounts.includes(ANY) || permissionSets.includes(ANY))) {
        problems.push(`${where}.standing_access: "remove" needs the rule to name its accounts and permission sets (no "*"): it deletes access`);
      }
    }
    rules.push({
      name: typeof r.name === 'string' ? r.name : where,
      effect: effect === 'deny' ? 'deny' : 'allow',
      accounts,
      permissionSets,
      endSessions: endSessions === true,
      standingAccess: standing === 'remove' ? 'remove' : 'warn',
    });
  });

  if (problems.length > 0) throw new Error(`policy ${file}:\n  ${problems.join('\n  ')}`);
  return rules;
}

/**
 * Everything the allow rules can grant. Every permission set must belong to `instanceArn`:
 * an ARN from another instance could never be granted, and is almost surely a copy-paste slip.
 */
export function grantScope(rules: readonly PolicyRule[], instanceArn: string): GrantScope {
  const instance = parseInstanceArn(instanceArn);
  const allows = rules.filter((r) => r.effect === 'allow');
  if (allows.length === 0) throw new Error('policy has no allow rule: break-glass could never grant anything');

  const foreign = allows
    .flatMap((r) => r.permissionSets)
    .filter((p) => p.startsWith('arn:') && PERMISSION_SET_ARN.exec(p)?.[2] !== instance.id);
  if (foreign.length > 0) {
    throw new Error(`permission sets not in Identity Center instance ${instanceArn} (-c ssoInstanceArn=…): ${[...new Set(foreign)].join(', ')}`);
  }

  return scopeOf(allows);
}

/**
 * What the worker may end live sessions of: the accounts and permission sets of the allow
 * rules with `end_sessions = true` (the binary ends sessions only for a lease granted by such a
 * rule, in one of its accounts). Undefined when no rule opts in: then the worker gets none of
 * the inline-policy and provisioning permissions.
 */
export function endSessionsScope(rules: readonly PolicyRule[], instanceArn: string): GrantScope | undefined {
  grantScope(rules, instanceArn); // the same checks: allow rules exist, permission sets are the instance's
  const optedIn = rules.filter((r) => r.effect === 'allow' && r.endSessions);
  return optedIn.length > 0 ? scopeOf(optedIn) : undefined;
}

function scopeOf(rules: readonly PolicyRule[]): GrantScope {
  const wideAccounts = rules.filter((r) => r.accounts.includes(ANY)).map((r) => r.name);
  const widePermissionSets = rules.filter((r) => r.permissionSets.some((p) => !p.startsWith('arn:'))).map((r) => r.name);
  const unique = (xs: string[]) => [...new Set(xs)].sort();
  return {
    accounts: wideAccounts.length > 0 ? ANY : unique(rules.flatMap((r) => r.accounts)),
    permissionSets: widePermissionSets.length > 0 ? ANY : unique(rules.flatMap((r) => r.permissionSets)),
    widenedBy: { accounts: wideAccounts, permissionSets: widePermissionSets },
  };
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
