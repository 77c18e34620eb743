// The main stack, deployed in the account that hosts IAM Identity Center (the management
// account or a delegated administrator): the Slack endpoint, the two functions, the state
// machine, the table, the Slack and on-call secrets, the key that encrypts them, the schedules
// of the reconciler and of the weekly review digest (and their dead-letter queue), and the
// alarms.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Annotations, ArnFormat, Aws, CfnCondition, CfnOutput, CfnResource, Duration, Fn, RemovalPolicy, SecretValue, Stack, StackProps, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ses from 'aws-cdk-lib/aws-ses';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct, IConstruct } from 'constructs';
import { CDK_DIR, DeploymentConfig } from './config';
import { ANY, assignmentResources, deployScope, parseInstanceArn, permissionSetResources } from './policy';

export interface BreakGlassStackProps extends StackProps {
  readonly config: DeploymentConfig;
  /** The ASL definition; default `../sfn/break-glass.asl.json`. */
  readonly definitionFile?: string;
}

/** Where the policy layer puts the file; the functions read it at every cold start. */
const POLICY_PATH = '/opt/policy.toml';

/**
 * What each function does with the table, call by call (src/aws/store.rs), and nothing else.
 * TransactWriteItems has no IAM action of its own: each Put and Update in a transaction is
 * authorized as PutItem and UpdateItem. The webhook records requests, advances them and audits
 * refusals; it never deletes. The worker also deletes leases and creation intents. Nobody scans:
 * the reconciler finds the live items through the `live` index (INDEX_ACTIONS), so what a run
 * reads grows with what break glass holds now, never with the table's history.
 */
export const TABLE_ACTIONS = {
  webhook: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
  worker: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
} as const;

/** The table's global secondary indexes (src/aws/store/requests.rs names them too). */
export const INDEXES = {
  /**
   * Requests by the UTC day they were made (`day`, `YYYY-MM-DD`), by `requested_at`: the App
   * Home's live access, the weekly digest, and `break-glass audit export`.
   */
  byDay: 'by_day',
  /** Requests waiting for review (`review_pending` = "pending"), by `reported_at`: reminders, escalations, the App Home. */
  reviewsPending: 'reviews_pending',
  /**
   * The live items by kind (`live` = "lease", "intent" or "sessions"), by `pk`, keys only:
   * leases, creation intents and session denies, which the reconciler queries instead of
   * scanning the table.
   */
  live: 'live',
} as const;

/**
 * What each function does with the table's indexes, index by index, and nothing else: writes
 * to the table keep its indexes up to date without any permission on them. Both query only,
 * each index by name (never `<table>/index/*`). The webhook answers Slack's `app_home_opened`
 * with a Home view: live access from `by_day` (the last few days) and the reviews waiting from
 * the pending-review index. The worker queries `by_day` to refresh a user's Home tab after a
 * grant and for the weekly digest, the pending-review index in the scheduled reconcile (to
 * remind and escalate), and `live` in the scheduled reconcile (the leases, creation intents and
 * session denies it checks). `break-glass audit export` reads `by_day` too, with the operator's
 * own credentials.
 */
export const INDEX_ACTIONS: Record<keyof typeof TABLE_ACTIONS, Partial<Record<(typeof INDEXES)[keyof typeof INDEXES], readonly string[]>>> = {
  webhook: { [INDEXES.byDay]: ['dynamodb:Query'], [INDEXES.reviewsPending]: ['dynamodb:Query'] },
  worker: { [INDEXES.byDay]: ['dynamodb:Query'], [INDEXES.reviewsPending]: ['dynamodb:Query'], [INDEXES.live]: ['dynamodb:Query'] },
};

/**
 * What the reconciler leaves of the worker's timeout when it stops starting new checks
 * (RECONCILE_BUDGET_SECONDS is the timeout less this): time to finish the calls under way and
 * log what it did not reach, which the next run picks up.
 */
const RECONCILE_RESERVE = Duration.minutes(5);

/**
 * What both functions need of the stack's key: Decrypt (and DescribeKey) to read their
 * environment, the Slack and on-call secrets and the table; Encrypt and GenerateDataKey to write
 * to the table and, for the worker, for Lambda to send a failed event to the dead-letter queue
 * with the function's role (SQS asks the sender for a data key). Named actions, not CDK's
 * kms:GenerateDataKey* and kms:ReEncrypt*: nothing here re-encrypts, or asks for a data key
 * without its plaintext.
 */
const KEY_ACTIONS = ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'];

export class BreakGlassStack extends Stack {
  public readonly webhook: lambda.Function;
  public readonly worker: lambda.Function;
  public readonly stateMachine: sfn.StateMachine;
  public readonly table: dynamodb.Table;
  /** The customer-managed key of the table, the secrets, the logs, the environments and the dead-letter queue. */
  public readonly key: kms.IKey;
  public readonly slackSecret: secretsmanager.Secret;
  /** The PagerDuty / Opsgenie tokens the functions look up who is on call with (ONCALL_SECRET_ARN). */
  public readonly oncallSecret: secretsmanager.Secret;
  /** Where the worker's asynchronous invocations (the scheduled reconcile, the weekly digest) go when every retry failed. */
  public readonly workerDeadLetters: sqs.Queue;
  public readonly alarmTopic: sns.Topic;
  public readonly api: apigw.HttpApi;
  public readonly reconcileRule: events.Rule;
  public readonly digestRule: events.Rule;

  constructor(scope: Construct, id: string, props: BreakGlassStackProps) {
    super(scope, id, props);
    const cfg = props.config;
    // The binary reads the policy (and refuses an invalid one); read once, checked against the instance.
    const { grants: scopeOfGrants, endSessions: scopeOfEndSessions } = deployScope(cfg.policyFile, cfg.ssoInstanceArn);
    if (cfg.example) {
      Annotations.of(this).addWarningV2('break-glass:example', 'synthesized with example context values (-c example=true): do not deploy this');
    }

    // ---- Encryption ----------------------------------------------------------------------
    this.key = this.dataKey(cfg.kmsKeyArn);

    // ---- State -------------------------------------------------------------------------
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'expires_ttl',
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      deletionProtection: true,
      // The table is the audit trail of who held production access: never delete it with the stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // All sparse: only the items that carry the partition key attribute are in them. Only
    // request items carry `day`; `review_pending` is set while a review is outstanding and
    // removed once reviewed; only leases, creation intents and session denies carry `live`, and
    // lose it (or the item) when they end. CloudFormation creates (or deletes) one index per
    // table update: a table deployed without some of them needs a deploy per missing index,
    // adding one at a time.
    this.table.addGlobalSecondaryIndex({
      indexName: INDEXES.byDay,
      partitionKey: { name: 'day', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'requested_at', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: INDEXES.reviewsPending,
      partitionKey: { name: 'review_pending', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'reported_at', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    // Keys only: the reconciler needs which items are live, then reads each one it acts on.
    this.table.addGlobalSecondaryIndex({
      indexName: INDEXES.live,
      partitionKey: { name: 'live', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.KEYS_ONLY,
    });

    // CloudFormation can only generate a string, and the binary wants a list of signing secrets,
    // so the placeholder does not parse: the webhook refuses to start (fails closed) until an
    // operator stores the real {"signing_secrets": [...], "bot_token": "xoxb-..."} (README).
    this.slackSecret = new secretsmanager.Secret(this, 'SlackSecret', {
      description: 'break-glass: Slack signing secret(s) and bot token. Replace the placeholder: {"signing_secrets": ["..."], "bot_token": "xoxb-..."}',
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ bot_token: 'xoxb-replace-me' }),
        generateStringKey: 'signing_secrets',
        excludePunctuation: true,
        passwordLength: 32,
      },
      encryptionKey: this.key,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.slackSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'Slack issues the signing secret and bot token; they are rotated in the Slack app settings, not by a Lambda. The binary accepts two signing secrets so a rotation has no downtime.',
    });

    // The on-call sources' API tokens: {"pagerduty": {"token": "...", "from": "someone@example.com"},
    // "opsgenie": {"token": "..."}}, each part optional. Created as "{}", which the binary accepts:
    // it then refuses at start-up only a policy that uses an on-call source, until an operator
    // stores the tokens (README). The template never changes this value again, so a deploy does
    // not overwrite what the operator stored.
    this.oncallSecret = new secretsmanager.Secret(this, 'OncallSecret', {
      description: 'break-glass: on-call API tokens. Replace the placeholder: {"pagerduty": {"token": "...", "from": "someone@example.com"}, "opsgenie": {"token": "..."}} (each part optional)',
      // Not a secret: the empty placeholder.
      secretStringValue: SecretValue.unsafePlainText('{}'),
      encryptionKey: this.key,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.oncallSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'PagerDuty and Opsgenie issue the API tokens; they are rotated in those services, then stored here by an operator, not by a Lambda.',
    });

    // ---- Code: one binary, two functions -----------------------------------------------
    const binary = binaryDir(cfg);
    const code = lambda.Code.fromAsset(binary);
    const architecture = architectureOf(path.join(binary, 'bootstrap'));
    if (architecture !== lambda.Architecture.ARM_64) {
      Annotations.of(this).addWarningV2('break-glass:x86_64', 'bootstrap is an x86_64 build: the functions run on x86_64 (an arm64 build is cheaper and faster to start)');
    }
    const policyLayer = new lambda.LayerVersion(this, 'Policy', {
      description: 'break-glass policy.toml, read from /opt/policy.toml',
      code: lambda.Code.fromAsset(policyLayerDir(cfg.policyFile)),
      compatibleRuntimes: [lambda.Runtime.PROVIDED_AL2023],
      compatibleArchitectures: [architecture],
    });

    const common: Record<string, string> = {
      TABLE_NAME: this.table.tableName,
      POLICY_FILE: POLICY_PATH,
      SLACK_SECRET_ARN: this.slackSecret.secretArn,
      ONCALL_SECRET_ARN: this.oncallSecret.secretArn,
      SLACK_TEAM_ID: cfg.slackTeamId,
      SLACK_API_APP_ID: cfg.slackApiAppId,
      CLOUDTRAIL_DELAY_SECONDS: String(cfg.cloudtrailDelaySeconds),
      SSO_INSTANCE_ARN: cfg.ssoInstanceArn,
      IDENTITY_STORE_ID: cfg.identityStoreId,
      RUST_LOG: 'info',
      // Only when given: unset, the binary uses its defaults.
      ...(cfg.pagerdutyApiUrl !== undefined ? { PAGERDUTY_API_URL: cfg.pagerdutyApiUrl } : {}),
      ...(cfg.opsgenieApiUrl !== undefined ? { OPSGENIE_API_URL: cfg.opsgenieApiUrl } : {}),
      ...(cfg.oncallCacheSeconds !== undefined ? { ONCALL_CACHE_SECONDS: String(cfg.oncallCacheSeconds) } : {}),
    };

    const webhookLogs = this.logGroup('WebhookLogs');
    this.webhook = this.function('Webhook', {
      code,
      architecture,
      layer: policyLayer,
      logGroup: webhookLogs,
      reservedConcurrency: cfg.webhookReservedConcurrency,
      memorySize: 256,
      // Slack gives up after 3 s; anything slower than this is broken, not slow.
      timeout: Duration.seconds(10),
      environment: {
        ...common,
        APP_ROLE: 'webhook',
        // How long the organization's accounts (the modal's type-ahead) are kept.
        ACCOUNTS_CACHE_SECONDS: String(cfg.accountsCacheSeconds),
      },
      description: 'break-glass webhook: verifies Slack requests, checks the policy, starts executions, publishes the App Home',
    });

    // The worker needs the state machine's ARN (the reconciler describes its executions), and
    // the state machine's definition needs the worker's ARN. A fixed name, from which the ARN
    // is built without referring to the state machine resource, breaks that cycle.
    const stateMachineName = this.stackName.slice(0, 80);
    const stateMachineArn = this.formatArn({ service: 'states', resource: 'stateMachine', resourceName: stateMachineName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const executionsArn = this.formatArn({ service: 'states', resource: 'execution', resourceName: `${stateMachineName}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME });

    // EventBridge invokes the worker asynchronously (the scheduled reconcile, the weekly digest):
    // an event that Lambda could not run, or that failed every retry, lands here instead of
    // vanishing. Step Functions invokes it synchronously and retries by itself, so its tasks
    // never do.
    this.workerDeadLetters = new sqs.Queue(this, 'WorkerDeadLetters', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.workerDeadLetters).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is the dead-letter queue (of the worker\'s asynchronous invocations); its messages are read by a person after the alarm, never redriven automatically.',
    });

    const workerLogs = this.logGroup('WorkerLogs');
    // The report pages CloudTrail at 2 requests/s per account and region.
    const workerTimeout = Duration.minutes(15);
    const reconcileBudgetSeconds = workerTimeout.toSeconds() - RECONCILE_RESERVE.toSeconds();
    if (reconcileBudgetSeconds < 1) throw new Error(`the worker's timeout (${workerTimeout.toSeconds()} s) leaves the reconciler no time after its ${RECONCILE_RESERVE.toSeconds()} s reserve`);
    this.worker = this.function('Worker', {
      code,
      architecture,
      layer: policyLayer,
      logGroup: workerLogs,
      reservedConcurrency: cfg.workerReservedConcurrency,
      deadLetterQueue: this.workerDeadLetters,
      memorySize: 512,
      timeout: workerTimeout,
      environment: {
        ...common,
        APP_ROLE: 'worker',
        // The reconciler: how long a run may start new checks, how many (account, permission
        // set) pairs it checks, and how fast it calls Identity Center.
        RECONCILE_BUDGET_SECONDS: String(reconcileBudgetSeconds),
        RECONCILE_PAIRS_PER_RUN: String(cfg.reconcilePairsPerRun),
        IDENTITY_CENTER_CALLS_PER_SECOND: String(cfg.identityCenterCallsPerSecond),
        REPORT_SENDER: cfg.reportSender,
        REPORT_RECIPIENTS: cfg.reportRecipients.join(','),
        CLOUDTRAIL_REGIONS: this.cloudtrailRegions(cfg),
        REPORT_ROLE_NAME: cfg.reportRoleName,
        STATE_MACHINE_ARN: stateMachineArn,
      },
      description: 'break-glass worker: grant, revoke and report tasks of the state machine, the scheduled reconcile and the weekly digest',
    });

    // ---- Workflow ----------------------------------------------------------------------
    const definitionFile = props.definitionFile ?? path.join(CDK_DIR, '..', 'sfn', 'break-glass.asl.json');
    const sfnLogs = new logs.LogGroup(this, 'StateMachineLogs', {
      // The /aws/vendedlogs/ prefix keeps CloudWatch Logs' resource policy from growing per log group.
      logGroupName: `/aws/vendedlogs/states/${this.stackName}`,
      retention: logs.RetentionDays.ONE_YEAR,
      encryptionKey: this.key,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      // Inline rather than an S3 asset: the template shows the definition and cfn-lint checks it.
      definitionBody: sfn.DefinitionBody.fromString(fs.readFileSync(definitionFile, 'utf8')),
      definitionSubstitutions: { WorkerFunctionArn: this.worker.functionArn },
      logs: { destination: sfnLogs, level: sfn.LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true,
    });
    // The definition invokes the worker by its unqualified ARN, so that ARN is all it may invoke.
    this.stateMachine.addToRolePolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.worker.functionArn] }));
    Validations.of(this.stateMachine.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'CDK adds these for logging and tracing: CloudWatch Logs delivery (logs:*LogDelivery, DescribeLogGroups, DescribeResourcePolicies, PutResourcePolicy) and X-Ray (PutTraceSegments, PutTelemetryRecords, GetSampling*) do not support resource-level permissions.',
    });

    // Set after the fact: the state machine needs the worker, the webhook needs the state machine.
    this.webhook.addEnvironment('STATE_MACHINE_ARN', this.stateMachine.stateMachineArn);

    // ---- IAM: both functions ----------------------------------------------------------
    // Exactly the item calls each one makes: no Batch*, no DeleteItem for the webhook, and no
    // Query of the table itself, only of the indexes INDEX_ACTIONS names, each by its own ARN. On
    // the table's ARN alone, not through table.grant(): a table with indexes grants on
    // <table>/index/* too, every index at once.
    for (const [role, fn] of [['webhook', this.webhook], ['worker', this.worker]] as const) {
      fn.addToRolePolicy(new iam.PolicyStatement({ actions: [...TABLE_ACTIONS[role]], resources: [this.table.tableArn] }));
      for (const [index, actions] of Object.entries(INDEX_ACTIONS[role])) {
        fn.addToRolePolicy(new iam.PolicyStatement({ actions: [...actions!], resources: [`${this.table.tableArn}/index/${index}`] }));
      }
    }
    // The table statements leave the key alone (grantReadWriteData would add kms:ReEncrypt* and
    // kms:GenerateDataKey*); one grant covers the table, the environments and the secret.
    for (const fn of [this.webhook, this.worker]) this.key.grant(fn, ...KEY_ACTIONS);
    // The webhook verifies signatures and calls users.info; the worker posts follow-ups.
    this.slackSecret.grantRead(this.webhook);
    this.slackSecret.grantRead(this.worker);
    // The webhook asks who is on call and checks incidents; the worker notes the report on the
    // PagerDuty incident. GetSecretValue only (src/aws/secrets.rs makes no other call), on this
    // secret only; the key grant above decrypts it.
    for (const fn of [this.webhook, this.worker]) {
      fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReadOncallTokens', actions: ['secretsmanager:GetSecretValue'], resources: [this.oncallSecret.secretArn] }));
    }
    this.stateMachine.grantStartExecution(this.webhook);

    // Read-only Identity Center look-ups, done by both: Slack user → Identity Center user (by
    // e-mail), their user name and group memberships; permission set ARN ↔ name.
    const { partition, id: instanceId } = parseInstanceArn(cfg.ssoInstanceArn);
    const idsArn = (kind: string) => `arn:${partition}:identitystore:::${kind}/*`;
    const anyPermissionSet = `arn:${partition}:sso:::permissionSet/${instanceId}/*`;
    const identityCenterRead = new iam.Policy(this, 'IdentityCenterRead', {
      roles: [this.webhook.role!, this.worker.role!],
      statements: [
        new iam.PolicyStatement({
          sid: 'ResolveIdentityCenterUsers',
          actions: ['identitystore:GetUserId', 'identitystore:DescribeUser', 'identitystore:GetGroupId', 'identitystore:IsMemberInGroups'],
          resources: [
            `arn:${partition}:identitystore::${Aws.ACCOUNT_ID}:identitystore/${cfg.identityStoreId}`,
            idsArn('user'), idsArn('group'), idsArn('membership'),
          ],
        }),
        new iam.PolicyStatement({
          sid: 'NamePermissionSets',
          actions: ['sso:DescribePermissionSet', 'sso:ListPermissionSets'],
          resources: [cfg.ssoInstanceArn, anyPermissionSet],
        }),
      ],
    });
    for (const kind of ['user', 'group', 'membership']) {
      Validations.of(identityCenterRead).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${idsArn(kind)}]`,
        reason: `Read-only identity store calls also authorize on the ${kind}, whose id is what they look up; the identity store ARN bounds them to ours.`,
      });
    }
    // The worker asks the members of a rule's approver groups directly (a direct message each),
    // so it lists those groups' members. Read-only; the webhook has no need of it.
    const approverGroups = new iam.Policy(this, 'WorkerApproverGroups', {
      roles: [this.worker.role!],
      statements: [new iam.PolicyStatement({
        sid: 'ListApproverGroupMembers',
        actions: ['identitystore:ListGroupMemberships'],
        resources: [
          `arn:${partition}:identitystore::${Aws.ACCOUNT_ID}:identitystore/${cfg.identityStoreId}`,
          idsArn('group'), idsArn('membership'),
        ],
      })],
    });
    for (const kind of ['group', 'membership']) {
      Validations.of(approverGroups).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${idsArn(kind)}]`,
        reason: `Read-only listing of an approver group's members also authorizes on the ${kind}; the identity store ARN bounds it to ours.`,
      });
    }
    Validations.of(identityCenterRead).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${anyPermissionSet}]`,
      reason: 'Read-only: permission set names are looked up for ARNs that arrive in Slack clicks before the policy decides; bounded to our instance.',
    });

    // ---- IAM: the organization's accounts, for the modal (-c listOrganizationAccounts) ------
    // The /break-glass modal offers the organization's accounts through type-ahead. Without this
    // (-c listOrganizationAccounts=false) the webhook is refused and offers the accounts the
    // policy names. Read-only, names and ids; it works where the stack is deployed: the
    // management account, or Identity Center's delegated administrator. A policy of its own, so
    // that acknowledging its "*" cannot hide any other "*" on the webhook.
    if (cfg.listOrganizationAccounts) {
      const listAccounts = new iam.Policy(this, 'WebhookListAccounts', {
        roles: [this.webhook.role!],
        statements: [new iam.PolicyStatement({ sid: 'ListOrganizationAccounts', actions: ['organizations:ListAccounts'], resources: ['*'] })],
      });
      Validations.of(listAccounts).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'organizations:ListAccounts does not support resource-level permissions; it is this policy\'s only action, read-only (account ids and names for the modal\'s type-ahead).',
      });
    }

    // ---- IAM: the worker's grants, derived from the policy file ------------------------
    // Granting is the escalation, so only granting is bounded by the policy file.
    this.worker.addToRolePolicy(new iam.PolicyStatement({
      sid: 'AccountAssignmentsFromPolicy',
      actions: ['sso:CreateAccountAssignment', 'sso:DescribeAccountAssignmentCreationStatus'],
      resources: assignmentResources(scopeOfGrants, cfg.ssoInstanceArn),
    }));
    // Revoking must survive a narrowed policy: a lease granted under yesterday's policy names an
    // account or permission set today's may no longer have, and its revocation (and the
    // reconciler's look for it) must still work. Removing or listing access is never an
    // escalation, so these cover every account and every permission set of our instance. A
    // policy of their own, so that acknowledging their wildcards cannot hide one in the grants.
    const anyAccount = `arn:${partition}:sso:::account/*`;
    const removeAndList = new iam.Policy(this, 'WorkerRemoveAndListAssignments', {
      roles: [this.worker.role!],
      statements: [new iam.PolicyStatement({
        sid: 'RemoveAndListAnyAssignment',
        actions: ['sso:DeleteAccountAssignment', 'sso:DescribeAccountAssignmentDeletionStatus', 'sso:ListAccountAssignments', 'sso:ListAccountAssignmentsForPrincipal'],
        resources: [cfg.ssoInstanceArn, anyPermissionSet, anyAccount],
      })],
    });
    Validations.of(removeAndList).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${anyAccount}]`,
      reason: 'Only removing and listing assignments, never creating them: a revocation must reach an account the (narrowed) policy no longer names. Bounded to our instance.',
    });
    Validations.of(removeAndList).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${anyPermissionSet}]`,
      reason: 'Only removing and listing assignments, never creating them: a revocation must reach a permission set the (narrowed) policy no longer names. Bounded to our instance.',
    });
    const readerRoles = scopeOfGrants.accounts === ANY
      ? [`arn:${partition}:iam::*:role/${cfg.reportRoleName}`]
      : scopeOfGrants.accounts.map((a) => `arn:${partition}:iam::${a}:role/${cfg.reportRoleName}`);
    this.worker.addToRolePolicy(new iam.PolicyStatement({
      sid: 'ReadCloudTrailInTargetAccounts',
      actions: ['sts:AssumeRole'],
      resources: readerRoles,
    }));
    // cloudtrail:LookupEvents supports no resource-level permissions. It gets a policy of its
    // own so that acknowledging its "*" cannot hide any other "*" on the worker.
    const lookupEvents = new iam.Policy(this, 'WorkerLookupEvents', {
      roles: [this.worker.role!],
      statements: [new iam.PolicyStatement({ sid: 'ReadCloudTrailHere', actions: ['cloudtrail:LookupEvents'], resources: ['*'] })],
    });
    Validations.of(lookupEvents).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'cloudtrail:LookupEvents does not support resource-level permissions; it is this policy\'s only action.',
    });
    const senderDomain = cfg.reportSender.split('@')[1];
    this.worker.addToRolePolicy(new iam.PolicyStatement({
      sid: 'SendReport',
      actions: ['ses:SendEmail', 'ses:SendRawEmail'],
      // SES authorizes against the identity that verified the sender: the address or its domain.
      resources: [cfg.reportSender, senderDomain].map((i) => `arn:${Aws.PARTITION}:ses:${Aws.REGION}:${Aws.ACCOUNT_ID}:identity/${i}`),
    }));

    // Wildcards the policy file asks for, acknowledged only when it does, naming the rules.
    const workerPolicy = this.worker.role!.node.tryFindChild('DefaultPolicy')!;
    const { widenedBy } = scopeOfGrants;
    if (widenedBy.accounts.length > 0) {
      const rules = widenedBy.accounts.join(', ');
      Validations.of(workerPolicy).acknowledge({
        id: `AwsSolutions-IAM5[Resource::arn:${partition}:sso:::account/*]`,
        reason: `Policy rule(s) ${rules} allow any account ("*"); the instance and permission-set resources still bound the assignment.`,
      });
      Validations.of(workerPolicy).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${readerRoles[0]}]`,
        reason: `Policy rule(s) ${rules} allow any account ("*"), so the report may read CloudTrail in any account, through the one read-only role name.`,
      });
    }
    if (widenedBy.permissionSets.length > 0) {
      Validations.of(workerPolicy).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${anyPermissionSet}]`,
        reason: `Policy rule(s) ${widenedBy.permissionSets.join(', ')} allow any permission set ("*") or name permission sets, whose ARNs are only known at run time; bounded to our instance.`,
      });
    }

    // ---- IAM: the reconciler ------------------------------------------------------------
    // It lists the assignments of every break-glass permission set (RemoveAndListAnyAssignment
    // above), queries the `live` index for leases, creation intents and session denies, and the
    // pending-review index to remind and escalate (both INDEX_ACTIONS; no Scan), and asks whether
    // the execution behind a lease is still running: the execution ARN is the state machine's
    // name and the request id.
    this.worker.addToRolePolicy(new iam.PolicyStatement({
      sid: 'ReconcileReadsExecutions',
      actions: ['states:DescribeExecution'],
      resources: [executionsArn],
    }));
    Validations.of(workerPolicy).acknowledge({
      // cdk-nag names the resource with the pseudo parameters as <AWS::…>.
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${stateMachineName}:*]`,
      reason: 'The reconciler describes the execution behind each lease; executions are named by request id at run time. Bounded to the executions of this stack\'s state machine, read-only.',
    });

    // ---- IAM: ending live sessions (rules with end_sessions = true only) -----------------
    // When such a lease ends, the worker adds a Deny on the user's older sessions to the
    // permission set's inline policy, provisions it to the lease's account, and later lifts it.
    // The caller needs no iam:* for this: Identity Center's service-linked role updates the
    // AWSReservedSSO_* roles. (A delegated administrator cannot provision permission sets into
    // the management account at all; deploy in the management account for that.)
    if (scopeOfEndSessions !== undefined) {
      const endSessions = new iam.Policy(this, 'WorkerEndSessions', {
        roles: [this.worker.role!],
        statements: [
          new iam.PolicyStatement({
            sid: 'EndSessionsInlinePolicy',
            actions: ['sso:GetInlinePolicyForPermissionSet', 'sso:PutInlinePolicyToPermissionSet', 'sso:DeleteInlinePolicyFromPermissionSet'],
            resources: permissionSetResources(scopeOfEndSessions, cfg.ssoInstanceArn),
          }),
          new iam.PolicyStatement({
            sid: 'EndSessionsProvision',
            actions: ['sso:ProvisionPermissionSet'],
            resources: assignmentResources(scopeOfEndSessions, cfg.ssoInstanceArn),
          }),
          new iam.PolicyStatement({
            sid: 'EndSessionsProvisioningStatus',
            // Authorizes on the instance only.
            actions: ['sso:DescribePermissionSetProvisioningStatus'],
            resources: [cfg.ssoInstanceArn],
          }),
        ],
      });
      const { widenedBy: wide } = scopeOfEndSessions;
      if (wide.accounts.length > 0) {
        Validations.of(endSessions).acknowledge({
          id: `AwsSolutions-IAM5[Resource::arn:${partition}:sso:::account/*]`,
          reason: `Policy rule(s) ${wide.accounts.join(', ')} end live sessions in any account ("*"); the permission sets of the end_sessions rules still bound the provisioning.`,
        });
      }
      if (wide.permissionSets.length > 0) {
        Validations.of(endSessions).acknowledge({
          id: `AwsSolutions-IAM5[Resource::${anyPermissionSet}]`,
          reason: `Policy rule(s) ${wide.permissionSets.join(', ')} end live sessions of any permission set ("*") or of permission sets named by name, whose ARNs are only known at run time; bounded to our instance.`,
        });
      }
    }

    // Callback tokens come back through SendTaskSuccess: ending a hold early from Slack (both),
    // and an approval granted (the webhook). An approval refused fails the waiting task
    // (SendTaskFailure, the webhook only); nothing sends heartbeats. Separate policies, not the
    // roles' default policies: the state machine already depends on the worker.
    new iam.Policy(this, 'TaskCallbacks', {
      roles: [this.webhook.role!, this.worker.role!],
      statements: [new iam.PolicyStatement({
        actions: ['states:SendTaskSuccess'],
        resources: [this.stateMachine.stateMachineArn],
      })],
    });
    new iam.Policy(this, 'ApprovalRefusals', {
      roles: [this.webhook.role!],
      statements: [new iam.PolicyStatement({
        actions: ['states:SendTaskFailure'],
        resources: [this.stateMachine.stateMachineArn],
      })],
    });

    if (cfg.createSenderIdentity) {
      // Starts verification of the sender address (SES e-mails a link to it). Leave this off
      // when the address or its domain is already verified in this account and region.
      new ses.EmailIdentity(this, 'ReportSender', { identity: ses.Identity.email(cfg.reportSender) });
    }

    // ---- Slack endpoint ----------------------------------------------------------------
    this.api = new apigw.HttpApi(this, 'Api', {
      apiName: this.stackName,
      description: 'break-glass Slack endpoint (interactivity, the /break-glass command and the App Home event)',
      createDefaultStage: false,
    });
    const accessLogs = this.logGroup('ApiAccessLogs');
    new apigw.HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: { burstLimit: cfg.apiBurstLimit, rateLimit: cfg.apiRateLimit },
      accessLogSettings: { destination: new apigw.LogGroupLogDestination(accessLogs) },
    });
    this.api.addRoutes({
      path: '/slack',
      methods: [apigw.HttpMethod.POST],
      integration: new HttpLambdaIntegration('Webhook', this.webhook, { payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0 }),
    });
    Validations.of(this.api).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason: 'Slack cannot present AWS credentials or a JWT; the webhook verifies every request\'s Slack signature (HMAC-SHA256, 5-minute window) before anything else.',
    });

    // ---- Reconciler schedule ---------------------------------------------------------------
    // Compares Identity Center with the leases: revokes grants whose execution is over, and
    // reports (or, where a rule says standing_access = "remove", deletes) standing access.
    this.reconcileRule = new events.Rule(this, 'Reconcile', {
      description: 'break-glass: run the reconciler (worker payload {"type":"reconcile"})',
      schedule: events.Schedule.expression(cfg.reconcileSchedule),
    });
    this.reconcileRule.addTarget(new targets.LambdaFunction(this.worker, {
      event: events.RuleTargetInput.fromObject({ type: 'reconcile' }),
      // A run that could not be delivered within the hour is superseded by the next one.
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
    }));

    // ---- Weekly digest schedule -------------------------------------------------------------
    // Posts the weekly review digest to the review channel; the worker reads the week's requests
    // through by_day (INDEX_ACTIONS).
    this.digestRule = new events.Rule(this, 'Digest', {
      description: 'break-glass: post the weekly review digest (worker payload {"type":"digest"})',
      schedule: events.Schedule.expression(cfg.digestSchedule),
    });
    this.digestRule.addTarget(new targets.LambdaFunction(this.worker, {
      event: events.RuleTargetInput.fromObject({ type: 'digest' }),
      // As the reconcile's. There is no next run for a week, so a digest that failed every
      // retry is not superseded: it waits in the dead-letter queue, whose alarm says to post it.
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
    }));

    // ---- Alarms --------------------------------------------------------------------------
    this.alarmTopic = this.topic(cfg.alarmEmail);
    // tracing-subscriber's JSON lines: {"level":"ERROR","fields":{"message":"revoke failed",…}}
    const logCount = (id: string, message: string, metricName: string) => new logs.MetricFilter(this, id, {
      logGroup: workerLogs,
      filterPattern: logs.FilterPattern.stringValue('$.fields.message', '=', message),
      metricNamespace: 'BreakGlass',
      metricName,
      metricValue: '1',
    }).metric({ statistic: cloudwatch.Stats.SUM });
    const revokeFailures = logCount('RevokeFailuresFilter', 'revoke failed', 'RevokeFailures');
    // The reconciler could not check or fix something: access may be left that nothing will take away.
    const reconcileFailures = logCount('ReconcileFailuresFilter', 'reconcile failed', 'ReconcileFailures');
    // The reconciler took away access whose execution had ended: the execution died while access was live.
    const reconcilerRevocations = logCount('ReconcilerRevokedFilter', 'reconciler revoked', 'ReconcilerRevocations');
    // The reconcile run escalated a review: nobody reviewed a use within twice the policy's time.
    const reviewEscalations = logCount('ReviewEscalationsFilter', 'review escalated', 'ReviewEscalations');
    const alarms: Record<string, [cloudwatch.IMetric, string]> = {
      ExecutionsFailed: [this.stateMachine.metricFailed(), 'A break-glass execution failed: check that access was revoked.'],
      ExecutionsTimedOut: [this.stateMachine.metricTimedOut(), 'A break-glass execution timed out: check that access was revoked.'],
      RevokeFailures: [revokeFailures, 'Revoking break-glass access failed: remove the assignment by hand.'],
      ReconcileFailures: [reconcileFailures, 'The break-glass reconciler could not check or fix an assignment: see the worker logs ("reconcile failed") and check Identity Center by hand.'],
      ReconcilerRevocations: [reconcilerRevocations, 'The break-glass reconciler revoked access whose execution had ended while access was live: find out why the execution died.'],
      ReviewEscalations: [reviewEscalations, 'A break-glass use went unreviewed for twice the policy\'s review time: see the review channel and the escalation message.'],
      WebhookErrors: [this.webhook.metricErrors(), 'The Slack webhook function failed.'],
      WebhookThrottles: [this.webhook.metricThrottles(), 'The Slack webhook function was throttled: clicks were lost.'],
      WorkerErrors: [this.worker.metricErrors(), 'A break-glass worker task failed (the state machine retries it).'],
      // Any message at all: the queue is empty unless something went wrong.
      WorkerDeadLetters: [
        this.workerDeadLetters.metricApproximateNumberOfMessagesVisible({ statistic: cloudwatch.Stats.MAXIMUM }),
        'A scheduled reconcile or weekly digest could not be delivered or failed every retry: run it by hand (worker payload {"type":"reconcile"} or {"type":"digest"}, as the event in the worker\'s dead-letter queue says).',
      ],
    };
    for (const [name, [metric, description]] of Object.entries(alarms)) {
      const alarm = new cloudwatch.Alarm(this, `${name}Alarm`, {
        metric,
        alarmDescription: description,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(new SnsAction(this.alarmTopic));
    }

    // ---- Outputs -----------------------------------------------------------------------
    new CfnOutput(this, 'SlackRequestUrl', { value: `${this.api.apiEndpoint}/slack`, description: 'Interactivity, slash command and event subscription Request URL for slack/manifest.yaml' });
    new CfnOutput(this, 'SlackSecretArn', { value: this.slackSecret.secretArn, description: 'Put {"signing_secrets": ["..."], "bot_token": "xoxb-..."} here' });
    new CfnOutput(this, 'OncallSecretArn', {
      value: this.oncallSecret.secretArn,
      description: 'Put {"pagerduty": {"token": "...", "from": "someone@example.com"}, "opsgenie": {"token": "..."}} here (each part optional; {} when no policy rule uses an on-call source)',
    });
    new CfnOutput(this, 'WorkerRoleArn', { value: this.worker.role!.roleArn, description: 'WorkerRoleArn parameter of the member-account stack (StackSet)' });
    new CfnOutput(this, 'StateMachineArn', { value: this.stateMachine.stateMachineArn });
    new CfnOutput(this, 'ReconcileSchedule', { value: cfg.reconcileSchedule, description: 'When the reconciler runs (-c reconcileSchedule=…)' });
    new CfnOutput(this, 'DigestSchedule', { value: cfg.digestSchedule, description: 'When the weekly review digest is posted to the review channel (-c digestSchedule=…)' });
    new CfnOutput(this, 'TableName', {
      value: this.table.tableName,
      description: 'The state and audit trail (break-glass leases check; break-glass audit export reads it through its by_day index, with the operator\'s own credentials)',
    });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });
    new CfnOutput(this, 'KmsKeyArn', { value: this.key.keyArn, description: 'The key of the table, the Slack and on-call secrets, the log groups, the function environments and the dead-letter queue (-c kmsKeyArn=… brings your own)' });

    // ---- checkov -----------------------------------------------------------------------------
    // What it flags and this stack does not do, on purpose (scripts/checkov.sh fails on the rest).
    const noVpc = 'The functions call only AWS APIs and Slack, over HTTPS; a VPC would add NAT gateways and endpoints without adding a control, since IAM scopes every call.';
    skipCheckov(this.webhook, 'CKV_AWS_117', noVpc);
    skipCheckov(this.worker, 'CKV_AWS_117', noVpc);
    skipCheckov(this.webhook, 'CKV_AWS_116', 'API Gateway invokes the webhook synchronously, so there is no asynchronous event to dead-letter: a failure is an error response to Slack (and the WebhookErrors alarm).');
  }

  /** The key given with -c kmsKeyArn=…, else a new one that CloudWatch Logs may use for this account's log groups. */
  private dataKey(kmsKeyArn: string | undefined): kms.IKey {
    if (kmsKeyArn !== undefined) return kms.Key.fromKeyArn(this, 'Key', kmsKeyArn);
    const key = new kms.Key(this, 'Key', {
      description: 'break-glass: the table, the Slack and on-call secrets, the log groups, the function environments and the dead-letter queue',
      enableKeyRotation: true,
      // The table and the log groups are retained (the audit trail): so is the key that reads them.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // The default key policy lets this account's IAM policies grant the key (the functions' roles
    // get it that way); CloudWatch Logs is a service principal and needs a statement of its own.
    key.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'CloudWatchLogsOfThisAccount',
      actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      principals: [new iam.ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
      resources: ['*'],
      conditions: {
        ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:*` },
      },
    }));
    return key;
  }

  private logGroup(id: string): logs.LogGroup {
    return new logs.LogGroup(this, id, { retention: logs.RetentionDays.ONE_YEAR, encryptionKey: this.key, removalPolicy: RemovalPolicy.RETAIN });
  }

  private function(id: string, p: {
    code: lambda.Code; architecture: lambda.Architecture; layer: lambda.ILayerVersion; logGroup: logs.LogGroup; reservedConcurrency: number;
    deadLetterQueue?: sqs.IQueue; memorySize: number; timeout: Duration; environment: Record<string, string>; description: string;
  }): lambda.Function {
    // An explicit role: log writes scoped to the function's own log group, no managed policy.
    const role = new iam.Role(this, `${id}Role`, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    p.logGroup.grantWrite(role);
    return new lambda.Function(this, id, {
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: p.architecture,
      handler: 'bootstrap',
      code: p.code,
      layers: [p.layer],
      role,
      logGroup: p.logGroup,
      reservedConcurrentExecutions: p.reservedConcurrency,
      deadLetterQueue: p.deadLetterQueue,
      memorySize: p.memorySize,
      timeout: p.timeout,
      environment: p.environment,
      environmentEncryption: this.key,
      description: p.description,
    });
  }

  /** The configured regions, else this region and us-east-1 (where IAM and other global services log), once each. */
  private cloudtrailRegions(cfg: DeploymentConfig): string {
    if (cfg.cloudtrailRegions) return cfg.cloudtrailRegions.join(',');
    // The stack is environment-agnostic, so the region is only known at deploy time.
    const inUsEast1 = new CfnCondition(this, 'InUsEast1', { expression: Fn.conditionEquals(Aws.REGION, 'us-east-1') });
    return Fn.conditionIf(inUsEast1.logicalId, 'us-east-1', Fn.join(',', [Aws.REGION, 'us-east-1'])).toString();
  }

  private topic(alarmEmail: string | undefined): sns.Topic {
    // CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key, so the
    // topic gets its own key that CloudWatch may use.
    const key = new kms.Key(this, 'AlarmTopicKey', { description: 'break-glass alarm topic', enableKeyRotation: true });
    key.addToResourcePolicy(new iam.PolicyStatement({
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      resources: ['*'],
      conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
    }));
    const topic = new sns.Topic(this, 'AlarmTopic', { displayName: 'break-glass alarms', masterKey: key, enforceSSL: true });
    if (alarmEmail) topic.addSubscription(new subscriptions.EmailSubscription(alarmEmail));
    return topic;
  }
}

/**
 * Tells checkov (scripts/checkov.sh) to skip one of its checks on the resource behind
 * `construct`, in the resource's template metadata where checkov reads it
 * (`Metadata.checkov.skip: [{id, comment}]`), with the reason it then prints. A skip without a
 * reason is refused: like a cdk-nag acknowledgment, it must say why.
 */
export function skipCheckov(construct: IConstruct, id: string, comment: string): void {
  const resource = construct instanceof CfnResource ? construct : construct.node.defaultChild;
  if (!(resource instanceof CfnResource)) throw new Error(`checkov skip ${id}: ${construct.node.path} is not a CloudFormation resource`);
  if (!/^CKV2?_[A-Z0-9]+_\d+$/.test(id)) throw new Error(`checkov skip on ${construct.node.path}: ${JSON.stringify(id)} is not a checkov check id`);
  if (comment.trim() === '') throw new Error(`checkov skip ${id} on ${construct.node.path}: give the reason`);
  const skip: Array<{ id: string; comment: string }> = resource.getMetadata('checkov')?.skip ?? [];
  resource.addMetadata('checkov', { skip: [...skip, { id, comment }] });
}

/** The directory with `bootstrap`; with example values, a stub when there is no build yet. */
function binaryDir(cfg: DeploymentConfig): string {
  if (fs.existsSync(path.join(cfg.assetDir, 'bootstrap'))) return cfg.assetDir;
  if (!cfg.example) {
    throw new Error(`no ${path.join(cfg.assetDir, 'bootstrap')}: run \`make build\` (cargo lambda build --release --arm64) first, or pass -c assetDir=DIR`);
  }
  return stage('bootstrap', '#!/bin/sh\necho "placeholder from cdk synth -c example=true: build with make build" >&2\nexit 1\n', 0o755);
}

/**
 * The architecture `bootstrap` was built for, from its ELF header: `make build` falls back to
 * x86_64 when it cannot cross-compile, and an x86_64 binary on an arm64 function cannot start.
 * Anything but an x86_64 ELF file (an arm64 build, a test stub) means arm64.
 */
export function architectureOf(file: string): lambda.Architecture {
  const header = Buffer.alloc(20);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, header, 0, header.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  const isElf = header.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  const EM_X86_64 = 0x3e; // e_machine, little-endian, at offset 18
  return isElf && header.readUInt16LE(18) === EM_X86_64 ? lambda.Architecture.X86_64 : lambda.Architecture.ARM_64;
}

/** A directory holding only `policy.toml`, so the layer puts it at /opt/policy.toml whatever the file is called. */
function policyLayerDir(policyFile: string): string {
  return stage('policy.toml', fs.readFileSync(policyFile), 0o644);
}

/** Writes one file into a temporary directory named by its content (so repeated synths reuse it). */
function stage(name: string, content: string | Buffer, mode: number): string {
  const hash = crypto.createHash('sha256').update(name).update(content).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), `break-glass-cdk-${hash}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, name), content, { mode });
  return dir;
}
