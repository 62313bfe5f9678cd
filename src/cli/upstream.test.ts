// An upstream virtual-kubelet Deployment's container args and env, parsed by `vk run`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { fromUpstreamMockConfig } from '../providers/mock/config.ts';
import { buildProgram, runSettings } from './main.ts';
import type { NodeSettings } from './options.ts';
import { unsupportedUpstreamFlag } from './upstream.ts';

// After upstream's hack/skaffold/virtual-kubelet/pod.yml and website/data/cli.yaml (its tracing
// sidecar and flags left out: vk rejects those, see the last test), as a Deployment.
const UPSTREAM_DEPLOYMENT = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: vkubelet-mock-0}
spec:
  replicas: 1
  selector: {matchLabels: {app: vkubelet-mock-0}}
  template:
    metadata: {labels: {app: vkubelet-mock-0}}
    spec:
      serviceAccountName: virtual-kubelet
      containers:
      - name: vkubelet-mock-0
        image: virtual-kubelet
        args:
        - /virtual-kubelet
        - --nodename
        - vkubelet-mock-0
        - --provider
        - mock
        - --provider-config
        - /vkubelet-mock-0-cfg.json
        - --startup-timeout
        - 10s
        - --klog.v
        - "2"
        - --klog.logtostderr
        - --log-level
        - debug
        - --os
        - Linux
        - --pod-sync-workers=10
        - --full-resync-period=1m0s
        - --cluster-domain
        - cluster.local
        - --disable-taint=false
        - --metrics-addr=:10255
        env:
        - {name: KUBELET_PORT, value: "10250"}
        - name: VKUBELET_POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        - {name: APISERVER_CERT_LOCATION, value: /etc/virtual-kubelet/cert.pem}
        - {name: APISERVER_KEY_LOCATION, value: /etc/virtual-kubelet/key.pem}
        - {name: APISERVER_CA_CERT_LOCATION, value: /etc/virtual-kubelet/ca.pem}
        - {name: VKUBELET_TAINT_KEY, value: example.com/virtual}
        - {name: VKUBELET_TAINT_EFFECT, value: NoExecute}
`;

interface Container {
  args: string[];
  env: { name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }[];
}

/** The container's command line and env as the pod would get them (status.podIP resolved). */
function containerOf(manifest: string, podIP: string): { args: string[]; env: NodeJS.ProcessEnv } {
  const deployment = parseYaml(manifest) as { spec: { template: { spec: { containers: Container[] } } } };
  const container = deployment.spec.template.spec.containers[0]!;
  const env: NodeJS.ProcessEnv = {};
  for (const e of container.env) env[e.name] = e.value ?? (e.valueFrom?.fieldRef.fieldPath === 'status.podIP' ? podIP : undefined);
  // args[0] is upstream's binary; the image's entrypoint is `vk run`.
  return { args: container.args.slice(1), env };
}

async function settingsFor(args: string[], env: NodeJS.ProcessEnv): Promise<NodeSettings> {
  const program = buildProgram().exitOverride();
  const run = program.commands.find((c) => c.name() === 'run')!;
  // Errors as exceptions, not exits, and not printed.
  run.exitOverride().configureOutput({ writeErr: () => {} });
  let settings: NodeSettings | undefined;
  run.action((_opts, command: Command) => {
    settings = runSettings(command, env);
  });
  await program.parseAsync(['node', 'vk', 'run', ...args]);
  return settings!;
}

test("an upstream Deployment's args and env become the same settings under vk run", async () => {
  const { args, env } = containerOf(UPSTREAM_DEPLOYMENT, '10.1.2.3');
  assert.equal(unsupportedUpstreamFlag(args), undefined);
  const s = await settingsFor(args, env);
  assert.equal(s.nodeName, 'vkubelet-mock-0');
  assert.equal(s.provider, 'mock');
  assert.equal(s.providerConfig, '/vkubelet-mock-0-cfg.json');
  assert.equal(s.startupTimeout, '10s');
  assert.equal(s.logLevel, 'debug');
  assert.equal(s.os, 'linux');
  assert.equal(s.podWorkers, 10);
  assert.equal(s.resyncInterval, '1m0s');
  assert.equal(s.clusterDomain, 'cluster.local');
  assert.equal(s.metricsAddr, ':10255');
  assert.equal(s.kubeletPort, 10250);
  assert.equal(s.nodeIp, '10.1.2.3');
  assert.equal(s.kubeletTlsCertFile, '/etc/virtual-kubelet/cert.pem');
  assert.equal(s.kubeletTlsKeyFile, '/etc/virtual-kubelet/key.pem');
  assert.equal(s.kubeletClientCaFile, '/etc/virtual-kubelet/ca.pem');
  // Upstream: key and effect from the env, value the provider's name.
  assert.deepEqual(s.taints, [{ key: 'example.com/virtual', value: 'mock', effect: 'NoExecute' }]);
});

test('--disable-taint wins over the taint env; --os windows; vk spellings win over upstream ones', async () => {
  const s = await settingsFor(['--disable-taint', '--os', 'Windows', '--nodename', 'up', '--node-name', 'ours'], { VKUBELET_TAINT_KEY: 'k' });
  assert.deepEqual(s.taints, []);
  assert.equal(s.os, 'windows');
  assert.equal(s.nodeName, 'ours');
  const flagged = await settingsFor(['--label', 'a=b', '--taint', 'k=v:NoSchedule', '--nodes', '3'], { VKUBELET_TAINT_KEY: 'env' });
  assert.deepEqual(flagged.labels, { a: 'b' });
  assert.deepEqual(flagged.taints, [{ key: 'k', value: 'v', effect: 'NoSchedule' }], '--taint wins over the taint env');
  assert.equal(flagged.nodes, 3);
  const defaults = await settingsFor([], {});
  assert.equal(defaults.taints, undefined, 'without upstream taint env: the default provider taint');
  assert.equal(defaults.daemonsetPods, 'reject');
});

test('bad upstream values name the flag or variable', async () => {
  await assert.rejects(settingsFor([], { KUBELET_PORT: 'http' }), /KUBELET_PORT: not a port number/);
  await assert.rejects(settingsFor([], { VKUBELET_TAINT_EFFECT: 'Sometimes' }), /VKUBELET_TAINT_EFFECT: taint effect "Sometimes" is not supported/);
  await assert.rejects(settingsFor(['--full-resync-period', 'soon'], {}), /resyncInterval: invalid duration "soon"/);
  await assert.rejects(settingsFor(['--os', 'plan9'], {}), /--os <os>.*must be linux or windows/);
});

test("upstream's mock provider config (capacity per node name) is read for the node", () => {
  const upstream = { 'vkubelet-mock-0': { cpu: '2', memory: '32Gi', pods: '128' } };
  assert.deepEqual(fromUpstreamMockConfig(upstream, 'vkubelet-mock-0'), { capacity: { cpu: '2', memory: '32Gi', pods: '128' } });
  assert.throws(() => fromUpstreamMockConfig(upstream, 'other'), /without an entry for node other/);
  assert.deepEqual(fromUpstreamMockConfig({ capacity: { cpu: '2' } }, 'x'), { capacity: { cpu: '2' } }, 'our own format is left alone');
});

test('upstream flags vk does not support are named, with = or a separate value', () => {
  assert.match(
    unsupportedUpstreamFlag(['--nodename', 'a', '--trace-exporter', 'jaeger'])!,
    /^--trace-exporter: upstream virtual-kubelet flag not supported by vk run: tracing/,
  );
  assert.match(unsupportedUpstreamFlag(['--trace-sample-rate=always'])!, /^--trace-sample-rate: /);
  assert.match(unsupportedUpstreamFlag(['--klog.vmodule=x=2'])!, /^--klog.vmodule: upstream virtual-kubelet klog flag not supported/);
  assert.equal(unsupportedUpstreamFlag(['--', '--trace-exporter']), undefined);
});
