// The member-account stack: the read-only role the worker assumes to read CloudTrail in the
// account someone broke glass into. Deploy it to every account the policy can grant, best as a
// service-managed StackSet, with the main stack's WorkerRoleArn output as the parameter.
import { CfnParameter, CliCredentialsStackSynthesizer, Stack, StackProps, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { DEFAULT_REPORT_ROLE_NAME } from './config';

export interface BreakGlassMemberStackProps extends StackProps {
  /** The worker's role ARN; the default of the WorkerRoleArn parameter when given. */
  readonly workerRoleArn?: string;
  /** Must match the main stack's reportRoleName. */
  readonly reportRoleName?: string;
}

export class BreakGlassMemberStack extends Stack {
  public readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: BreakGlassMemberStackProps = {}) {
    super(scope, id, {
      // A StackSet deploys the plain template into accounts that are not CDK-bootstrapped:
      // no bootstrap version check, no assets, no CDK metadata resource.
      synthesizer: new CliCredentialsStackSynthesizer(),
      analyticsReporting: false,
      description: 'break-glass: read-only CloudTrail role for the break-glass report',
      ...props,
    });
    const workerRoleArn = new CfnParameter(this, 'WorkerRoleArn', {
      type: 'String',
      description: 'WorkerRoleArn output of the break-glass main stack: the only principal that may assume the role',
      allowedPattern: '^arn:aws[a-z-]*:iam::\\d{12}:role/.+$',
      default: props.workerRoleArn,
    });
    // Trust by exact role ARN: no account-wide trust, so no external id is needed.
    this.role = new iam.Role(this, 'ReportReader', {
      roleName: props.reportRoleName ?? DEFAULT_REPORT_ROLE_NAME,
      description: 'break-glass report: read CloudTrail events of break-glass sessions',
      assumedBy: new iam.ArnPrincipal(workerRoleArn.valueAsString),
      inlinePolicies: {
        LookupEvents: new iam.PolicyDocument({
          statements: [new iam.PolicyStatement({ actions: ['cloudtrail:LookupEvents'], resources: ['*'] })],
        }),
      },
    });
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'cloudtrail:LookupEvents does not support resource-level permissions; it is the role\'s only action.',
    });
  }
}
