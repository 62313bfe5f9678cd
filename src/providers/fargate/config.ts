// Configuration of the Fargate provider (--provider-config). Unknown fields are rejected and a bad
// value is reported in one line naming the field. Credentials are not configured here: the AWS
// SDK's default chain finds them (environment, shared config and SSO, web identity, container
// and instance metadata).
import { z } from 'zod';
import { ConfigError } from '../../errors.ts';
import { quantitySchema } from '../../kube/quantity.ts';
import { formatZodError } from '../../util/zod-error.ts';

const ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/;

const roleArn = z.string().regex(ARN, 'expected an IAM role ARN such as arn:aws:iam::123456789012:role/ecsTaskExecutionRole');

export const fargateConfigSchema = z
  .strictObject({
    /** AWS region; default $AWS_REGION, then $AWS_DEFAULT_REGION. */
    region: z
      .string()
      .min(1)
      .default(() => process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? ''),
    /** The ECS cluster the tasks run in (name or ARN). */
    cluster: z.string().min(1),
    /** awsvpc: subnets of the task ENIs (at least one), their security groups, a public IP or not. */
    subnets: z.array(z.string().regex(/^subnet-[0-9a-f]+$/, 'expected a subnet ID such as subnet-0123456789abcdef0')).min(1),
    securityGroups: z.array(z.string().regex(/^sg-[0-9a-f]+$/, 'expected a security group ID such as sg-0123456789abcdef0')).default([]),
    assignPublicIp: z.boolean().default(false),
    /** Role the ECS agent uses to pull images, write logs and read secrets (needed for logs and ecs secrets). */
    executionRoleArn: roleArn.optional(),
    /** Role the containers' AWS calls run as. */
    taskRoleArn: roleArn.optional(),
    platformVersion: z.string().min(1).default('LATEST'),
    /** Overrides the service endpoints (tests, VPC endpoints, other partitions). */
    endpoints: z.strictObject({ ecs: z.url().optional(), logs: z.url().optional() }).default({}),
    /** Container logs through the awslogs driver to CloudWatch Logs; false: no logs (and no `kubectl logs`). */
    logs: z
      .union([
        z.literal(false),
        z.strictObject({
          group: z
            .string()
            .regex(/^[.\-_/#A-Za-z0-9]{1,512}$/, 'expected a CloudWatch Logs group name')
            .default('/virtual-kubelet/fargate'),
          streamPrefix: z
            .string()
            .regex(/^[^:*]{1,200}$/, 'expected a stream prefix without : or *')
            .default('vk'),
          /** awslogs-create-group: the execution role then needs logs:CreateLogGroup. */
          createGroup: z.boolean().default(true),
        }),
      ])
      .default({ group: '/virtual-kubelet/fargate', streamPrefix: 'vk', createGroup: true }),
    /**
     * env: every resolved variable goes into the task definition's environment (visible to anyone
     * who can describe it). ecs: variables whose value is a Secrets Manager or SSM parameter ARN
     * become ECS secrets, fetched by the agent at start with the execution role.
     */
    secrets: z.enum(['env', 'ecs']).default('env'),
    /** Added to every task definition and task. */
    tags: z.record(z.string().min(1).max(128), z.string().max(256)).default({}),
    familyPrefix: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,20}$/, 'expected up to 20 letters, digits or hyphens')
      .default('vk'),
    /** How often the tasks of this node are described (one DescribeTasks per 100 tasks). */
    pollIntervalMs: z.number().int().min(10).default(5_000),
    /** Follow (`kubectl logs -f`) polls CloudWatch Logs this often. */
    logPollIntervalMs: z.number().int().min(10).default(1_000),
    /** Attempts per AWS call, the SDK's own retries with backoff included (throttling, 5xx). */
    maxAttempts: z.number().int().min(1).max(10).default(3),
    /** A task whose pod restarts (restartPolicy Always/OnFailure) runs again after this backoff, doubling. */
    restartBackoff: z.strictObject({ initialMs: z.number().int().min(0).default(10_000), maxMs: z.number().int().min(0).default(300_000) }).prefault({}),
    /** What the node advertises: Fargate has no node, so these are quotas of this virtual node. */
    capacity: z.record(z.string().min(1), quantitySchema).default({}),
    labels: z.record(z.string().min(1), z.string()).default({}),
  })
  .superRefine((config, ctx) => {
    if (!config.region) ctx.addIssue({ code: 'custom', path: ['region'], message: 'required (or set AWS_REGION)' });
    if (config.logs !== false && !config.executionRoleArn)
      ctx.addIssue({ code: 'custom', path: ['executionRoleArn'], message: 'required for the awslogs log driver (or set logs: false)' });
    if (config.secrets === 'ecs' && !config.executionRoleArn)
      ctx.addIssue({ code: 'custom', path: ['executionRoleArn'], message: 'required for secrets: ecs (the agent reads them with it)' });
  });

export type FargateConfig = z.infer<typeof fargateConfigSchema>;

export const FARGATE_DEFAULT_CAPACITY: Readonly<Record<string, string>> = { cpu: '1000', memory: '4Ti', pods: '1000', 'ephemeral-storage': '20Ti' };

export function parseFargateConfig(input: unknown): FargateConfig {
  const result = fargateConfigSchema.safeParse(input ?? {});
  if (!result.success) throw new ConfigError(`fargate provider config: ${formatZodError(result.error)}`);
  return result.data;
}
