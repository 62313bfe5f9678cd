// The cluster the suite runs against: `vk up` (local control plane + one sandbox virtual node),
// the node without taints so the suite's pods land on it, its pods in a data dir of this run.
import { spawn } from 'node:child_process';
import { createWriteStream, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { VkError } from '../../src/errors.ts';
import { freePort } from '../../test/harness/net.ts';

const VK = path.resolve(import.meta.dirname, '../../bin/vk.js');

export interface SandboxCluster {
  kubeconfig: string;
  kubectl: string;
  nodeName: string;
  stop(): Promise<void>;
}

export interface SandboxClusterOptions {
  /** State of this run: the control plane's, the node's config, the sandbox's pods and images. */
  dir: string;
  progress: (line: string) => void;
  /** The vk process's own output (node logs). */
  logFile: string;
  startTimeoutMs?: number;
}

export async function startSandboxCluster(options: SandboxClusterOptions): Promise<SandboxCluster> {
  const nodeName = 'vk-conformance';
  const providerConfig = path.join(options.dir, 'sandbox.yaml');
  const nodeConfig = path.join(options.dir, 'node.yaml');
  writeFileSync(providerConfig, `dataDir: ${path.join(options.dir, 'sandbox')}\n`);
  // `taints: []`: the node has no taint, as a kubelet's (the --taint flag can only replace vk's default one).
  writeFileSync(
    nodeConfig,
    [
      `nodeName: ${nodeName}`,
      'provider: sandbox',
      `providerConfig: ${providerConfig}`,
      'taints: []',
      // A kubelet runs DaemonSet pods; vk rejects them by default (virtual nodes usually cannot).
      'daemonsetPods: run',
      `kubeletPort: ${await freePort()}`,
      'logLevel: info',
      '',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [VK, 'up', '--dir', path.join(options.dir, 'vk'), '--config', nodeConfig], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = createWriteStream(options.logFile);
  child.stderr.pipe(log);
  const exited = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(`vk up exited (code ${code}, signal ${signal})`)));
  let kubeconfig: string | undefined;
  let kubectl: string | undefined;
  const ready = new Promise<void>((resolve) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      log.write(`${line}\n`);
      const exportMatch = /export KUBECONFIG=(\S+)/.exec(line);
      if (exportMatch) kubeconfig = exportMatch[1];
      const aliasMatch = /alias kubectl=(\S+)/.exec(line);
      if (aliasMatch) kubectl = aliasMatch[1];
      if (line.startsWith('Press Ctrl-C')) resolve();
    });
  });
  let timer: NodeJS.Timeout | undefined;
  const timeoutMs = options.startTimeoutMs ?? 600_000;
  try {
    await Promise.race([
      ready,
      exited.then((reason) => {
        throw new VkError('VK_CLUSTER', `${reason} before the node was up: see ${options.logFile}`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new VkError('VK_TIMEOUT', `vk up was not ready within ${timeoutMs / 1000}s: see ${options.logFile}`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    child.kill('SIGTERM');
    await exited;
    throw err;
  } finally {
    clearTimeout(timer);
  }
  if (!kubeconfig || !kubectl) throw new VkError('VK_CLUSTER', `vk up did not print its kubeconfig: see ${options.logFile}`);
  options.progress(`vk up: control plane and sandbox node ${nodeName} ready (kubeconfig ${kubeconfig})`);
  return {
    kubeconfig,
    kubectl,
    nodeName,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const kill = setTimeout(() => child.kill('SIGKILL'), 90_000);
        await exited;
        clearTimeout(kill);
      }
      // The sandbox's pods outlive vk (a restart adopts them): `vk down` stops what the run left.
      await new Promise<void>((resolve) => {
        const down = spawn(process.execPath, [VK, 'down', '--dir', path.join(options.dir, 'vk'), '--provider-config', providerConfig], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        down.stdout.pipe(log, { end: false });
        down.stderr.pipe(log, { end: false });
        down.once('exit', () => resolve());
        down.once('error', () => resolve());
      });
      log.end();
    },
  };
}
