import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { skipCheckov } from '../lib/break-glass-stack';
import { readPolicyScope } from '../lib/policy';
import { asList, deployContext, FIXTURES, iamStatements, INSTANCE_ARN, PS_DBA, PS_ONCALL, synth } from './helpers';

const ASL_FILE = path.join(__dirname, '..', '..', 'sfn', 'break-glass.asl.json');

type Resources = Record<string, { Type: string; Properties: any; DeletionPolicy?: string }>;
const resourcesOf = (t: Template, type: string) => Object.entries(t.toJSON().Resources as Resources).filter(([, r]) => r.Type === type);
const logicalId = (t: Template, type: string, props: object) => {
  const ids = Object.keys(t.findResources(type, { Properties: props }));
  assert.equal(ids.length, 1, `exactly one ${type} like ${JSON.stringify(props)}`);
  return ids[0];
};
/** The webhook or worker function: [logical id, resource]. */
const fnOf = (t: Template, appRole: string) => resourcesOf(t, 'AWS::Lambda::Function').find(([, f]) => f.Properties.Environment.Variables.APP_ROLE === appRole)!;
const roleOf = (t: Template, appRole: string): string => fnOf(t, appRole)[1].Properties.Role['Fn::GetAtt'][0];
/** Every statement a role gets: its inline policies and every AWS::IAM::Policy attached to it. */
const statementsOf = (t: Template, roleId: string): Array<{ Sid?: string; Action: string | string[]; Resource: unknown; Effect: string }> => [
  ...((t.toJSON().Resources as Resources)[roleId].Properties.Policies ?? []).flatMap((p: any) => p.PolicyDocument.Statement),
  ...resourcesOf(t, 'AWS::IAM::Policy')
    .filter(([, p]) => p.Properties.Roles.some((r: any) => r.Ref === roleId))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement),
];
/** The sorted, unique actions of `statements` that start with `prefix` (e.g. "dynamodb:"). */
const actionsOf = (statements: Array<{ Action: string | string[] }>, prefix: string) =>
  [...new Set(statements.flatMap((s) => asList(s.Action)).filter((a) => a.startsWith(prefix)))].sort();
/** Every resource that statements allowing `action` name. */
const resourcesFor = (statements: Array<{ Action: string | string[]; Resource: unknown }>, action: string) =>
  statements.filter((s) => asList(s.Action).includes(action)).flatMap((s) => asList(s.Resource));
/** The Slack or on-call secret, by the start of its logical id: [logical id, resource]. */
const secretOf = (t: Template, idPrefix: 'SlackSecret' | 'OncallSecret') => {
  const found = resourcesOf(t, 'AWS::SecretsManager::Secret').filter(([id]) => id.startsWith(idPrefix));
  assert.equal(found.length, 1, `exactly one ${idPrefix}`);
  return found[0];
};
const byJson = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));
/** The key of the stack's data (not the alarm topic's), as the table names it. */
const dataKeyOf = (t: Template) => resourcesOf(t, 'AWS::DynamoDB::Table')[0][1].Properties.SSESpecification.KMSMasterKeyId;
/** Every statement of every policy document in a template: IAM policies, but also key, queue and topic policies. */
const everyStatement = (t: Template): Array<Record<string, unknown>> => {
  const out: Array<Record<string, unknown>> = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === 'Statement' && Array.isArray(v)) out.push(...v);
        else walk(v);
      }
    }
  };
  walk(t.toJSON().Resources);
  return out;
};
/** Whether an IAM action pattern ("dynamodb:Sc*", "*") covers `action`, as IAM matches them: wildcards, any case. */
const covers = (pattern: string, action: string) => {
  const glob = pattern.replace(/[.+^$()|[\]{}\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${glob}$`, 'i').test(action);
};
const nagViolations = (app: App) => new AwsSolutionsChecks(app).validateScope(app).violations.map((v) => `${v.ruleName} ${v.violatingResources.map((r) => r.constructPath).join(' ')}`);

describe('main stack', () => {
  let t: Template;
  let built: ReturnType<typeof synth>;
  before(() => {
    built = synth(deployContext({ alarmEmail: 'oncall@example.com' }));
    t = built.template;
  });

  it('routes POST /slack of a throttled, access-logged HTTP API to the webhook (payload v2)', () => {
    t.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    t.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    t.resourceCountIs('AWS::ApiGatewayV2::Route', 1);
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /slack' });
    const webhook = logicalId(t, 'AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ APP_ROLE: 'webhook' }) } });
    t.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
      IntegrationUri: { 'Fn::GetAtt': [webhook, 'Arn'] },
    });
    t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      // The defaults of -c apiBurstLimit / -c apiRateLimit.
      DefaultRouteSettings: { ThrottlingBurstLimit: 100, ThrottlingRateLimit: 50 },
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
    });
  });

  it('runs webhook and worker from one code asset, told apart by APP_ROLE', () => {
    const fns = resourcesOf(t, 'AWS::Lambda::Function').map(([, r]) => r.Properties);
    assert.equal(fns.length, 2);
    assert.deepEqual(fns.map((f) => f.Environment.Variables.APP_ROLE).sort(), ['webhook', 'worker']);
    assert.equal(new Set(fns.map((f) => JSON.stringify(f.Code))).size, 1, 'same asset for both');
    for (const f of fns) {
      assert.equal(f.Runtime, 'provided.al2023');
      assert.deepEqual(f.Architectures, ['arm64']);
      assert.equal(f.Handler, 'bootstrap');
      assert.equal(f.Layers.length, 1);
    }
    const byRole = Object.fromEntries(fns.map((f) => [f.Environment.Variables.APP_ROLE, f]));
    assert.equal(byRole.webhook.MemorySize, 256);
    assert.equal(byRole.webhook.Timeout, 10);
    assert.equal(byRole.worker.MemorySize, 512);
    assert.equal(byRole.worker.Timeout, 900);
    // The defaults of -c webhookReservedConcurrency / -c workerReservedConcurrency.
    assert.equal(byRole.webhook.ReservedConcurrentExecutions, 10);
    assert.equal(byRole.worker.ReservedConcurrentExecutions, 20);
  });

  it('gives each function exactly the environment the binary reads, and no secret in it', () => {
    const env = (role: string) => resourcesOf(t, 'AWS::Lambda::Function').map(([, r]) => r.Properties.Environment.Variables).find((v) => v.APP_ROLE === role);
    const common = ['APP_ROLE', 'CLOUDTRAIL_DELAY_SECONDS', 'IDENTITY_STORE_ID', 'ONCALL_SECRET_ARN', 'POLICY_FILE', 'RUST_LOG', 'SLACK_API_APP_ID', 'SLACK_SECRET_ARN', 'SLACK_TEAM_ID', 'SSO_INSTANCE_ARN', 'TABLE_NAME'];
    assert.deepEqual(Object.keys(env('webhook')).sort(), [...common, 'ACCOUNTS_CACHE_SECONDS', 'STATE_MACHINE_ARN'].sort());
    assert.deepEqual(Object.keys(env('worker')).sort(), [
      ...common, 'CLOUDTRAIL_REGIONS', 'IDENTITY_CENTER_CALLS_PER_SECOND', 'RECONCILE_BUDGET_SECONDS', 'RECONCILE_PAIRS_PER_RUN',
      'REPORT_RECIPIENTS', 'REPORT_ROLE_NAME', 'REPORT_SENDER', 'STATE_MACHINE_ARN',
    ].sort());
    const worker = env('worker');
    assert.equal(worker.POLICY_FILE, '/opt/policy.toml');
    assert.equal(worker.SSO_INSTANCE_ARN, INSTANCE_ARN);
    assert.equal(worker.REPORT_RECIPIENTS, 'soc@example.com,ciso@example.com');
    assert.equal(worker.REPORT_ROLE_NAME, 'break-glass-report-reader');
    assert.equal(worker.CLOUDTRAIL_DELAY_SECONDS, '900');
    // Environment-agnostic: "this region and us-east-1", once each, decided at deploy time.
    assert.deepEqual(worker.CLOUDTRAIL_REGIONS, { 'Fn::If': ['InUsEast1', 'us-east-1', { 'Fn::Join': [',', [{ Ref: 'AWS::Region' }, 'us-east-1']] }] });
    for (const role of ['webhook', 'worker']) {
      assert.deepEqual(env(role).SLACK_SECRET_ARN, { Ref: secretOf(t, 'SlackSecret')[0] }, role);
      assert.deepEqual(env(role).ONCALL_SECRET_ARN, { Ref: secretOf(t, 'OncallSecret')[0] }, role);
    }
    assert.doesNotMatch(JSON.stringify(resourcesOf(t, 'AWS::Lambda::Function')), /xox[bp]-|signing_secrets|pagerduty|opsgenie/i);
  });

  it('runs the ASL definition as a logged, traced standard workflow that invokes only the worker', () => {
    const worker = logicalId(t, 'AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ APP_ROLE: 'worker' }) } });
    const [[, sm]] = resourcesOf(t, 'AWS::StepFunctions::StateMachine');
    assert.equal(sm.Properties.StateMachineType, 'STANDARD');
    assert.deepEqual(JSON.parse(sm.Properties.DefinitionString), JSON.parse(fs.readFileSync(ASL_FILE, 'utf8')));
    assert.match(sm.Properties.DefinitionString, /\$\{WorkerFunctionArn\}/);
    assert.deepEqual(sm.Properties.DefinitionSubstitutions, { WorkerFunctionArn: { 'Fn::GetAtt': [worker, 'Arn'] } });
    assert.equal(sm.Properties.LoggingConfiguration.Level, 'ALL');
    assert.equal(sm.Properties.LoggingConfiguration.IncludeExecutionData, true);
    assert.equal(sm.Properties.LoggingConfiguration.Destinations.length, 1);
    assert.deepEqual(sm.Properties.TracingConfiguration, { Enabled: true });

    const role = sm.Properties.RoleArn['Fn::GetAtt'][0];
    const [, policy] = resourcesOf(t, 'AWS::IAM::Policy').find(([, p]) => p.Properties.Roles.some((r: any) => r.Ref === role))!;
    const invokes = policy.Properties.PolicyDocument.Statement.filter((s: any) => asList(s.Action).some((a: string) => a.startsWith('lambda:')));
    assert.deepEqual(invokes, [{ Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: { 'Fn::GetAtt': [worker, 'Arn'] } }]);
  });

  it('keeps state in an on-demand table with PITR, TTL, encryption and deletion protection', () => {
    const [[, table]] = resourcesOf(t, 'AWS::DynamoDB::Table');
    assert.equal(table.DeletionPolicy, 'Retain');
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
      AttributeDefinitions: ['pk', 'sk', 'day', 'requested_at', 'review_pending', 'reported_at', 'live'].map((AttributeName) => ({ AttributeName, AttributeType: 'S' })),
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expires_ttl', Enabled: true },
      DeletionProtectionEnabled: true,
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: Match.anyValue() },
    });
  });

  it('indexes requests by day (App Home, weekly digest, audit export) and pending reviews (App Home, reconcile run), all attributes projected, and live items (reconcile run) keys only, all sparse', () => {
    const [[, table]] = resourcesOf(t, 'AWS::DynamoDB::Table');
    const gsi = (name: string, hash: string, range: string, projection: 'ALL' | 'KEYS_ONLY') => ({
      IndexName: name,
      KeySchema: [{ AttributeName: hash, KeyType: 'HASH' }, { AttributeName: range, KeyType: 'RANGE' }],
      Projection: { ProjectionType: projection },
    });
    // On demand: no throughput of their own. Exactly these three, and no local index.
    assert.deepEqual(table.Properties.GlobalSecondaryIndexes, [
      gsi('by_day', 'day', 'requested_at', 'ALL'),
      gsi('reviews_pending', 'review_pending', 'reported_at', 'ALL'),
      gsi('live', 'live', 'pk', 'KEYS_ONLY'),
    ]);
    assert.equal(table.Properties.LocalSecondaryIndexes, undefined);
    // The live items' index, as the reconciler queries it: kind, then the item's key, and nothing else projected.
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      GlobalSecondaryIndexes: Match.arrayWith([{
        IndexName: 'live',
        KeySchema: [{ AttributeName: 'live', KeyType: 'HASH' }, { AttributeName: 'pk', KeyType: 'RANGE' }],
        Projection: Match.objectEquals({ ProjectionType: 'KEYS_ONLY' }),
      }]),
      AttributeDefinitions: Match.arrayWith([{ AttributeName: 'live', AttributeType: 'S' }]),
    });
  });

  it('says in the TableName output that the audit export reads the table through by_day, with the operator\'s credentials', () => {
    const [[table]] = resourcesOf(t, 'AWS::DynamoDB::Table');
    const output = t.toJSON().Outputs.TableName;
    assert.deepEqual(output.Value, { Ref: table });
    assert.match(output.Description, /break-glass audit export reads it through its by_day index, with the operator's own credentials/);
    assert.equal(t.toJSON().Outputs.AuditExportIndex, undefined);
  });

  it('encrypts the table, the secret, every log group, both environments and the dead-letter queue with its own rotated, retained key', () => {
    const keyArn = dataKeyOf(t);
    const [keyId] = keyArn['Fn::GetAtt'];
    assert.deepEqual(keyArn, { 'Fn::GetAtt': [keyId, 'Arn'] });
    const key = (t.toJSON().Resources as Resources)[keyId];
    assert.equal(key.Type, 'AWS::KMS::Key');
    assert.equal(key.DeletionPolicy, 'Retain');
    assert.equal(key.Properties.EnableKeyRotation, true);
    assert.match(key.Properties.Description, /^break-glass: /);

    const secrets = resourcesOf(t, 'AWS::SecretsManager::Secret');
    assert.equal(secrets.length, 2, 'Slack, on-call');
    for (const [id, secret] of secrets) assert.deepEqual(secret.Properties.KmsKeyId, keyArn, id);
    const logGroups = resourcesOf(t, 'AWS::Logs::LogGroup');
    assert.equal(logGroups.length, 4, 'webhook, worker, state machine, API access logs');
    for (const [id, lg] of logGroups) assert.deepEqual(lg.Properties.KmsKeyId, keyArn, id);
    for (const role of ['webhook', 'worker']) assert.deepEqual(fnOf(t, role)[1].Properties.KmsKeyArn, keyArn, role);
    assert.deepEqual(resourcesOf(t, 'AWS::SQS::Queue')[0][1].Properties.KmsMasterKeyId, keyArn);
    // The alarm topic keeps its own key (CloudWatch may use that one, and only that one).
    const keys = resourcesOf(t, 'AWS::KMS::Key').map(([id]) => id);
    assert.equal(keys.length, 2);
    const [[, topic]] = resourcesOf(t, 'AWS::SNS::Topic');
    assert.notDeepEqual(topic.Properties.KmsMasterKeyId, keyArn);
    assert.ok(keys.includes(topic.Properties.KmsMasterKeyId['Fn::GetAtt'][0]));

    // CloudWatch Logs of this region may use it, for this account's log groups only.
    const logsStatements = key.Properties.KeyPolicy.Statement.filter((s: any) => JSON.stringify(s.Principal).includes('logs.'));
    assert.equal(logsStatements.length, 1);
    assert.deepEqual(logsStatements[0].Principal, { Service: { 'Fn::Join': ['', ['logs.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } });
    assert.deepEqual(logsStatements[0].Condition, { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': { 'Fn::Join': ['', [
      'arn:', { Ref: 'AWS::Partition' }, ':logs:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':log-group:*',
    ]] } } });
    assert.equal(t.toJSON().Outputs.KmsKeyArn.Value['Fn::GetAtt'][0], keyId);
  });

  it('lets both functions use the key (environment, secret, table), without wildcard actions', () => {
    const keyArn = dataKeyOf(t);
    for (const role of ['webhook', 'worker']) {
      const statements = statementsOf(t, roleOf(t, role));
      assert.deepEqual(actionsOf(statements, 'kms:'), ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'], role);
      for (const s of statements.filter((s) => asList(s.Action).some((a) => a.startsWith('kms:')))) assert.deepEqual(s.Resource, keyArn, role);
    }
  });

  it('dead-letters the worker\'s asynchronous invocations to an encrypted, TLS-only queue, and alarms on any message in it', () => {
    const queues = resourcesOf(t, 'AWS::SQS::Queue');
    assert.equal(queues.length, 1);
    const [[queueId, queue]] = queues;
    assert.equal(queue.Properties.MessageRetentionPeriod, 14 * 24 * 3600);
    assert.deepEqual(queue.Properties.KmsMasterKeyId, dataKeyOf(t));
    const queueArn = { 'Fn::GetAtt': [queueId, 'Arn'] };
    assert.deepEqual(fnOf(t, 'worker')[1].Properties.DeadLetterConfig, { TargetArn: queueArn });
    // The webhook is invoked synchronously: nothing to dead-letter.
    assert.equal(fnOf(t, 'webhook')[1].Properties.DeadLetterConfig, undefined);
    t.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queueId }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({
        Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } }, Principal: { AWS: '*' },
      })]) },
    });
    assert.deepEqual(resourcesFor(statementsOf(t, roleOf(t, 'worker')), 'sqs:SendMessage'), [queueArn]);
    assert.deepEqual(resourcesFor(statementsOf(t, roleOf(t, 'webhook')), 'sqs:SendMessage'), []);

    const [[topicId]] = resourcesOf(t, 'AWS::SNS::Topic');
    const alarms = resourcesOf(t, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties).filter((a) => a.Namespace === 'AWS/SQS');
    assert.equal(alarms.length, 1);
    const [alarm] = alarms;
    assert.equal(alarm.MetricName, 'ApproximateNumberOfMessagesVisible');
    assert.deepEqual(alarm.Dimensions, [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }]);
    assert.deepEqual([alarm.Statistic, alarm.Threshold, alarm.ComparisonOperator], ['Maximum', 1, 'GreaterThanOrEqualToThreshold']);
    assert.deepEqual(alarm.AlarmActions, [{ Ref: topicId }]);
    assert.match(alarm.AlarmDescription, /scheduled reconcile or weekly digest could not be delivered or failed every retry: run it by hand/);
    assert.ok(alarm.AlarmDescription.includes('{"type":"reconcile"} or {"type":"digest"}'), alarm.AlarmDescription);
  });

  it('creates the Slack secret with a generated placeholder and ships the policy as a layer', () => {
    const [, secret] = secretOf(t, 'SlackSecret');
    assert.equal(secret.DeletionPolicy, 'Retain');
    assert.equal(secret.Properties.GenerateSecretString.GenerateStringKey, 'signing_secrets');
    assert.equal(secret.Properties.SecretString, undefined);
    t.hasResourceProperties('AWS::Lambda::LayerVersion', { CompatibleRuntimes: ['provided.al2023'], CompatibleArchitectures: ['arm64'] });
  });

  it('alarms to an encrypted SNS topic, with the e-mail subscription', () => {
    const topic = resourcesOf(t, 'AWS::SNS::Topic')[0][0];
    t.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    t.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com', TopicArn: { Ref: topic } });
    const alarms = resourcesOf(t, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    assert.deepEqual(alarms.map((a) => `${a.Namespace}/${a.MetricName}`).sort(), [
      'AWS/Lambda/Errors', 'AWS/Lambda/Errors', 'AWS/Lambda/Throttles', 'AWS/SQS/ApproximateNumberOfMessagesVisible',
      'AWS/States/ExecutionsFailed', 'AWS/States/ExecutionsTimedOut',
      'BreakGlass/ReconcileFailures', 'BreakGlass/ReconcilerRevocations', 'BreakGlass/ReviewEscalations', 'BreakGlass/RevokeFailures',
    ]);
    for (const a of alarms) {
      assert.deepEqual(a.AlarmActions, [{ Ref: topic }]);
      assert.equal(a.Threshold, 1);
      assert.equal(a.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
      // Counts are summed; the dead-letter queue's depth is a level, so its maximum.
      assert.equal(a.Statistic, a.Namespace === 'AWS/SQS' ? 'Maximum' : 'Sum', `${a.Namespace}/${a.MetricName}`);
    }
    const workerLogs = resourcesOf(t, 'AWS::Lambda::Function').find(([, f]) => f.Properties.Environment.Variables.APP_ROLE === 'worker')![1].Properties.LoggingConfig.LogGroup;
    t.hasResourceProperties('AWS::Logs::MetricFilter', {
      LogGroupName: workerLogs,
      FilterPattern: '{ $.fields.message = "revoke failed" }',
      MetricTransformations: [{ MetricNamespace: 'BreakGlass', MetricName: 'RevokeFailures', MetricValue: '1' }],
    });
    // The reconciler's two alarms: any "reconcile failed" or "reconciler revoked" line in a period.
    for (const [message, metric] of [['reconcile failed', 'ReconcileFailures'], ['reconciler revoked', 'ReconcilerRevocations']]) {
      t.hasResourceProperties('AWS::Logs::MetricFilter', {
        LogGroupName: workerLogs,
        FilterPattern: `{ $.fields.message = "${message}" }`,
        MetricTransformations: [{ MetricNamespace: 'BreakGlass', MetricName: metric, MetricValue: '1' }],
      });
      const [alarm] = alarms.filter((a) => a.MetricName === metric);
      assert.deepEqual([alarm.Threshold, alarm.EvaluationPeriods, alarm.TreatMissingData], [1, 1, 'notBreaching']);
    }
    assert.deepEqual(Object.keys(t.findResources('AWS::CloudWatch::Alarm')).filter((id) => /^Reconcile/.test(id)).map((id) => id.replace(/[0-9A-F]{8}$/, '')).sort(), [
      'ReconcileFailuresAlarm', 'ReconcilerRevocationsAlarm',
    ]);
    // A review left pending for twice the policy's time: the reconcile run logs "review escalated".
    t.hasResourceProperties('AWS::Logs::MetricFilter', {
      LogGroupName: workerLogs,
      FilterPattern: '{ $.fields.message = "review escalated" }',
      MetricTransformations: [{ MetricNamespace: 'BreakGlass', MetricName: 'ReviewEscalations', MetricValue: '1' }],
    });
    const escalations = Object.entries(t.findResources('AWS::CloudWatch::Alarm')).filter(([, a]) => a.Properties.MetricName === 'ReviewEscalations');
    assert.deepEqual(escalations.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')), ['ReviewEscalationsAlarm']);
    const [[, escalation]] = escalations;
    assert.deepEqual([escalation.Properties.Namespace, escalation.Properties.Threshold, escalation.Properties.EvaluationPeriods, escalation.Properties.TreatMissingData],
      ['BreakGlass', 1, 1, 'notBreaching']);
    assert.match(escalation.Properties.AlarmDescription, /unreviewed for twice the policy's review time: see the review channel and the escalation message/);
  });

  it('runs the reconciler hourly: the worker with {"type":"reconcile"}, retried, stale runs dropped', () => {
    const worker = logicalId(t, 'AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ APP_ROLE: 'worker' }) } });
    const rules = resourcesOf(t, 'AWS::Events::Rule');
    // The reconciler's and the weekly digest's, nothing else.
    assert.deepEqual(rules.map(([, r]) => JSON.parse(r.Properties.Targets[0].Input).type).sort(), ['digest', 'reconcile']);
    const [[ruleId, rule]] = rules.filter(([, r]) => JSON.parse(r.Properties.Targets[0].Input).type === 'reconcile');
    assert.equal(rule.Properties.ScheduleExpression, 'rate(1 hour)');
    assert.equal(rule.Properties.State, 'ENABLED');
    assert.equal(rule.Properties.Targets.length, 1);
    const [target] = rule.Properties.Targets;
    assert.deepEqual(target.Arn, { 'Fn::GetAtt': [worker, 'Arn'] });
    assert.deepEqual(JSON.parse(target.Input), { type: 'reconcile' });
    assert.deepEqual(target.RetryPolicy, { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 });
    t.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [worker, 'Arn'] },
      Principal: 'events.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [ruleId, 'Arn'] },
    });
    assert.deepEqual(t.toJSON().Outputs.ReconcileSchedule, { Value: 'rate(1 hour)', Description: 'When the reconciler runs (-c reconcileSchedule=…)' });
  });

  it('posts the weekly digest on Mondays at 09:00 UTC: the worker with {"type":"digest"}, retried and dead-lettered like the reconcile', () => {
    const worker = logicalId(t, 'AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ APP_ROLE: 'worker' }) } });
    const rules = resourcesOf(t, 'AWS::Events::Rule');
    const typeOf = (r: Resources[string]) => JSON.parse(r.Properties.Targets[0].Input).type;
    const digests = rules.filter(([, r]) => typeOf(r) === 'digest');
    assert.equal(digests.length, 1);
    const [[ruleId, rule]] = digests;
    const [[, reconcile]] = rules.filter(([, r]) => typeOf(r) === 'reconcile');
    assert.match(ruleId, /^Digest/);
    assert.equal(rule.Properties.ScheduleExpression, 'cron(0 9 ? * MON *)');
    assert.equal(rule.Properties.State, 'ENABLED');
    assert.match(rule.Properties.Description, /weekly review digest \(worker payload \{"type":"digest"\}\)/);
    assert.equal(rule.Properties.Targets.length, 1);
    const [target] = rule.Properties.Targets;
    assert.deepEqual(target.Arn, { 'Fn::GetAtt': [worker, 'Arn'] });
    // Exactly this constant input: nothing from the event.
    assert.deepEqual(JSON.parse(target.Input), { type: 'digest' });
    assert.equal(target.InputPath, undefined);
    assert.equal(target.InputTransformer, undefined);
    // The same retries as the reconcile, and the same dead-letter queue: the worker's own (no target queue of its own).
    assert.deepEqual(target.RetryPolicy, { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 });
    assert.deepEqual(target.RetryPolicy, reconcile.Properties.Targets[0].RetryPolicy);
    assert.equal(target.DeadLetterConfig, undefined);
    assert.equal(reconcile.Properties.Targets[0].DeadLetterConfig, undefined);
    const [[queueId]] = resourcesOf(t, 'AWS::SQS::Queue');
    assert.deepEqual(fnOf(t, 'worker')[1].Properties.DeadLetterConfig, { TargetArn: { 'Fn::GetAtt': [queueId, 'Arn'] } });
    t.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [worker, 'Arn'] },
      Principal: 'events.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [ruleId, 'Arn'] },
    });
    assert.deepEqual(t.toJSON().Outputs.DigestSchedule, {
      Value: 'cron(0 9 ? * MON *)',
      Description: 'When the weekly review digest is posted to the review channel (-c digestSchedule=…)',
    });
  });

  it('tells the worker the state machine\'s ARN from its fixed name, without depending on it', () => {
    const [[smId, sm]] = resourcesOf(t, 'AWS::StepFunctions::StateMachine');
    assert.equal(sm.Properties.StateMachineName, 'BreakGlassStack');
    const env = (role: string) => resourcesOf(t, 'AWS::Lambda::Function').map(([, r]) => r.Properties.Environment.Variables).find((v) => v.APP_ROLE === role);
    assert.deepEqual(env('worker').STATE_MACHINE_ARN, { 'Fn::Join': ['', [
      'arn:', { Ref: 'AWS::Partition' }, ':states:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':stateMachine:BreakGlassStack',
    ]] });
    assert.deepEqual(env('webhook').STATE_MACHINE_ARN, { Ref: smId });
  });

  it('has no dependency cycle between its resources', () => {
    const resources = t.toJSON().Resources as Resources;
    const refs = (node: unknown, out: Set<string>): Set<string> => {
      if (Array.isArray(node)) node.forEach((n) => refs(n, out));
      else if (node && typeof node === 'object') {
        for (const [k, v] of Object.entries(node)) {
          if (k === 'Ref' && typeof v === 'string' && v in resources) out.add(v);
          else if (k === 'Fn::GetAtt' && Array.isArray(v) && v[0] in resources) out.add(v[0]);
          else if (k === 'Fn::Sub') for (const m of JSON.stringify(v).matchAll(/\$\{([A-Za-z0-9]+)[.}]/g)) { if (m[1] in resources) out.add(m[1]); }
          else refs(v, out);
        }
      }
      return out;
    };
    const deps = new Map(Object.entries(resources as Record<string, any>).map(([id, r]) => [id, new Set([...refs(r.Properties, new Set()), ...[r.DependsOn ?? []].flat()])]));
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (id: string, path: string[]) => {
      if (state.get(id) === 'done') return;
      assert.notEqual(state.get(id), 'visiting', `dependency cycle: ${[...path, id].join(' -> ')}`);
      state.set(id, 'visiting');
      for (const d of deps.get(id) ?? []) visit(d, [...path, id]);
      state.set(id, 'done');
    };
    for (const id of deps.keys()) visit(id, []);
    const worker = logicalId(t, 'AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ APP_ROLE: 'worker' }) } });
    const [[smId]] = resourcesOf(t, 'AWS::StepFunctions::StateMachine');
    assert.ok(deps.get(smId)!.has(worker), 'the state machine refers to the worker');
  });

  it('lets the reconciler describe only this state machine\'s executions, and query the live index instead of scanning the table', () => {
    const describes = iamStatements(t).filter((s) => asList(s.Action).some((a) => a === 'states:DescribeExecution' || a === 'states:*'));
    assert.equal(describes.length, 1);
    assert.equal(describes[0].Sid, 'ReconcileReadsExecutions');
    assert.deepEqual(asList(describes[0].Action), ['states:DescribeExecution']);
    assert.deepEqual(describes[0].Resource, { 'Fn::Join': ['', [
      'arn:', { Ref: 'AWS::Partition' }, ':states:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':execution:BreakGlassStack:*',
    ]] });
    const workerRole = resourcesOf(t, 'AWS::Lambda::Function').find(([, f]) => f.Properties.Environment.Variables.APP_ROLE === 'worker')![1].Properties.Role['Fn::GetAtt'][0];
    const workerStatements = resourcesOf(t, 'AWS::IAM::Policy')
      .filter(([, p]) => p.Properties.Roles.some((r: any) => r.Ref === workerRole))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
    assert.ok(workerStatements.some((s: any) => s.Sid === 'ReconcileReadsExecutions'));
    const [[table]] = resourcesOf(t, 'AWS::DynamoDB::Table');
    // The live index by its own ARN, Query only, in the worker's default policy.
    const liveIndex = { 'Fn::Join': ['', [{ 'Fn::GetAtt': [table, 'Arn'] }, '/index/live']] };
    const onLive = workerStatements.filter((s: any) => JSON.stringify(s.Resource).includes('/index/live'));
    assert.deepEqual(onLive, [{ Action: 'dynamodb:Query', Effect: 'Allow', Resource: liveIndex }]);
    t.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: workerRole }],
      PolicyDocument: { Statement: Match.arrayWith([{ Action: 'dynamodb:Query', Effect: 'Allow', Resource: liveIndex }]) },
    });
    // Only the worker queries it: the webhook has no business with leases it does not hold.
    assert.deepEqual(statementsOf(t, roleOf(t, 'webhook')).filter((s) => JSON.stringify(s.Resource).includes('/index/live')), []);
    assert.deepEqual(workerStatements.filter((s: any) => asList(s.Action).includes('dynamodb:Scan')), []);
  });

  it('gives each function exactly the DynamoDB and Step Functions actions it calls, and no more', () => {
    // Spelled out, not imported from the stack: this is what src/aws/store.rs and src/aws/sfn.rs call.
    const expected: Record<string, { dynamodb: string[]; states: string[] }> = {
      // GetItem; PutItem (refusals' audit entries); TransactWriteItems of Put and Update items;
      // Query (both indexes, for the App Home).
      // SendTaskSuccess and SendTaskFailure: an approval granted or refused.
      webhook: {
        dynamodb: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
        states: ['states:SendTaskFailure', 'states:SendTaskSuccess', 'states:StartExecution'],
      },
      // Also DeleteItem (leases, creation intents) and Query (by_day for the App Home and the
      // weekly digest; the pending-review and live indexes in the reconcile run). No Scan.
      worker: {
        dynamodb: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
        states: ['states:DescribeExecution', 'states:SendTaskSuccess'],
      },
    };
    const [[table]] = resourcesOf(t, 'AWS::DynamoDB::Table');
    const tableArn = { 'Fn::GetAtt': [table, 'Arn'] };
    const indexArn = (name: string) => ({ 'Fn::Join': ['', [tableArn, `/index/${name}`]] });
    // The only call on an index is Query, one statement per index, named: the webhook's App Home
    // reads by_day (live access) and reviews_pending (reviews waiting); the worker reads by_day
    // (Home refresh after a grant, the weekly digest), reviews_pending and live (the reconcile
    // run). Nothing gets <table>/index/*.
    const query = (index: string) => [['dynamodb:Query'], [indexArn(index)]];
    const onIndexes: Record<string, unknown[]> = {
      webhook: [query('by_day'), query('reviews_pending')],
      worker: [query('by_day'), query('reviews_pending'), query('live')],
    };
    const byIndex = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));
    for (const [role, want] of Object.entries(expected)) {
      const statements = statementsOf(t, roleOf(t, role));
      assert.deepEqual(actionsOf(statements, 'dynamodb:'), want.dynamodb, role);
      assert.deepEqual(actionsOf(statements, 'states:'), want.states, role);
      const dynamo = statements.filter((s) => asList(s.Action).some((a) => a.startsWith('dynamodb:')));
      const [items, indexes] = [dynamo.filter((s) => !asList(s.Action).includes('dynamodb:Query')), dynamo.filter((s) => asList(s.Action).includes('dynamodb:Query'))];
      for (const s of items) assert.deepEqual(asList(s.Resource), [tableArn], role);
      assert.deepEqual(indexes.map((s) => [asList(s.Action), asList(s.Resource)]).sort(byIndex), [...onIndexes[role]].sort(byIndex), role);
    }
    // No index wildcard anywhere, and no index but these three named.
    assert.doesNotMatch(JSON.stringify(iamStatements(t)), /index\/\*/);
    assert.deepEqual([...new Set(JSON.stringify(iamStatements(t)).match(/\/index\/[^"]*/g))].sort(), ['/index/by_day', '/index/live', '/index/reviews_pending']);
    // The webhook never deletes: not through its own statements, nor a shared policy, nor a wildcard.
    for (const s of statementsOf(t, roleOf(t, 'webhook'))) {
      assert.ok(!asList(s.Action).some((a) => a === 'dynamodb:DeleteItem' || a === 'dynamodb:*' || a === '*'), JSON.stringify(s));
    }
    // Only the webhook sends task failures (an approval refused); nothing sends heartbeats.
    assert.ok(!iamStatements(t).some((s) => asList(s.Action).includes('states:SendTaskHeartbeat')));
    assert.deepEqual(actionsOf(statementsOf(t, roleOf(t, 'worker')), 'states:SendTaskFailure'), []);
  });

  it('lets the worker change inline policies and provision only the permission sets of end_sessions rules', () => {
    const END = ['sso:GetInlinePolicyForPermissionSet', 'sso:PutInlinePolicyToPermissionSet', 'sso:DeleteInlinePolicyFromPermissionSet', 'sso:ProvisionPermissionSet', 'sso:DescribePermissionSetProvisioningStatus'];
    const withEnd = iamStatements(t).filter((s) => asList(s.Action).some((a) => END.includes(a) || a === 'sso:*'));
    assert.deepEqual(Object.fromEntries(withEnd.map((s) => [s.Sid, [asList(s.Action).sort(), s.Resource]])), {
      EndSessionsInlinePolicy: [
        ['sso:DeleteInlinePolicyFromPermissionSet', 'sso:GetInlinePolicyForPermissionSet', 'sso:PutInlinePolicyToPermissionSet'],
        [INSTANCE_ARN, PS_ONCALL],
      ],
      EndSessionsProvision: [['sso:ProvisionPermissionSet'], [INSTANCE_ARN, PS_ONCALL, 'arn:aws:sso:::account/111111111111', 'arn:aws:sso:::account/222222222222']],
      EndSessionsProvisioningStatus: [['sso:DescribePermissionSetProvisioningStatus'], INSTANCE_ARN],
    });
    assert.doesNotMatch(JSON.stringify(withEnd), new RegExp(PS_DBA));
    // Only the worker, through a policy of its own; and no iam:* for it.
    const workerRole = resourcesOf(t, 'AWS::Lambda::Function').find(([, f]) => f.Properties.Environment.Variables.APP_ROLE === 'worker')![1].Properties.Role['Fn::GetAtt'][0];
    const [[, policy]] = resourcesOf(t, 'AWS::IAM::Policy').filter(([, p]) => p.Properties.PolicyDocument.Statement.some((s: any) => s.Sid === 'EndSessionsProvision'));
    assert.deepEqual(policy.Properties.Roles, [{ Ref: workerRole }]);
    assert.ok(!iamStatements(t).some((s) => asList(s.Action).some((a) => a.startsWith('iam:'))));
  });


  it('never allows account assignment on Resource "*", nor any wildcard action', () => {
    for (const tpl of [t, built.memberTemplate]) {
      for (const s of iamStatements(tpl)) {
        const actions = asList(s.Action);
        assert.ok(!actions.some((a) => a === '*' || a.endsWith(':*')), `wildcard action in ${JSON.stringify(s)}`);
        if (actions.some((a) => /^sso:(Create|Delete)AccountAssignment$/.test(a))) {
          assert.ok(!asList(s.Resource as string).includes('*'), `assignment on "*": ${JSON.stringify(s)}`);
        }
      }
    }
  });

  it('derives the worker\'s assignment and report-reader resources from exactly the policy\'s allow rules', () => {
    const byId = (sid: string) => iamStatements(t).filter((s) => s.Sid === sid);
    const [assign] = byId('AccountAssignmentsFromPolicy');
    assert.deepEqual(assign.Resource, [
      INSTANCE_ARN, PS_ONCALL, PS_DBA, 'arn:aws:sso:::account/111111111111', 'arn:aws:sso:::account/222222222222',
    ]);
    // Granting only: revoking and listing are RemoveAndListAnyAssignment's.
    assert.deepEqual(asList(assign.Action).sort(), ['sso:CreateAccountAssignment', 'sso:DescribeAccountAssignmentCreationStatus']);
    assert.deepEqual(byId('ReadCloudTrailInTargetAccounts')[0].Resource, [
      'arn:aws:iam::111111111111:role/break-glass-report-reader', 'arn:aws:iam::222222222222:role/break-glass-report-reader',
    ]);
    // The deny rule's account reaches no IAM statement.
    assert.doesNotMatch(JSON.stringify(t.toJSON()), /333333333333/);
  });

  it('bounds granting by the policy, while revoking and listing reach any account and permission set of the instance', () => {
    const anywhere = [INSTANCE_ARN, 'arn:aws:sso:::permissionSet/ssoins-aaaabbbbccccdddd/*', 'arn:aws:sso:::account/*'];
    const narrowed = synth(deployContext({ policyFile: path.join(FIXTURES, 'policy-narrowed.toml') }));
    const cases: Array<[string, Template, string[]]> = [
      ['fixture', t, [INSTANCE_ARN, PS_ONCALL, PS_DBA, 'arn:aws:sso:::account/111111111111', 'arn:aws:sso:::account/222222222222']],
      // Narrowed to one account and one permission set: leases granted in 222222222222 or with
      // the dba permission set under the fixture policy can still be revoked.
      ['narrowed', narrowed.template, [INSTANCE_ARN, PS_ONCALL, 'arn:aws:sso:::account/111111111111']],
    ];
    for (const [name, tpl, granted] of cases) {
      const worker = statementsOf(tpl, roleOf(tpl, 'worker'));
      for (const a of ['sso:CreateAccountAssignment', 'sso:DescribeAccountAssignmentCreationStatus']) {
        assert.deepEqual(resourcesFor(worker, a), granted, `${name}: ${a}`);
      }
      // The reconciler lists a held user's assignments across the organization, too.
      const removeAndListActions = ['sso:DeleteAccountAssignment', 'sso:DescribeAccountAssignmentDeletionStatus', 'sso:ListAccountAssignments', 'sso:ListAccountAssignmentsForPrincipal'];
      for (const a of removeAndListActions) {
        assert.deepEqual(resourcesFor(worker, a), anywhere, `${name}: ${a}`);
      }
      const [removeAndList] = iamStatements(tpl).filter((s) => s.Sid === 'RemoveAndListAnyAssignment');
      assert.deepEqual(asList(removeAndList.Action).sort(), removeAndListActions);
      // The webhook neither grants nor revokes.
      assert.deepEqual(actionsOf(statementsOf(tpl, roleOf(tpl, 'webhook')), 'sso:').filter((a) => /AccountAssignment/.test(a)), [], name);
    }
    assert.deepEqual(nagViolations(narrowed.app), []);
  });

  it('lets both functions look up Identity Center users, groups and permission set names, read-only', () => {
    const [[, read]] = resourcesOf(t, 'AWS::IAM::Policy').filter(([, p]) => p.Properties.PolicyDocument.Statement.some((s: any) => s.Sid === 'ResolveIdentityCenterUsers'));
    const roleOf = (appRole: string) => resourcesOf(t, 'AWS::Lambda::Function').find(([, f]) => f.Properties.Environment.Variables.APP_ROLE === appRole)![1].Properties.Role['Fn::GetAtt'][0];
    assert.deepEqual(read.Properties.Roles.map((r: any) => r.Ref).sort(), [roleOf('webhook'), roleOf('worker')].sort());
    const [ids, names] = read.Properties.PolicyDocument.Statement;
    assert.deepEqual(asList(ids.Action).sort(), ['identitystore:DescribeUser', 'identitystore:GetGroupId', 'identitystore:GetUserId', 'identitystore:IsMemberInGroups']);
    assert.deepEqual(ids.Resource, [
      { 'Fn::Join': ['', ['arn:aws:identitystore::', { Ref: 'AWS::AccountId' }, ':identitystore/d-9067abcdef']] },
      'arn:aws:identitystore:::user/*', 'arn:aws:identitystore:::group/*', 'arn:aws:identitystore:::membership/*',
    ]);
    assert.deepEqual(asList(names.Action).sort(), ['sso:DescribePermissionSet', 'sso:ListPermissionSets']);
    assert.deepEqual(names.Resource, [INSTANCE_ARN, 'arn:aws:sso:::permissionSet/ssoins-aaaabbbbccccdddd/*']);
    // Only the worker lists an approver group's members (to ask each directly).
    const [[, groups]] = resourcesOf(t, 'AWS::IAM::Policy').filter(([, p]) => p.Properties.PolicyDocument.Statement.some((s: any) => s.Sid === 'ListApproverGroupMembers'));
    assert.deepEqual(groups.Properties.Roles.map((r: any) => r.Ref), [roleOf('worker')]);
    const [members] = groups.Properties.PolicyDocument.Statement;
    assert.deepEqual(members.Action, 'identitystore:ListGroupMemberships');
    assert.deepEqual(members.Resource, [
      { 'Fn::Join': ['', ['arn:aws:identitystore::', { Ref: 'AWS::AccountId' }, ':identitystore/d-9067abcdef']] },
      'arn:aws:identitystore:::group/*', 'arn:aws:identitystore:::membership/*',
    ]);
    assert.deepEqual(resourcesFor(statementsOf(t, roleOf('webhook')), 'identitystore:ListGroupMemberships'), []);
  });

  it('lets the worker send the report from the sender identity and answer task callbacks', () => {
    const byId = (sid: string) => iamStatements(t).filter((s) => s.Sid === sid);
    const [ses] = byId('SendReport');
    assert.match(JSON.stringify(ses.Resource), /identity\/break-glass@security\.example\.com".*identity\/security\.example\.com"/);
    const callbacks = iamStatements(t).filter((s) => asList(s.Action).includes('states:SendTaskSuccess'));
    assert.equal(callbacks.length, 1);
    assert.deepEqual(callbacks[0].Action, 'states:SendTaskSuccess');
    assert.deepEqual(callbacks[0].Resource, { Ref: resourcesOf(t, 'AWS::StepFunctions::StateMachine')[0][0] });
    assert.deepEqual(resourcesFor(statementsOf(t, roleOf(t, 'worker')), 'states:SendTaskSuccess'), [{ Ref: resourcesOf(t, 'AWS::StepFunctions::StateMachine')[0][0] }]);
    // The worker never refuses an approval: only the webhook fails a waiting task.
    assert.deepEqual(resourcesFor(statementsOf(t, roleOf(t, 'worker')), 'states:SendTaskFailure'), []);
  });

  it('lets the webhook complete a waiting approval, SendTaskSuccess and SendTaskFailure on this state machine only, and nothing broader', () => {
    const stateMachine = { Ref: resourcesOf(t, 'AWS::StepFunctions::StateMachine')[0][0] };
    const webhook = statementsOf(t, roleOf(t, 'webhook'));
    for (const action of ['states:SendTaskSuccess', 'states:SendTaskFailure']) {
      assert.deepEqual(resourcesFor(webhook, action), [stateMachine], action);
    }
    // Every Step Functions action it has, named: no states:*, no SendTask*, no heartbeat.
    assert.deepEqual(actionsOf(webhook, 'states:'), ['states:SendTaskFailure', 'states:SendTaskSuccess', 'states:StartExecution']);
    for (const s of webhook) {
      assert.ok(!asList(s.Action).some((a) => a === '*' || a === 'states:*' || (a.startsWith('states:') && a.includes('*'))), JSON.stringify(s));
    }
    assert.ok(!iamStatements(t).some((s) => asList(s.Action).includes('states:SendTaskHeartbeat')));
    // The refusal is a policy of the webhook's alone.
    const refusals = resourcesOf(t, 'AWS::IAM::Policy').filter(([, p]) => p.Properties.PolicyDocument.Statement.some((s: any) => asList(s.Action).includes('states:SendTaskFailure')));
    assert.equal(refusals.length, 1);
    assert.deepEqual(refusals[0][1].Properties.Roles, [{ Ref: roleOf(t, 'webhook') }]);
    assert.deepEqual(refusals[0][1].Properties.PolicyDocument.Statement, [{ Action: 'states:SendTaskFailure', Effect: 'Allow', Resource: stateMachine }]);
  });

  it('creates the on-call secret with an empty placeholder, encrypted with the stack\'s key, retained, and an output to fill it', () => {
    const [id, secret] = secretOf(t, 'OncallSecret');
    assert.equal(secret.DeletionPolicy, 'Retain');
    assert.equal(secret.Properties.SecretString, '{}');
    assert.equal(secret.Properties.GenerateSecretString, undefined);
    assert.deepEqual(secret.Properties.KmsKeyId, dataKeyOf(t));
    assert.match(secret.Properties.Description, /"pagerduty": \{"token": "...", "from": "someone@example.com"\}, "opsgenie": \{"token": "..."\}/);
    const output = t.toJSON().Outputs.OncallSecretArn;
    assert.deepEqual(output.Value, { Ref: id });
    assert.match(output.Description, /"pagerduty".*"opsgenie"/);
  });

  it('lets both functions read exactly the on-call secret, with GetSecretValue only, and nothing else read it', () => {
    const [oncall] = secretOf(t, 'OncallSecret');
    const [slack] = secretOf(t, 'SlackSecret');
    for (const role of ['webhook', 'worker']) {
      const statements = statementsOf(t, roleOf(t, role));
      const onOncall = statements.filter((s) => JSON.stringify(s.Resource).includes(`"${oncall}"`));
      assert.deepEqual(onOncall, [{ Sid: 'ReadOncallTokens', Action: 'secretsmanager:GetSecretValue', Effect: 'Allow', Resource: { Ref: oncall } }], role);
      // Exactly the two secrets, each by its own ARN: no secretsmanager:* and no "*" resource.
      assert.deepEqual(resourcesFor(statements, 'secretsmanager:GetSecretValue').sort(byJson), [{ Ref: slack }, { Ref: oncall }].sort(byJson), role);
      for (const s of statements.filter((s) => asList(s.Action).some((a) => a.startsWith('secretsmanager:')))) {
        assert.ok(!asList(s.Action).some((a) => a.includes('*')), JSON.stringify(s));
        assert.ok(!asList(s.Resource).includes('*'), JSON.stringify(s));
      }
    }
    // No other role (the state machine's, CDK's helpers) names it.
    const readers = iamStatements(t).filter((s) => JSON.stringify(s.Resource).includes(`"${oncall}"`));
    assert.equal(readers.length, 2);
  });

  it('invokes only the worker, with lambda:invoke or its waitForTaskToken form, from every Task state of the ASL', () => {
    // Robust to states being added: whatever the definition's Task states are, none needs IAM
    // beyond lambda:InvokeFunction on the worker (the state machine role's only invoke).
    const tasks: Array<[string, any]> = [];
    const walk = (states: Record<string, any>) => {
      for (const [name, state] of Object.entries(states)) {
        if (state.Type === 'Task') tasks.push([name, state]);
        for (const branch of state.Branches ?? []) walk(branch.States);
        const items = state.ItemProcessor ?? state.Iterator;
        if (items) walk(items.States);
      }
    };
    walk(JSON.parse(fs.readFileSync(ASL_FILE, 'utf8')).States);
    assert.ok(tasks.length > 0);
    for (const [name, task] of tasks) {
      assert.match(task.Resource, /^arn:aws:states:::lambda:invoke(\.waitForTaskToken)?$/, name);
      assert.equal((task.Parameters ?? task.Arguments).FunctionName, '${WorkerFunctionArn}', name);
    }
  });

  it('tells the webhook how long to keep the organization\'s accounts, and the worker the reconciler\'s budget, pairs per run and pace, by default', () => {
    const [, worker] = fnOf(t, 'worker');
    // The budget is the worker's timeout less five minutes: 600 of the 900 seconds.
    assert.equal(worker.Properties.Timeout, 900);
    assert.equal(worker.Properties.Environment.Variables.RECONCILE_BUDGET_SECONDS, String(worker.Properties.Timeout - 300));
    t.hasResourceProperties('AWS::Lambda::Function', {
      Timeout: 900,
      Environment: { Variables: Match.objectLike({ APP_ROLE: 'worker', RECONCILE_BUDGET_SECONDS: '600', RECONCILE_PAIRS_PER_RUN: '2000', IDENTITY_CENTER_CALLS_PER_SECOND: '10' }) },
    });
    t.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ APP_ROLE: 'webhook', ACCOUNTS_CACHE_SECONDS: '300' }) } });
    // Each to the function that reads it.
    const webhookVars = fnOf(t, 'webhook')[1].Properties.Environment.Variables;
    for (const k of ['RECONCILE_BUDGET_SECONDS', 'RECONCILE_PAIRS_PER_RUN', 'IDENTITY_CENTER_CALLS_PER_SECOND']) assert.equal(webhookVars[k], undefined, k);
    assert.equal(worker.Properties.Environment.Variables.ACCOUNTS_CACHE_SECONDS, undefined);
  });

  it('lets the webhook list the organization\'s accounts (the modal\'s type-ahead), on "*" in a policy of its own, and no other Organizations action', () => {
    const listAccounts = { Sid: 'ListOrganizationAccounts', Action: 'organizations:ListAccounts', Effect: 'Allow', Resource: '*' };
    // ListAccounts has no resource-level permissions: "*", alone in its policy, the webhook's only.
    t.hasResourceProperties('AWS::IAM::Policy', { Roles: [{ Ref: roleOf(t, 'webhook') }], PolicyDocument: { Statement: [listAccounts] } });
    assert.deepEqual(iamStatements(t).filter((s) => asList(s.Action).some((a) => a.startsWith('organizations:'))), [listAccounts]);
    assert.deepEqual(actionsOf(statementsOf(t, roleOf(t, 'webhook')), 'organizations:'), ['organizations:ListAccounts']);
    assert.deepEqual(actionsOf(statementsOf(t, roleOf(t, 'worker')), 'organizations:'), []);
  });

  it('lets nobody scan the table, or anything else: no dynamodb:Scan, dynamodb:* or "*" in any policy', () => {
    const variants = [
      built,
      synth(deployContext({ listOrganizationAccounts: 'false' })),
      synth(deployContext({ policyFile: path.join(FIXTURES, 'policy-wildcard.toml') })),
      synth(deployContext({ kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab' })),
    ];
    for (const [i, v] of variants.entries()) {
      for (const tpl of [v.template, v.memberTemplate]) {
        const statements = everyStatement(tpl);
        assert.ok(statements.length > 0, `variant ${i}`);
        for (const s of statements) {
          assert.equal(s.NotAction, undefined, `NotAction covers Scan: ${JSON.stringify(s)}`);
          const actions = asList(s.Action as string | string[]);
          for (const a of ['dynamodb:Scan', 'dynamodb:*', '*']) assert.ok(!actions.includes(a), `variant ${i}: ${a} in ${JSON.stringify(s)}`);
          assert.ok(!actions.some((a) => covers(a, 'dynamodb:Scan')), `variant ${i}: an action that covers dynamodb:Scan in ${JSON.stringify(s)}`);
        }
      }
    }
    assert.ok(covers('dynamodb:sc*', 'dynamodb:Scan') && covers('*', 'dynamodb:Scan') && !covers('dynamodb:Query', 'dynamodb:Scan'), 'the matcher itself');
  });

  it('passes cdk-nag AwsSolutions with no unacknowledged error or warning', () => {
    const report = new AwsSolutionsChecks(built.app).validateScope(built.app);
    assert.deepEqual(report.violations.map((v) => `${v.ruleName} ${v.violatingResources.map((r) => r.constructPath).join(' ')}`), []);
  });
});

describe('main stack options', () => {
  it('takes reserved concurrency and API throttling from the context', () => {
    const built = synth(deployContext({ webhookReservedConcurrency: '3', workerReservedConcurrency: '7', apiRateLimit: '5', apiBurstLimit: '9' }));
    assert.equal(fnOf(built.template, 'webhook')[1].Properties.ReservedConcurrentExecutions, 3);
    assert.equal(fnOf(built.template, 'worker')[1].Properties.ReservedConcurrentExecutions, 7);
    built.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', { DefaultRouteSettings: { ThrottlingBurstLimit: 9, ThrottlingRateLimit: 5 } });
  });

  it('refuses to synthesize with malformed limits', () => {
    assert.throws(() => synth(deployContext({ workerReservedConcurrency: '0' })), /workerReservedConcurrency must be a whole number between 1 and 1000, got "0"/);
    assert.throws(() => synth(deployContext({ apiRateLimit: '150' })), /apiBurstLimit \(100\) must be at least apiRateLimit \(150\)/);
  });

  it('uses the key given with -c kmsKeyArn=… instead of creating one, and still passes cdk-nag', () => {
    const arn = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const built = synth(deployContext({ kmsKeyArn: arn }));
    const t = built.template;
    // Only the alarm topic's key is created.
    assert.deepEqual(resourcesOf(t, 'AWS::KMS::Key').map(([, k]) => k.Properties.Description), ['break-glass alarm topic']);
    assert.equal(dataKeyOf(t), arn);
    for (const [id, secret] of resourcesOf(t, 'AWS::SecretsManager::Secret')) assert.equal(secret.Properties.KmsKeyId, arn, id);
    for (const [id, lg] of resourcesOf(t, 'AWS::Logs::LogGroup')) assert.equal(lg.Properties.KmsKeyId, arn, id);
    for (const role of ['webhook', 'worker']) {
      assert.equal(fnOf(t, role)[1].Properties.KmsKeyArn, arn, role);
      assert.deepEqual(resourcesFor(statementsOf(t, roleOf(t, role)), 'kms:Decrypt').filter((r) => r !== arn), [], role);
      assert.ok(resourcesFor(statementsOf(t, roleOf(t, role)), 'kms:Encrypt').includes(arn), role);
    }
    assert.equal(resourcesOf(t, 'AWS::SQS::Queue')[0][1].Properties.KmsMasterKeyId, arn);
    assert.equal(t.toJSON().Outputs.KmsKeyArn.Value, arn);
    assert.deepEqual(nagViolations(built.app), []);
  });

  it('passes the on-call API URLs and cache time to both functions only when given', () => {
    const onCallEnv = (tpl: Template) => Object.fromEntries(['webhook', 'worker'].map((role) => {
      const vars = fnOf(tpl, role)[1].Properties.Environment.Variables;
      return [role, Object.fromEntries(['PAGERDUTY_API_URL', 'OPSGENIE_API_URL', 'ONCALL_CACHE_SECONDS'].filter((k) => k in vars).map((k) => [k, vars[k]]))];
    }));
    assert.deepEqual(onCallEnv(synth(deployContext()).template), { webhook: {}, worker: {} });
    const given = {
      PAGERDUTY_API_URL: 'https://api.eu.pagerduty.com',
      OPSGENIE_API_URL: 'https://api.eu.opsgenie.com',
      ONCALL_CACHE_SECONDS: '0',
    };
    const built = synth(deployContext({ pagerdutyApiUrl: 'https://api.eu.pagerduty.com', opsgenieApiUrl: 'https://api.eu.opsgenie.com/', oncallCacheSeconds: '0' }));
    assert.deepEqual(onCallEnv(built.template), { webhook: given, worker: given });
    assert.deepEqual(onCallEnv(synth(deployContext({ opsgenieApiUrl: 'https://api.eu.opsgenie.com' })).template), {
      webhook: { OPSGENIE_API_URL: 'https://api.eu.opsgenie.com' },
      worker: { OPSGENIE_API_URL: 'https://api.eu.opsgenie.com' },
    });
    assert.deepEqual(nagViolations(built.app), []);
  });

  it('refuses to synthesize with an on-call API URL that is not https://, or a cache time outside 0-300', () => {
    assert.throws(() => synth(deployContext({ opsgenieApiUrl: 'http://api.eu.opsgenie.com' })), /opsgenieApiUrl must be an https:\/\/ URL.*"http:\/\/api\.eu\.opsgenie\.com": it must start with https:\/\//);
    assert.throws(() => synth(deployContext({ pagerdutyApiUrl: 'api.pagerduty.com' })), /pagerdutyApiUrl must be an https:\/\/ URL/);
    assert.throws(() => synth(deployContext({ oncallCacheSeconds: '301' })), /oncallCacheSeconds must be whole seconds between 0 and 300, got "301"/);
  });

  it('takes the accounts cache time, the reconciler\'s pairs per run and its pace from the context', () => {
    const built = synth(deployContext({ accountsCacheSeconds: '0', reconcilePairsPerRun: '100000', identityCenterCallsPerSecond: '2.5' }));
    built.template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ APP_ROLE: 'webhook', ACCOUNTS_CACHE_SECONDS: '0' }) } });
    built.template.hasResourceProperties('AWS::Lambda::Function', {
      // The budget follows the timeout, not the context.
      Environment: { Variables: Match.objectLike({ APP_ROLE: 'worker', RECONCILE_BUDGET_SECONDS: '600', RECONCILE_PAIRS_PER_RUN: '100000', IDENTITY_CENTER_CALLS_PER_SECOND: '2.5' }) },
    });
    const other = synth(deployContext({ accountsCacheSeconds: '3600', reconcilePairsPerRun: '1', identityCenterCallsPerSecond: '50' })).template;
    assert.equal(fnOf(other, 'webhook')[1].Properties.Environment.Variables.ACCOUNTS_CACHE_SECONDS, '3600');
    assert.equal(fnOf(other, 'worker')[1].Properties.Environment.Variables.RECONCILE_PAIRS_PER_RUN, '1');
    assert.equal(fnOf(other, 'worker')[1].Properties.Environment.Variables.IDENTITY_CENTER_CALLS_PER_SECOND, '50');
  });

  it('leaves organizations:ListAccounts out with -c listOrganizationAccounts=false, and still passes cdk-nag', () => {
    const built = synth(deployContext({ listOrganizationAccounts: 'false' }));
    const t = built.template;
    assert.deepEqual(iamStatements(t).filter((s) => asList(s.Action).some((a) => a.startsWith('organizations:'))), []);
    assert.doesNotMatch(JSON.stringify(t.toJSON()), /organizations:/);
    assert.deepEqual(Object.keys(t.findResources('AWS::IAM::Policy')).filter((id) => id.startsWith('WebhookListAccounts')), []);
    // The rest of the webhook's IAM is as by default.
    const withList = synth(deployContext({ listOrganizationAccounts: 'true' })).template;
    assert.deepEqual(
      iamStatements(t),
      iamStatements(withList).filter((s) => s.Sid !== 'ListOrganizationAccounts'),
    );
    assert.deepEqual(iamStatements(withList), iamStatements(synth(deployContext()).template), 'true is the default');
    assert.deepEqual(nagViolations(built.app), []);
  });

  it('refuses to synthesize with a malformed listOrganizationAccounts, accountsCacheSeconds, reconcilePairsPerRun or identityCenterCallsPerSecond, naming it', () => {
    assert.throws(() => synth(deployContext({ listOrganizationAccounts: 'no' })), /listOrganizationAccounts must be true or false, got "no"/);
    assert.throws(() => synth(deployContext({ accountsCacheSeconds: '3601' })), /accountsCacheSeconds must be whole seconds between 0 and 3600, got "3601"/);
    assert.throws(() => synth(deployContext({ reconcilePairsPerRun: '0' })), /reconcilePairsPerRun must be a whole number between 1 and 100000, got "0"/);
    assert.throws(() => synth(deployContext({ identityCenterCallsPerSecond: '0' })), /identityCenterCallsPerSecond must be a number greater than 0 and at most 50, got "0"/);
  });

  it('creates the SES sender identity only when asked to', () => {
    synth(deployContext()).template.resourceCountIs('AWS::SES::EmailIdentity', 0);
    const built = synth(deployContext({ createSenderIdentity: 'true' }));
    built.template.hasResourceProperties('AWS::SES::EmailIdentity', { EmailIdentity: 'break-glass@security.example.com' });
    assert.deepEqual(new AwsSolutionsChecks(built.app).validateScope(built.app).violations, []);
  });
});

describe('main stack over a policy with "*"', () => {
  it('widens only to the instance\'s permission sets and to accounts, and still passes cdk-nag', () => {
    const built = synth(deployContext({ policyFile: path.join(FIXTURES, 'policy-wildcard.toml') }));
    const [assign] = iamStatements(built.template).filter((s) => s.Sid === 'AccountAssignmentsFromPolicy');
    assert.deepEqual(assign.Resource, [INSTANCE_ARN, 'arn:aws:sso:::permissionSet/ssoins-aaaabbbbccccdddd/*', 'arn:aws:sso:::account/*']);
    assert.deepEqual(asList(assign.Action).sort(), ['sso:CreateAccountAssignment', 'sso:DescribeAccountAssignmentCreationStatus']);
    const [reader] = iamStatements(built.template).filter((s) => s.Sid === 'ReadCloudTrailInTargetAccounts');
    assert.equal(reader.Resource, 'arn:aws:iam::*:role/break-glass-report-reader');
    const report = new AwsSolutionsChecks(built.app).validateScope(built.app);
    assert.deepEqual(report.violations.map((v) => v.ruleName), []);
  });

  it('grants no inline-policy or provisioning action when no rule has end_sessions', () => {
    const built = synth(deployContext({ policyFile: path.join(FIXTURES, 'policy-wildcard.toml') }));
    const json = JSON.stringify(built.template.toJSON());
    for (const a of ['InlinePolicy', 'ProvisionPermissionSet', 'PermissionSetProvisioningStatus']) assert.doesNotMatch(json, new RegExp(a));
  });

  it('widens ending sessions only for the rules that opt in with "*" or names, and still passes cdk-nag', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bg-policy-')), 'policy.toml');
    fs.writeFileSync(file, `version = 1
[[rule]]
name = "admins-anywhere"
effect = "allow"
sso_groups = ["oncall"]
accounts = ["*"]
permission_sets = ["AdministratorAccess"]
default_duration = "1h"
max_duration = "1h"
end_sessions = true
`);
    const built = synth(deployContext({ policyFile: file }));
    const bySid = (sid: string) => iamStatements(built.template).find((s) => s.Sid === sid)!;
    assert.deepEqual(bySid('EndSessionsInlinePolicy').Resource, [INSTANCE_ARN, 'arn:aws:sso:::permissionSet/ssoins-aaaabbbbccccdddd/*']);
    assert.deepEqual(bySid('EndSessionsProvision').Resource, [INSTANCE_ARN, 'arn:aws:sso:::permissionSet/ssoins-aaaabbbbccccdddd/*', 'arn:aws:sso:::account/*']);
    const report = new AwsSolutionsChecks(built.app).validateScope(built.app);
    assert.deepEqual(report.violations.map((v) => v.ruleName), []);
  });
});

describe('main stack over a policy with [review]', () => {
  const file = path.join(FIXTURES, 'policy-review.toml');
  /** Why this binary cannot read [review] (it predates it), or undefined when it can. */
  const predatesReview = (): string | undefined => {
    try {
      readPolicyScope(file);
      return undefined;
    } catch (e) {
      if (/unknown field `review`/.test((e as Error).message)) return `the break-glass binary predates [review]: rebuild it (cargo build). ${(e as Error).message}`;
      throw e;
    }
  };

  it('synthesizes, with exactly the IAM of the same policy without it, and passes cdk-nag', (ctx) => {
    const stale = predatesReview();
    if (stale !== undefined) return ctx.skip(stale);
    const built = synth(deployContext({ policyFile: file }));
    // Reviews are Slack messages and table updates: nothing in the section reaches IAM.
    assert.deepEqual(iamStatements(built.template), iamStatements(synth(deployContext()).template));
    assert.doesNotMatch(JSON.stringify(built.template.toJSON()), /C0REVIEWS01|security-reviewers/);
    assert.deepEqual(nagViolations(built.app), []);
  });
});

describe('reconcile schedule', () => {
  it('takes its expression from -c reconcileSchedule=…', () => {
    const built = synth(deployContext({ reconcileSchedule: 'cron(0/15 * * * ? *)' }));
    built.template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'cron(0/15 * * * ? *)' });
  });

  it('refuses to synthesize with a malformed one', () => {
    assert.throws(() => synth(deployContext({ reconcileSchedule: 'hourly' })), /reconcileSchedule must be an EventBridge schedule expression.*"hourly"/);
    assert.throws(() => synth(deployContext({ reconcileSchedule: 'rate(1 hours)' })), /reconcileSchedule.*write "1 hour"/);
  });
});

describe('digest schedule', () => {
  it('takes its expression from -c digestSchedule=…, apart from the reconciler\'s', () => {
    const built = synth(deployContext({ digestSchedule: 'cron(30 7 ? * FRI *)' }));
    const byType = Object.fromEntries(resourcesOf(built.template, 'AWS::Events::Rule').map(([, r]) => [JSON.parse(r.Properties.Targets[0].Input).type, r.Properties.ScheduleExpression]));
    assert.deepEqual(byType, { digest: 'cron(30 7 ? * FRI *)', reconcile: 'rate(1 hour)' });
    assert.equal(built.template.toJSON().Outputs.DigestSchedule.Value, 'cron(30 7 ? * FRI *)');
  });

  it('refuses to synthesize with a malformed one', () => {
    assert.throws(() => synth(deployContext({ digestSchedule: 'mondays' })), /digestSchedule must be an EventBridge schedule expression.*"mondays"/);
    assert.throws(() => synth(deployContext({ digestSchedule: 'cron(0 9 * * MON *)' })), /digestSchedule.*exactly one of day-of-month and day-of-week/);
  });
});

describe('checkov skips', () => {
  /** `Type(APP_ROLE or logical id) CHECK` for every skip in a template's resource metadata, as checkov reads it. */
  const skipsOf = (t: Template) => Object.entries(t.toJSON().Resources as Resources).flatMap(([id, r]: [string, any]) => {
    const who = r.Properties?.Environment?.Variables?.APP_ROLE ?? id;
    assert.equal(r.Metadata?.bridgecrew, undefined, `${id}: skips go under Metadata.checkov`);
    return (r.Metadata?.checkov?.skip ?? []).map((s: { id: string; comment: unknown }) => {
      assert.equal(typeof s.comment, 'string', `${id} ${s.id}: a comment`);
      assert.ok((s.comment as string).trim().length > 0, `${id} ${s.id}: a non-empty comment`);
      return `${r.Type}(${who}) ${s.id}`;
    });
  });

  it('skips exactly these checks, on these resources, each with its reason', () => {
    for (const ctx of [deployContext(), deployContext({ kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab' })]) {
      const built = synth(ctx);
      assert.deepEqual(skipsOf(built.template).sort(), [
        'AWS::Lambda::Function(webhook) CKV_AWS_116', // DLQ: invoked synchronously by API Gateway
        'AWS::Lambda::Function(webhook) CKV_AWS_117', // VPC
        'AWS::Lambda::Function(worker) CKV_AWS_117', // VPC
      ]);
      assert.deepEqual(skipsOf(built.memberTemplate), []);
    }
  });

  it('refuses a skip without a reason, and keeps earlier skips of the same resource', () => {
    const stack = new Stack(new App(), 'S');
    const queue = new sqs.Queue(stack, 'Q');
    assert.throws(() => skipCheckov(queue, 'CKV_AWS_27', ' '), /give the reason/);
    assert.throws(() => skipCheckov(queue, 'AwsSolutions-SQS3', 'why'), /not a checkov check id/);
    skipCheckov(queue, 'CKV_AWS_27', 'one');
    skipCheckov(queue, 'CKV2_AWS_73', 'two');
    const [q] = Object.values(Template.fromStack(stack).findResources('AWS::SQS::Queue'));
    assert.deepEqual(q.Metadata, {
      checkov: { skip: [{ id: 'CKV_AWS_27', comment: 'one' }, { id: 'CKV2_AWS_73', comment: 'two' }] },
    });
  });
});

describe('member stack', () => {
  it('creates only a LookupEvents role trusted by exactly the worker role', () => {
    const workerRoleArn = 'arn:aws:iam::999999999999:role/BreakGlassStack-WorkerRole-ABC';
    const m = synth(deployContext({ workerRoleArn })).memberTemplate;
    assert.deepEqual(Object.values(m.toJSON().Resources as Resources).map((r) => r.Type), ['AWS::IAM::Role']);
    const json = m.toJSON();
    assert.equal(json.Parameters.WorkerRoleArn.Default, workerRoleArn);
    assert.equal(json.Parameters.BootstrapVersion, undefined, 'deployable as a StackSet without CDK bootstrap');
    assert.equal(json.Rules, undefined);
    m.hasResourceProperties('AWS::IAM::Role', {
      RoleName: 'break-glass-report-reader',
      AssumeRolePolicyDocument: { Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { AWS: { Ref: 'WorkerRoleArn' } } }] },
      Policies: [{ PolicyDocument: { Statement: [{ Action: 'cloudtrail:LookupEvents', Effect: 'Allow', Resource: '*' }] } }],
    });
  });
});

describe('build output', () => {
  it('refuses to synthesize for deployment without a built bootstrap', () => {
    assert.throws(() => synth(deployContext({ assetDir: path.join(FIXTURES, 'no-such-build') })), /bootstrap: run `make build`/);
  });

  it('runs the functions on the architecture the binary was built for', () => {
    const elf = (machine: number) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'break-glass-test-elf-'));
      const header = Buffer.alloc(64);
      Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(header);
      header.writeUInt16LE(machine, 18);
      fs.writeFileSync(path.join(dir, 'bootstrap'), header);
      return dir;
    };
    const archs = (assetDir: string) => resourcesOf(synth(deployContext({ assetDir })).template, 'AWS::Lambda::Function').map(([, f]) => f.Properties.Architectures);
    assert.deepEqual(archs(elf(0xb7)), [['arm64'], ['arm64']]); // EM_AARCH64
    assert.deepEqual(archs(elf(0x3e)), [['x86_64'], ['x86_64']]); // EM_X86_64: make build's fallback
  });

  it('synthesizes with example values and a placeholder binary when there is no build', () => {
    const built = synth({ example: 'true', assetDir: path.join(FIXTURES, 'no-such-build'), policyFile: path.join(FIXTURES, 'policy.toml'), ssoInstanceArn: INSTANCE_ARN });
    built.template.resourceCountIs('AWS::Lambda::Function', 2);
  });
});
