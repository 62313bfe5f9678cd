import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSandboxConfig } from './config.ts';
import { containerCapabilities, DEFAULT_CAPABILITIES, execCommand, HELPER_PATH, startCommand, type ContainerLaunch } from './launch.ts';
import { PodNetworks } from './network.ts';
import { parseStat } from './procfs.ts';

const tools = { nsenter: 'nsenter', bwrap: 'bwrap', script: 'script', busybox: '/bin/busybox' };

function launch(over: Partial<ContainerLaunch> = {}): ContainerLaunch {
  return {
    pausePid: 42,
    rootfs: '/data/pods/u/containers/c/0/rootfs',
    mounts: [{ source: '/data/pods/u/volumes/cfg', destination: '/etc/cfg', readOnly: true }],
    etc: { hosts: '/h', hostname: '/hn', resolv: '/r' },
    shm: '/shm',
    argv: ['sleep', '10'],
    env: ['PATH=/bin', 'A=b=c'],
    workingDir: '/work',
    uid: 0,
    gid: 0,
    capabilities: ['CAP_CHOWN'],
    readOnlyRoot: false,
    sharePid: false,
    ...over,
  };
}

test('capabilities: the default set, drop (ALL), add, privileged', () => {
  assert.deepEqual(containerCapabilities({ name: 'c' }), DEFAULT_CAPABILITIES);
  assert.deepEqual(containerCapabilities({ name: 'c', securityContext: { capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } } }), [
    'CAP_NET_BIND_SERVICE',
  ]);
  assert.ok(!(containerCapabilities({ name: 'c', securityContext: { capabilities: { drop: ['net_raw'] } } }) as string[]).includes('CAP_NET_RAW'));
  assert.equal(containerCapabilities({ name: 'c', securityContext: { privileged: true } }), 'all');
});

test('the start command joins the pod namespaces and builds the container with bwrap', () => {
  const argv = startCommand(tools, launch(), '/i.json', false);
  assert.deepEqual(argv.slice(0, 9), [
    '/bin/sh',
    '-c',
    'exec "$@" 3>/i.json 4</proc/42/ns/pid',
    'sh',
    'nsenter',
    '--ipc=/proc/42/ns/ipc',
    '--uts=/proc/42/ns/uts',
    '--net=/proc/42/ns/net',
    '--',
  ]);
  const bwrap = argv.slice(9);
  const text = bwrap.join(' ');
  assert.match(
    text,
    /^bwrap --pidns 4 --unshare-pid --info-fd 3 --bind \/data\/pods\/u\/containers\/c\/0\/rootfs \/ --proc \/proc --dev \/dev --bind \/shm \/dev\/shm/,
  );
  // The mount point's parents are made 0755 first (bwrap alone would make them 0700).
  assert.match(text, /--dir \/etc --ro-bind \/data\/pods\/u\/volumes\/cfg \/etc\/cfg/);
  assert.match(text, /--cap-drop ALL --cap-add CAP_CHOWN --new-session --clearenv --setenv PATH \/bin --setenv A b=c --chdir \/work -- sleep 10$/);
  assert.ok(!text.includes(HELPER_PATH));
});

test('runAsUser goes through the busybox helper; read-only root; shared pid namespace; exec', () => {
  const argv = startCommand(tools, launch({ uid: 1000, gid: 2000, readOnlyRoot: true, sharePid: true }), '/i.json', false).join(' ');
  assert.match(argv, new RegExp(`--ro-bind /bin/busybox ${HELPER_PATH} --remount-ro /`));
  assert.match(argv, /--cap-add CAP_SETUID --cap-add CAP_SETGID/);
  assert.match(argv, new RegExp(`-- ${HELPER_PATH} nsenter -S 1000 -G 2000 -F -- sleep 10$`));
  assert.ok(!argv.includes('--unshare-pid'));
  const exec = execCommand(tools, launch(), 777, ['cat', '/etc/hostname'], false);
  assert.equal(exec[2], 'exec "$@" 4</proc/777/ns/pid');
  assert.ok(!exec.includes('--info-fd') && !exec.includes('--unshare-pid'));
  assert.deepEqual(exec.slice(-3), ['--', 'cat', '/etc/hostname']);
});

test("with cgroups, the shell joins the container's cgroups before it execs anything (start and exec)", () => {
  const l = launch({ cgroupProcs: ['/cg/memory/vk/u/c/cgroup.procs', '/cg/cpu,cpuacct/vk/u/c/cgroup.procs'] });
  assert.equal(
    startCommand(tools, l, '/i.json', false)[2],
    'echo $$ > /cg/memory/vk/u/c/cgroup.procs && echo $$ > /cg/cpu,cpuacct/vk/u/c/cgroup.procs && exec "$@" 3>/i.json 4</proc/42/ns/pid',
  );
  assert.equal(
    execCommand(tools, l, 777, ['true'], false)[2],
    'echo $$ > /cg/memory/vk/u/c/cgroup.procs && echo $$ > /cg/cpu,cpuacct/vk/u/c/cgroup.procs && exec "$@" 4</proc/777/ns/pid',
  );
  // With a TTY, `script` (like the monitor) stays outside; the shell it runs joins.
  assert.match(startCommand(tools, l, '/i.json', true)[2]!, /^\/bin\/sh -c 'echo \$\$ > \/cg\/memory/);
});

test("an overlay rootfs: the start mounts it in the pod's mount namespace (after the previous run's is unmounted; a missing working directory made); exec joins that namespace", () => {
  const overlay = {
    lower: '/img/rootfs',
    upper: '/data/pods/u/containers/c/1/upper',
    work: '/data/pods/u/containers/c/1/work',
    makeDir: 'srv/app',
    previous: '/data/pods/u/containers/c/0/rootfs',
  };
  const l = launch({ overlay, rootfs: '/data/pods/u/containers/c/1/rootfs', cgroupProcs: ['/cg/memory/vk/u/c/cgroup.procs'] });
  const argv = startCommand(tools, l, '/i.json', false);
  assert.deepEqual(argv.slice(0, 14), [
    '/bin/sh',
    '-c',
    'echo $$ > /cg/memory/vk/u/c/cgroup.procs && exec "$@" 3>/i.json 4</proc/42/ns/pid',
    'sh',
    'nsenter',
    '--ipc=/proc/42/ns/ipc',
    '--uts=/proc/42/ns/uts',
    '--net=/proc/42/ns/net',
    '--mount=/proc/42/ns/mnt',
    '--',
    '/bin/sh',
    '-c',
    '/bin/busybox umount -l /data/pods/u/containers/c/0/rootfs 2>/dev/null; /bin/busybox mount -t overlay overlay -o lowerdir=/img/rootfs,upperdir=/data/pods/u/containers/c/1/upper,workdir=/data/pods/u/containers/c/1/work /data/pods/u/containers/c/1/rootfs && /bin/busybox mkdir -p /data/pods/u/containers/c/1/rootfs/srv/app && exec "$@"',
    'sh',
  ]);
  assert.equal(argv[14], 'bwrap');
  assert.ok(argv.join(' ').includes('--bind /data/pods/u/containers/c/1/rootfs /'));
  const exec = execCommand(tools, l, 777, ['true'], false);
  assert.ok(exec.includes('--mount=/proc/42/ns/mnt') && !exec.join(' ').includes('mount -t overlay'));
  assert.throws(() => startCommand(tools, launch({ overlay: { ...overlay, lower: '/a,b' } }), '/i.json', false), /overlayfs cannot use the path \/a,b/);
});

test('a TTY wraps the command in script, without a new session', () => {
  const argv = startCommand(tools, launch(), '/i.json', true);
  assert.deepEqual([argv[0], argv[1], argv[3]], ['script', '-qfec', '/dev/null']);
  assert.ok(!argv[2]!.includes('--new-session'));
  assert.match(argv[2]!, /^\/bin\/sh -c 'exec "\$@" 3>\/i.json 4<\/proc\/42\/ns\/pid' sh nsenter/);
});

test('each pod gets a /30 of the pod CIDR, named after it', () => {
  const networks = new PodNetworks('10.215.0.0/16', { ip: 'ip', nsenter: 'nsenter', busybox: 'busybox' });
  assert.deepEqual(networks.describe(0), { index: 0, podIP: '10.215.0.2', gateway: '10.215.0.1', hostLink: 'vk0ad70000' });
  assert.deepEqual(networks.describe(70), { index: 70, podIP: '10.215.1.26', gateway: '10.215.1.25', hostLink: 'vk0ad70118' });
});

test('config: defaults, the CrashLoopBackOff of the kubelet, and one-line errors', () => {
  const c = parseSandboxConfig({ dataDir: '/tmp/x' });
  assert.equal(c.podCIDR, '10.215.0.0/16');
  assert.equal(c.imageDir, '/tmp/x/images');
  assert.deepEqual(c.crashLoopBackOff, { initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 });
  assert.equal(c.tools.pause, 'catatonit');
  assert.equal(c.cgroups, 'auto');
  assert.equal(c.podPidsLimit, undefined);
  assert.throws(() => parseSandboxConfig({ cgroups: 'v3' }), /cgroups/);
  assert.throws(() => parseSandboxConfig({ podCIDR: '10.0.0.0/30' }), /podCIDR: expected an IPv4 CIDR/);
  assert.throws(() => parseSandboxConfig({ nope: 1 }), /nope: unknown field/);
});

test('/proc/<pid>/stat with spaces and parentheses in the command name', () => {
  const s = parseStat(12, '12 (a b) c)) S 1 12 12 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5555 1000 25 18446744073709551615');
  assert.deepEqual(s, { pid: 12, comm: 'a b) c)', state: 'S', ppid: 1, cpuTicks: 10, startTicks: 5555, rssBytes: 25 * 4096 });
});
