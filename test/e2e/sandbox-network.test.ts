// The sandbox node as a network citizen (issue 11), end to end with real kubectl: ClusterIP
// Services programmed into the node's nftables table, egress masqueraded through an uplink (a
// network namespace this test creates stands for the world outside), and nothing of ours left on
// the machine once the node stops. Needs root, nftables and the sandbox's host packages.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { before, test } from 'node:test';
import type { Pod } from '../../src/kube/types.ts';
import { createLogger } from '../../src/log.ts';
import { SandboxProvider } from '../../src/providers/sandbox/sandbox-provider.ts';
import type { PodRecordState } from '../../src/providers/sandbox/state.ts';
import { run } from '../../src/util/command.ts';
import type { VirtualKubelet } from '../../src/virtual-kubelet.ts';
import { buildBusyboxImage } from '../fixtures/registry/image-builder.ts';
import { startTestRegistry } from '../fixtures/registry/registry.ts';
import { adminClient, fileScope, kubectl, newNamespace, randomName, waitFor } from '../harness/cluster.ts';
import { sandboxSkip } from '../harness/sandbox-host.ts';
import { tempDir } from '../harness/temp.ts';
import { createTestHost, testHostsSupported, type TestHost } from '../harness/test-host.ts';
import { startNodeFor } from '../harness/virtual-node.ts';

const call = { signal: new AbortController().signal };
const scope = fileScope();
const skip: string | false = sandboxSkip || (testHostsSupported() ?? false);
let image = '';
let nodeName = '';
let provider: SandboxProvider;
let vk: VirtualKubelet;
let outside: TestHost;
let dataDir = '';
/** Host ends of the veth pairs of the pods this file ran (vk + the /30's address in hex). */
const podLinks = new Set<string>();
/** The outside namespace's server: answers each TCP connection with the address it came from. */
const ECHO_PORT = 8089;

before(async () => {
  if (skip) return;
  const registry = await startTestRegistry();
  scope.after(() => registry.stop());
  image = (await registry.pushImage('library/busybox', await buildBusyboxImage(), { tag: '1.36' })).reference;
  outside = await createTestHost(scope);
  await startEchoServer(outside);
  dataDir = tempDir(scope, 'vk-sandbox-net-');
  nodeName = randomName('vk-sbx-net');
  const log = createLogger(process.env.VK_TEST_LOG_LEVEL ?? 'warn');
  const client = await adminClient();
  provider = await SandboxProvider.open(
    { dataDir, network: { egressInterfaces: [outside.hostLink] } },
    { nodeName, nodeIP: '127.0.0.1', log, kube: client, clusterDomain: 'cluster.local' },
  );
  vk = await startNodeFor(provider, nodeName, { kubeletApi: true, log });
  scope.after(() => stopNode());
});

let stopped: Promise<void> | undefined;
/** Deletes every pod, then stops the node and the provider (which removes the node's table). */
function stopNode(): Promise<void> {
  stopped ??= (async () => {
    for (const pod of await provider.listPods(call)) await provider.deletePod(pod, { ...call, reason: 'deleted' }).catch(() => undefined);
    await vk.stop();
  })();
  return stopped;
}

async function startEchoServer(host: TestHost): Promise<void> {
  const script = `require('net').createServer((s) => s.end(s.remoteAddress + '\\n')).listen(${ECHO_PORT}, '${host.address}', () => console.log('listening'))`;
  const child = spawn('ip', ['netns', 'exec', host.namespace, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  scope.after(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => line === 'listening' && resolve());
    child.once('exit', (code) => reject(new Error(`echo server in ${host.namespace} exited ${code}`)));
  });
}

async function apply(namespace: string, manifest: unknown): Promise<void> {
  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(manifest) });
}

function podSpec(containers: unknown[]): Record<string, unknown> {
  return { nodeName, automountServiceAccountToken: false, tolerations: [{ operator: 'Exists' }], terminationGracePeriodSeconds: 1, containers };
}

const httpd = (port: number, containerPort: Record<string, unknown> = {}) => ({
  name: 'web',
  image,
  command: ['sh', '-c', `mkdir -p /www && hostname > /www/index.html && exec httpd -f -p ${port} -h /www`],
  ports: [{ containerPort: port, ...containerPort }],
});

async function runPod(namespace: string, name: string, containers: unknown[], labels: Record<string, string> = {}): Promise<Pod> {
  await apply(namespace, { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels }, spec: podSpec(containers) });
  const pod = await waitFor(`pod ${name} running`, async () => {
    const r = await kubectl(['-n', namespace, 'get', 'pod', name, '-o', 'json'], { allowFailure: true });
    const pod = r.code === 0 ? (JSON.parse(r.stdout) as Pod) : undefined;
    return pod?.status?.phase === 'Running' && pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? pod : undefined;
  });
  recordLink(pod);
  return pod;
}

function recordLink(pod: Pod): void {
  const ip = pod.status?.podIP;
  if (!ip) return;
  const n = ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0) - 2;
  podLinks.add(`vk${n.toString(16).padStart(8, '0')}`);
}

async function service(namespace: string, name: string, spec: Record<string, unknown>): Promise<string> {
  await apply(namespace, { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec });
  const r = await kubectl(['-n', namespace, 'get', 'service', name, '-o', 'jsonpath={.spec.clusterIP}']);
  return r.stdout;
}

async function readyEndpoints(namespace: string, serviceName: string): Promise<number> {
  const r = await kubectl(['-n', namespace, 'get', 'endpointslices', '-l', `kubernetes.io/service-name=${serviceName}`, '-o', 'json']);
  const slices = JSON.parse(r.stdout) as { items: { endpoints?: { conditions?: { ready?: boolean } }[] }[] };
  return slices.items.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready !== false).length;
}

async function execIn(namespace: string, pod: string, command: string): Promise<{ code: number; out: string }> {
  const r = await kubectl(['-n', namespace, 'exec', pod, '--', 'sh', '-c', command], { allowFailure: true });
  return { code: r.code, out: r.stdout + r.stderr };
}

test('a Deployment of 2 behind a Service, by its DNS name: both replicas answer; scaled to 0 it is refused at once', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-net');
  await apply(namespace, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web' },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: { metadata: { labels: { app: 'web' } }, spec: podSpec([httpd(80, { name: 'http' })]) },
    },
  });
  // targetPort by name: the EndpointSlice controller resolves it from each pod.
  const clusterIP = await service(namespace, 'web', { selector: { app: 'web' }, ports: [{ name: 'http', port: 8080, targetPort: 'http' }] });
  await runPod(namespace, 'client', [{ name: 'client', image, command: ['sleep', '3600'] }]);
  await waitFor('2 ready endpoints', async () => (await readyEndpoints(namespace, 'web')) === 2);
  const url = `http://web.${namespace}.svc.cluster.local:8080/`;
  const answers = await waitFor('20 requests through the Service, answered by both replicas', async () => {
    const r = await execIn(namespace, 'client', `for i in $(seq 20); do wget -qO- ${url} || exit 1; done`);
    if (r.code !== 0) return undefined;
    const names = r.out.trim().split('\n');
    assert.equal(names.length, 20);
    return new Set(names).size === 2 ? names : undefined;
  });
  assert.ok(
    answers.every((name) => name.startsWith('web-')),
    answers.join(','),
  );
  // The short name works through the search path, and the cluster IP directly.
  assert.match((await execIn(namespace, 'client', 'wget -qO- http://web:8080/')).out, /^web-/);
  assert.match((await execIn(namespace, 'client', `wget -qO- http://${clusterIP}:8080/`)).out, /^web-/);

  // A port the Service does not have is refused, not left to time out.
  const wrongPort = await execIn(namespace, 'client', `wget -qO- http://${clusterIP}:81/`);
  assert.notEqual(wrongPort.code, 0);
  assert.match(wrongPort.out, /Connection refused/);

  await kubectl(['-n', namespace, 'scale', 'deployment', 'web', '--replicas=0']);
  await waitFor('no endpoints left', async () => (await readyEndpoints(namespace, 'web')) === 0);
  let last = '';
  await waitFor('the Service refuses connections', async () => {
    // Bounded: a connection whose packets vanish would otherwise hang until kubectl gives up.
    const r = await execIn(namespace, 'client', `timeout 10 wget -qO- ${url}`);
    last = `${r.code}: ${r.out}`;
    return r.code !== 0 && /Connection refused/.test(r.out);
  }).catch((err: Error) => {
    throw new Error(`${err.message}; last wget: ${last}\n${provider.network?.lastRules}`);
  });
});

test('cluster DNS: resolv.conf as a kubelet writes it, headless Services, SRV, pod names, NXDOMAIN, dnsPolicy None', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-net');
  const a = await runPod(namespace, 'member-a', [httpd(80, { name: 'http' })], { app: 'members' });
  const b = await runPod(namespace, 'member-b', [httpd(80, { name: 'http' })], { app: 'members' });
  await service(namespace, 'members', { clusterIP: 'None', selector: { app: 'members' }, ports: [{ name: 'http', port: 80 }] });
  await runPod(namespace, 'client', [{ name: 'client', image, command: ['sleep', '3600'] }]);

  const resolv = (await execIn(namespace, 'client', 'cat /etc/resolv.conf')).out;
  assert.match(resolv, new RegExp(`^search ${namespace}\\.svc\\.cluster\\.local svc\\.cluster\\.local cluster\\.local\\b`, 'm'));
  assert.match(resolv, /^nameserver 169\.254\.20\.10$/m);
  assert.match(resolv, /^options ndots:5$/m);

  const podIPs = [a.status!.podIP!, b.status!.podIP!].sort();
  const headless = await waitFor('the headless Service resolves to both pods', async () => {
    const r = await execIn(namespace, 'client', `nslookup members.${namespace}.svc.cluster.local`);
    const found = [...r.out.matchAll(/Address: (\d+\.\d+\.\d+\.\d+)$/gm)].map((m) => m[1]!).filter((ip) => !ip.startsWith('169.254.'));
    return found.length === 2 ? found.sort() : undefined;
  });
  assert.deepEqual(headless, podIPs);
  const srv = await execIn(namespace, 'client', `nslookup -type=SRV _http._tcp.members.${namespace}.svc.cluster.local`);
  assert.equal(srv.code, 0, srv.out);
  assert.match(srv.out, /\b80\b/);
  const podName = `${a.status!.podIP!.replaceAll('.', '-')}.${namespace}.pod.cluster.local`;
  assert.match((await execIn(namespace, 'client', `nslookup ${podName}`)).out, new RegExp(`Address: ${a.status!.podIP!.replaceAll('.', '\\.')}$`, 'm'));
  const missing = await execIn(namespace, 'client', `nslookup nosuch.${namespace}.svc.cluster.local`);
  assert.notEqual(missing.code, 0);
  assert.match(missing.out, /NXDOMAIN/);

  // dnsPolicy None: exactly what the pod's dnsConfig says.
  await apply(namespace, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'custom-dns' },
    spec: {
      ...podSpec([{ name: 'c', image, command: ['sleep', '3600'] }]),
      dnsPolicy: 'None',
      dnsConfig: { nameservers: ['192.0.2.53'], searches: ['example.test'], options: [{ name: 'ndots', value: '2' }] },
    },
  });
  const custom = await waitFor('the custom-dns pod runs', async () => {
    const r = await execIn(namespace, 'custom-dns', 'cat /etc/resolv.conf');
    return r.code === 0 ? r.out : undefined;
  });
  assert.equal(custom, 'search example.test\nnameserver 192.0.2.53\noptions ndots:2\n');
});

test('a malformed DNS packet gets FORMERR and the node DNS keeps answering', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-net');
  await runPod(namespace, 'client', [{ name: 'client', image, command: ['sleep', '3600'] }]);
  // The host reaches the node DNS at the same address (nat output), so the test sends raw bytes from here.
  const socket = dgram.createSocket('udp4');
  t.after(() => socket.close());
  const reply = new Promise<Buffer>((resolve) => socket.once('message', resolve));
  // A header (id 0x1234, one question) followed by a question that ends in the middle of a label.
  socket.send(Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x61, 0x62]), 53, '169.254.20.10');
  const answer = await waitFor('an answer to the malformed query', () => Promise.race([reply, new Promise<undefined>((r) => setTimeout(r, 500, undefined))]), {
    timeoutMs: 10_000,
  });
  assert.equal(answer.readUInt16BE(0), 0x1234);
  assert.equal(answer[3]! & 0x0f, 1, 'RCODE FORMERR');
  const r = await execIn(namespace, 'client', 'nslookup kubernetes.default.svc.cluster.local');
  assert.equal(r.code, 0, r.out);
});

test(
  'a pod with a ServiceAccount bound to view lists its namespace with kubectl, through https://kubernetes.default.svc and in-cluster config',
  { skip },
  async (t) => {
    const namespace = await newNamespace(t, 'vk-net');
    await kubectl(['-n', namespace, 'create', 'serviceaccount', 'reader']);
    await kubectl(['-n', namespace, 'create', 'rolebinding', 'reader-view', '--clusterrole=view', `--serviceaccount=${namespace}:reader`]);
    // The kubectl of the local build (a dynamically linked Go binary) with the host's C library, bound read-only.
    const kubectlDir = path.dirname(realpathSync(process.env.VK_TEST_KUBECTL!));
    const hostPaths = [
      { name: 'kube', path: kubectlDir, mountPath: '/opt/kube' },
      { name: 'lib', path: '/lib', mountPath: '/lib' },
      { name: 'lib64', path: '/lib64', mountPath: '/lib64' },
    ];
    await apply(namespace, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'in-cluster' },
      spec: {
        ...podSpec([
          {
            name: 'c',
            image,
            command: ['sleep', '3600'],
            env: [{ name: 'HOME', value: '/tmp' }],
            volumeMounts: hostPaths.map((h) => ({ name: h.name, mountPath: h.mountPath, readOnly: true })),
          },
        ]),
        serviceAccountName: 'reader',
        automountServiceAccountToken: true,
        volumes: hostPaths.map((h) => ({ name: h.name, hostPath: { path: h.path } })),
      },
    });
    await waitFor('the in-cluster pod runs', async () => (await execIn(namespace, 'in-cluster', 'true')).code === 0);
    const sa = '/var/run/secrets/kubernetes.io/serviceaccount';
    const byName = await waitFor('kubectl against https://kubernetes.default.svc', async () => {
      const r = await execIn(
        namespace,
        'in-cluster',
        `/opt/kube/kubectl --server https://kubernetes.default.svc --token "$(cat ${sa}/token)" --certificate-authority ${sa}/ca.crt get pods -o name`,
      );
      return r.code === 0 ? r.out : undefined;
    });
    assert.match(byName, /^pod\/in-cluster$/m);
    // No flags: kubectl's in-cluster config (KUBERNETES_SERVICE_HOST/PORT, the mounted token, CA and namespace).
    const inCluster = await execIn(namespace, 'in-cluster', '/opt/kube/kubectl get pods -o name');
    assert.equal(inCluster.code, 0, inCluster.out);
    assert.match(inCluster.out, /^pod\/in-cluster$/m);
    // view does not allow writes: the API server, not the network, says no.
    const denied = await execIn(namespace, 'in-cluster', '/opt/kube/kubectl delete pod in-cluster');
    assert.notEqual(denied.code, 0);
    assert.match(denied.out, /forbidden/i);
  },
);

/** A test fixture (test/fixtures/<fixture>) run in a pod's network namespace, killed when the test ends. */
function inPodNetwork(t: { after: (fn: () => void) => void }, pod: Pod, fixture: string, args: string[]): ChildProcessByStdio<null, Readable, null> {
  const state = JSON.parse(readFileSync(path.join(dataDir, 'pods', pod.metadata!.uid!, 'pod.json'), 'utf8')) as PodRecordState;
  const child = spawn(
    'nsenter',
    [`--net=/proc/${state.sandbox!.pause.pid}/ns/net`, '--', process.execPath, path.join(import.meta.dirname, '../fixtures', fixture), ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => child.kill('SIGKILL'));
  return child;
}

/** The UDP DNS responder fixture in a pod's network namespace, answering every A question with `address`. */
async function startResponder(t: { after: (fn: () => void) => void }, pod: Pod, address: string): Promise<void> {
  const responder = inPodNetwork(t, pod, 'udp-dns-responder.ts', ['5353', address]);
  await new Promise<void>((resolve) => createInterface({ input: responder.stdout }).on('line', (line) => line === 'listening' && resolve()));
}

test('a UDP Service reaches its pod (a DNS responder in the pod, asked through the cluster IP)', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-net');
  const server = await runPod(namespace, 'udp-server', [{ name: 'c', image, command: ['sleep', '3600'] }], { app: 'udp-server' });
  await runPod(namespace, 'client', [{ name: 'client', image, command: ['sleep', '3600'] }]);
  // busybox has no UDP server: a small one runs in the server pod's network namespace.
  await startResponder(t, server, '192.0.2.99');
  const clusterIP = await service(namespace, 'udp', { selector: { app: 'udp-server' }, ports: [{ name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353 }] });
  await waitFor('1 ready endpoint', async () => (await readyEndpoints(namespace, 'udp')) === 1);
  const answer = await waitFor('a lookup through the UDP Service', async () => {
    const r = await execIn(namespace, 'client', `nslookup anything.example ${clusterIP}`);
    return r.code === 0 ? r.out : undefined;
  });
  assert.match(answer, /Address: 192\.0\.2\.99$/m);
});

test('a long-lived UDP flow whose endpoint goes moves to the remaining one (stale conntrack entries are deleted)', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-net');
  const answers = new Map([
    ['one', '192.0.2.1'],
    ['two', '192.0.2.2'],
  ]);
  for (const [name, address] of answers) {
    const pod = await runPod(namespace, name, [{ name: 'c', image, command: ['sleep', '3600'] }], { app: 'udp-flow' });
    await startResponder(t, pod, address);
  }
  const client = await runPod(namespace, 'client', [{ name: 'client', image, command: ['sleep', '3600'] }]);
  const clusterIP = await service(namespace, 'udp-flow', {
    selector: { app: 'udp-flow' },
    ports: [{ name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353 }],
  });
  await waitFor('2 ready endpoints', async () => (await readyEndpoints(namespace, 'udp-flow')) === 2);
  // One flow (one source port), asking 4 times a second: conntrack keeps it on the endpoint it was DNATed to first.
  const asker = inPodNetwork(t, client, 'udp-fixed-port-asker.ts', ['40053', clusterIP, '53']);
  let last: { address: string; at: number } | undefined;
  createInterface({ input: asker.stdout }).on('line', (line) => (last = { address: line.replace(/^answer /, ''), at: Date.now() }));
  const first = await waitFor('an answer through the UDP Service', async () => last?.address);
  const [gone, remaining] = [...answers].find(([, address]) => address === first)![0] === 'one' ? ['one', 'two'] : ['two', 'one'];
  await kubectl(['-n', namespace, 'delete', 'pod', gone!, '--wait=false']);
  const deletedAt = Date.now();
  // Without the deletion of its conntrack entries the flow would stay on the gone endpoint for as long as it keeps sending.
  await waitFor(
    `the flow answered by ${remaining} after ${gone} went (last answer: ${JSON.stringify(last)})`,
    async () => last !== undefined && last.at > deletedAt && last.address === answers.get(remaining!),
    { timeoutMs: 30_000 },
  );
  assert.ok(provider.network!.conntrack.flushed > 0, 'the node deleted conntrack entries');
});

test('a Service with no endpoints, and a port name no endpoint has, are refused', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-net');
  await runPod(namespace, 'server', [httpd(8080, { name: 'http' })], { app: 'server' });
  await runPod(namespace, 'client', [{ name: 'client', image, command: ['sleep', '3600'] }]);
  const nobody = await service(namespace, 'nobody', { selector: { app: 'nobody' }, ports: [{ port: 80, targetPort: 8080 }] });
  const unnamed = await service(namespace, 'wrong-name', { selector: { app: 'server' }, ports: [{ port: 80, targetPort: 'no-such-port' }] });
  const good = await service(namespace, 'good', { selector: { app: 'server' }, ports: [{ port: 80, targetPort: 8080 }] });
  await waitFor('the good Service answers', async () => (await execIn(namespace, 'client', `wget -qO- http://${good}/`)).code === 0);
  for (const ip of [nobody, unnamed]) {
    const r = await execIn(namespace, 'client', `wget -qO- http://${ip}/`);
    assert.notEqual(r.code, 0, ip);
    assert.match(r.out, /Connection refused/, ip);
  }
});

test('a pod reaches itself through its Service (hairpin)', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-net');
  await runPod(namespace, 'self', [httpd(8080)], { app: 'self' });
  const ip = await service(namespace, 'self', { selector: { app: 'self' }, ports: [{ port: 80, targetPort: 8080 }] });
  const body = await waitFor('wget of its own Service', async () => {
    const r = await execIn(namespace, 'self', `wget -qO- http://${ip}/`);
    return r.code === 0 ? r.out : undefined;
  });
  assert.equal(body, 'self\n');
});

test('egress leaves through the uplink masqueraded; the outside cannot open connections to pods', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-net');
  const pod = await runPod(namespace, 'egress', [httpd(8080)]);
  assert.equal(readFileSync(`/proc/sys/net/ipv4/conf/${outside.hostLink}/forwarding`, 'utf8').trim(), '1', 'the uplink forwards (replies to pods)');
  const seenAs = await execIn(namespace, 'egress', `nc ${outside.address} ${ECHO_PORT} </dev/null`);
  assert.equal(seenAs.code, 0, seenAs.out);
  assert.equal(seenAs.out.trim(), outside.hostAddress, 'the outside sees the host, not the pod');
  // A route to the pods from outside does not make them reachable: only replies are forwarded.
  await run(['ip', 'netns', 'exec', outside.namespace, 'ip', 'route', 'replace', '10.215.0.0/16', 'via', outside.hostAddress]);
  const inbound = await run(['ip', 'netns', 'exec', outside.namespace, 'busybox', 'nc', '-w', '2', pod.status!.podIP!, '8080'], { input: '' }).then(
    () => 'connected',
    () => 'failed',
  );
  assert.equal(inbound, 'failed');
});

test('stopping the node removes its nftables table and turns the uplink flag back off; no pod interface is left', { skip }, async () => {
  const tablesBefore = await run(['nft', 'list', 'tables']);
  assert.match(tablesBefore, new RegExp(`table ip ${provider.network!.table.name}\\b`));
  await stopNode();
  const tables = await run(['nft', 'list', 'tables']);
  assert.doesNotMatch(tables, new RegExp(provider.network!.table.name));
  assert.equal(readFileSync(`/proc/sys/net/ipv4/conf/${outside.hostLink}/forwarding`, 'utf8').trim(), '0');
  assert.ok(podLinks.size >= 4, `pods' links recorded: ${[...podLinks].join(', ')}`);
  const links = await run(['ip', '-o', 'link', 'show']);
  for (const link of podLinks) assert.doesNotMatch(links, new RegExp(`\\b${link}[@:]`), `${link} is gone`);
});
