import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cgroupPids, detectCgroups, joinScript, oomKills, parseMountinfo, parseProcCgroup, procsFiles, readUsage, removeCgroup } from './cgroups.ts';
import { containerLimits, milliCpuToQuota, milliCpuToShares, podLimits, sharesToWeight } from './cgroup-limits.ts';
import { shellQuote } from '../../util/command.ts';

test("the kubelet's conversions: shares, quota, weight", () => {
  assert.equal(milliCpuToShares(0), 2);
  assert.equal(milliCpuToShares(1), 2);
  assert.equal(milliCpuToShares(100), 102);
  assert.equal(milliCpuToShares(1000), 1024);
  assert.equal(milliCpuToQuota(0), undefined);
  assert.equal(milliCpuToQuota(100), 10_000);
  assert.equal(milliCpuToQuota(5), 1000, 'at least 1 ms per period');
  assert.equal(milliCpuToQuota(2500), 250_000);
  assert.equal(sharesToWeight(2), 1);
  assert.equal(sharesToWeight(1024), 39);
  assert.equal(sharesToWeight(262_144), 10_000);
});

test('container limits from resources: memory, CPU limit, CPU request (defaulting to the limit)', () => {
  assert.deepEqual(containerLimits({ name: 'c' }), { cpuPeriodUs: 100_000, cpuShares: 2 });
  assert.deepEqual(containerLimits({ name: 'c', resources: { limits: { memory: '32Mi', cpu: '100m' } } }), {
    memoryBytes: 32 * 1024 * 1024,
    cpuQuotaUs: 10_000,
    cpuPeriodUs: 100_000,
    cpuShares: 102,
  });
  assert.deepEqual(containerLimits({ name: 'c', resources: { requests: { cpu: '1', memory: '1G' }, limits: { cpu: '1.5' } } }), {
    cpuQuotaUs: 150_000,
    cpuPeriodUs: 100_000,
    cpuShares: 1024,
  });
  assert.deepEqual(containerLimits({ name: 'c', resources: { limits: { memory: 'bogus' } } }), { cpuPeriodUs: 100_000, cpuShares: 2 });
});

test('pod limits from pod-level resources; none without them', () => {
  assert.equal(podLimits({ spec: { containers: [{ name: 'c', resources: { limits: { memory: '1Gi' } } }] } }), undefined);
  assert.deepEqual(podLimits({ spec: { resources: { limits: { memory: '64Mi', cpu: '500m' } }, containers: [{ name: 'c' }] } }), {
    memoryBytes: 64 * 1024 * 1024,
    cpuQuotaUs: 50_000,
    cpuPeriodUs: 100_000,
    cpuShares: 512,
  });
  assert.deepEqual(podLimits({ spec: { resources: { requests: { cpu: '2' } }, containers: [{ name: 'c' }] } }), { cpuPeriodUs: 100_000, cpuShares: 2048 });
});

const MOUNTINFO_V1 = (root: string) => `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / ${root}/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /outer ${root}/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / ${root}/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / ${root}/unified rw,relatime - cgroup2 cgroup2 rw
`;
const SELF_V1 = '8:pids:/\n4:memory:/outer/svc\n2:cpu,cpuacct:/svc\n0::/\n';

test('mountinfo and /proc/self/cgroup parsing', () => {
  const mounts = parseMountinfo(MOUNTINFO_V1('/x'));
  assert.deepEqual(
    mounts.map((m) => [m.fstype, m.mountPoint, m.root, m.superOptions.join(',')]),
    [
      ['cgroup', '/x/cpu,cpuacct', '/', 'rw,cpu,cpuacct'],
      ['cgroup', '/x/memory', '/outer', 'rw,memory'],
      ['cgroup', '/x/pids', '/', 'rw,pids'],
      ['cgroup2', '/x/unified', '/', 'rw'],
    ],
  );
  assert.deepEqual(
    [...parseProcCgroup(SELF_V1)],
    [
      ['pids', '/'],
      ['memory', '/outer/svc'],
      ['cpu,cpuacct', '/svc'],
      ['', '/'],
    ],
  );
});

/** A fake hierarchy: directories and the control files a real one would show. */
function fakeLayout(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'cgroups-unit-'));
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), content);
  }
  return root;
}

test("v1 layout: nests under the provider's own cgroup of each hierarchy, writes the limits", async (t) => {
  const sub = 'vk';
  const root = fakeLayout({
    [`memory/svc/${sub}/memory.limit_in_bytes`]: '',
    [`memory/svc/${sub}/memory.memsw.limit_in_bytes`]: '',
    [`cpu,cpuacct/svc/${sub}/cpu.cfs_quota_us`]: '',
    [`cpu,cpuacct/svc/${sub}/cpu.shares`]: '',
    [`cpu,cpuacct/svc/${sub}/cpuacct.usage`]: '',
    [`pids/${sub}/pids.max`]: '',
    'unified/cgroup.controllers': '',
  });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const found = detectCgroups({ mountinfo: MOUNTINFO_V1(root), selfCgroup: SELF_V1, name: sub });
  assert.equal(found.reason, 'CgroupV1');
  assert.match(found.message, /cgroup v1: memory limits .*no swap beyond it.*CFS quota.*cpu\.shares/);
  const cg = found.cgroups!;
  // The memory mount's root is /outer: the provider's /outer/svc is <mount>/svc.
  assert.deepEqual(cg.root, {
    version: 1,
    memory: `${root}/memory/svc/${sub}`,
    cpu: `${root}/cpu,cpuacct/svc/${sub}`,
    cpuacct: `${root}/cpu,cpuacct/svc/${sub}`,
    pids: `${root}/pids/${sub}`,
  });
  const pod = cg.createPod('uid-1', 50);
  assert.equal(readFileSync(path.join(pod.pids!, 'pids.max'), 'utf8'), '50');
  const c = await cg.createContainer(pod, 'app', containerLimits({ name: 'app', resources: { limits: { memory: '32Mi', cpu: '100m' } } }));
  assert.equal(c.memory, `${root}/memory/svc/${sub}/uid-1/app`);
  const read = (dir: string, file: string) => readFileSync(path.join(dir, file), 'utf8');
  assert.equal(read(c.memory, 'memory.limit_in_bytes'), String(32 * 1024 * 1024));
  assert.equal(read(c.memory, 'memory.memsw.limit_in_bytes'), String(32 * 1024 * 1024));
  assert.equal(read(c.cpu, 'cpu.cfs_quota_us'), '10000');
  assert.equal(read(c.cpu, 'cpu.cfs_period_us'), '100000');
  assert.equal(read(c.cpu, 'cpu.shares'), '102');
  assert.deepEqual(
    procsFiles(c),
    [`${c.memory}/cgroup.procs`, `${c.cpu}/cgroup.procs`, `${c.pids}/cgroup.procs`],
    'cpu and cpuacct share a hierarchy: joined once',
  );

  writeFileSync(path.join(c.memory, 'memory.usage_in_bytes'), '10000000\n');
  writeFileSync(path.join(c.memory, 'memory.stat'), 'cache 4000\ninactive_file 1\ntotal_inactive_file 3000000\n');
  writeFileSync(path.join(c.cpu, 'cpuacct.usage'), '123456789\n');
  assert.deepEqual(readUsage(c), { memoryUsageBytes: 10_000_000, memoryWorkingSetBytes: 7_000_000, cpuNs: 123_456_789 });
  writeFileSync(path.join(c.memory, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
  assert.equal(oomKills(c), 2);
  // Pod-level resources limit the pod's cgroup.
  const limited = cg.createPod('uid-3', undefined, { memoryBytes: 64 * 1024 * 1024, cpuQuotaUs: 50_000, cpuPeriodUs: 100_000, cpuShares: 512 });
  assert.equal(read(limited.memory, 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
  assert.equal(read(limited.memory, 'memory.memsw.limit_in_bytes'), String(64 * 1024 * 1024));
  assert.equal(read(limited.cpu, 'cpu.cfs_quota_us'), '50000');
  assert.equal(read(limited.cpu, 'cpu.shares'), '512');
  assert.ok(!existsSync(path.join(pod.memory, 'memory.limit_in_bytes')), 'a pod without pod-level resources gets no limit');
});

test('v2 layout: controllers enabled down the tree; memory.max, cpu.max, cpu.weight; usage and OOM from memory.events', async (t) => {
  const root = fakeLayout({
    'unified/svc/cgroup.controllers': 'cpuset cpu io memory pids\n',
    'unified/svc/cgroup.subtree_control': '',
  });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const mountinfo = `41 31 0:38 / ${root}/unified rw,relatime - cgroup2 cgroup2 rw\n`;
  const found = detectCgroups({ mountinfo, selfCgroup: '0::/svc\n', name: 'vk' });
  assert.equal(found.reason, 'CgroupV2');
  assert.equal(readFileSync(`${root}/unified/svc/cgroup.subtree_control`, 'utf8'), '+memory +cpu +pids');
  const cg = found.cgroups!;
  assert.equal(cg.root.memory, `${root}/unified/svc/vk`);
  const pod = cg.createPod('uid-2');
  const c = await cg.createContainer(pod, 'app', containerLimits({ name: 'app', resources: { limits: { memory: '64Mi', cpu: '250m' } } }));
  assert.deepEqual(new Set([c.memory, c.cpu, c.cpuacct, c.pids]), new Set([`${root}/unified/svc/vk/uid-2/app`]));
  const read = (file: string) => readFileSync(path.join(c.memory, file), 'utf8');
  assert.equal(read('memory.max'), String(64 * 1024 * 1024));
  assert.equal(read('memory.swap.max'), '0');
  assert.equal(read('cpu.max'), '25000 100000');
  assert.equal(read('cpu.weight'), String(sharesToWeight(256)));
  assert.deepEqual(procsFiles(c), [`${c.memory}/cgroup.procs`]);
  writeFileSync(path.join(c.memory, 'memory.current'), '5000\n');
  writeFileSync(path.join(c.memory, 'memory.stat'), 'anon 4000\ninactive_file 1000\n');
  writeFileSync(path.join(c.memory, 'cpu.stat'), 'usage_usec 1500\nuser_usec 1000\n');
  writeFileSync(path.join(c.memory, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
  assert.deepEqual(readUsage(c), { memoryUsageBytes: 5000, memoryWorkingSetBytes: 4000, cpuNs: 1_500_000 });
  assert.equal(oomKills(c), 1);
  const limited = cg.createPod('uid-4', undefined, { memoryBytes: 64 * 1024 * 1024, cpuQuotaUs: 50_000, cpuPeriodUs: 100_000, cpuShares: 512 });
  assert.equal(readFileSync(path.join(limited.memory, 'memory.max'), 'utf8'), String(64 * 1024 * 1024));
  assert.equal(readFileSync(path.join(limited.memory, 'cpu.max'), 'utf8'), '50000 100000');
  assert.equal(readFileSync(path.join(limited.memory, 'cpu.weight'), 'utf8'), String(sharesToWeight(512)));
});

test('nothing usable: v2 without controllers and no v1 hierarchy is reported honestly', (t) => {
  const root = fakeLayout({ 'unified/cgroup.controllers': '\n', 'unified/cgroup.subtree_control': '' });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const found = detectCgroups({ mountinfo: `41 31 0:38 / ${root}/unified rw,relatime - cgroup2 cgroup2 rw\n`, selfCgroup: '0::/\n', name: 'vk' });
  assert.equal(found.cgroups, undefined);
  assert.equal(found.reason, 'NoCgroups');
  assert.match(found.message, /not enforced: cgroup v2: memory and cpu not available in .*; cgroup v1: no memory or cpu hierarchy; usage is read from \/proc/);
});

// --- The machine's real hierarchy, when we may write it.

const real = process.getuid?.() === 0 ? detectCgroups({ name: `vk-sandbox-unit-${process.pid}` }) : undefined;
const realSkip = !real ? 'needs root' : real.cgroups ? false : `no writable cgroups here: ${real.message}`;

function waitExit(child: ReturnType<typeof spawn>, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the process did not end in time')), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

test('real cgroups: limits are applied, a joined process is accounted, removal kills and removes', { skip: realSkip }, async (t) => {
  const cg = real!.cgroups!;
  t.after(() => removeCgroup(cg.root));
  const pod = cg.createPod(`unit-${Date.now()}`, 100);
  const c = await cg.createContainer(pod, 'app', containerLimits({ name: 'app', resources: { limits: { memory: '64Mi', cpu: '100m' } } }));
  const read = (dir: string, file: string) => readFileSync(path.join(dir, file), 'utf8').trim();
  if (c.version === 1) {
    assert.equal(read(c.memory, 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
    assert.equal(read(c.cpu, 'cpu.cfs_quota_us'), '10000');
    assert.equal(read(c.cpu, 'cpu.shares'), '102');
  } else {
    assert.equal(read(c.memory, 'memory.max'), String(64 * 1024 * 1024));
    assert.equal(read(c.cpu, 'cpu.max'), '10000 100000');
  }
  const child = spawn('/bin/sh', ['-c', `${joinScript(procsFiles(c), shellQuote)} && exec sleep 30`], { stdio: 'ignore' });
  const exited = waitExit(child, 10_000);
  const deadline = Date.now() + 5000;
  while (!cgroupPids(c.memory).includes(child.pid!) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(cgroupPids(c.memory).includes(child.pid!), "the process is in the container's cgroup");
  assert.ok(readFileSync(`/proc/${child.pid}/cgroup`, 'utf8').includes(path.basename(path.dirname(c.memory))), "/proc/<pid>/cgroup names the pod's cgroup");
  const usage = readUsage(c);
  assert.ok((usage?.memoryUsageBytes ?? 0) > 0, 'memory is charged to it');
  assert.ok(usage?.cpuNs !== undefined);
  assert.equal(await removeCgroup(pod), true);
  assert.deepEqual(await exited, { code: null, signal: 'SIGKILL' }, 'what ran in it was killed');
  assert.ok(!existsSync(pod.memory) && !existsSync(c.cpu));
});

test('real cgroups: a process past its memory limit is OOM-killed and the kill is counted', { skip: realSkip }, async (t) => {
  const cg = real!.cgroups!;
  t.after(() => removeCgroup(cg.root));
  const pod = cg.createPod(`unit-oom-${Date.now()}`);
  t.after(() => removeCgroup(pod));
  const c = await cg.createContainer(pod, 'hog', containerLimits({ name: 'hog', resources: { limits: { memory: '16Mi' } } }));
  assert.equal(oomKills(c), 0);
  const child = spawn('/bin/busybox', ['sh', '-c', `${joinScript(procsFiles(c), shellQuote)} && exec /bin/busybox sh -c 'x=a; while true; do x=$x$x; done'`], {
    stdio: 'ignore',
  });
  const result = await waitExit(child, 30_000);
  assert.deepEqual(result, { code: null, signal: 'SIGKILL' });
  assert.equal(oomKills(c), 1);
});

test("real cgroups: a container without limits past its pod's memory limit is OOM-killed, counted in the container's cgroup", { skip: realSkip }, async (t) => {
  const cg = real!.cgroups!;
  t.after(() => removeCgroup(cg.root));
  const pod = cg.createPod(
    `unit-pod-oom-${Date.now()}`,
    undefined,
    podLimits({ spec: { resources: { limits: { memory: '16Mi' } }, containers: [{ name: 'hog' }] } }),
  );
  t.after(() => removeCgroup(pod));
  const c = await cg.createContainer(pod, 'hog', containerLimits({ name: 'hog' }));
  const child = spawn('/bin/busybox', ['sh', '-c', `${joinScript(procsFiles(c), shellQuote)} && exec /bin/busybox sh -c 'x=a; while true; do x=$x$x; done'`], {
    stdio: 'ignore',
  });
  const result = await waitExit(child, 30_000);
  assert.deepEqual(result, { code: null, signal: 'SIGKILL' });
  assert.equal(oomKills(c), 1, 'the kill is counted where the sandbox looks for it (OOMKilled)');
});
