// Drives our server with the real Go client the apiserver uses (moby/spdystream), built from
// testdata/goclient. Skipped only when no Go toolchain is installed.

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { cacheRoot } from '../../cluster/binary.ts';
import type { SpdyStream } from './connection.ts';
import { startServer } from '../../../test/fixtures/spdy-client.ts';

const run = promisify(execFile);
const clientDir = path.join(import.meta.dirname, 'testdata', 'goclient');

function goAvailable(): boolean {
  return !spawnSync('go', ['version'], { stdio: 'ignore' }).error;
}

/** Builds the Go client once per source version, cached with the project's other Go builds (~/.cache/virtual-kubelet-ts). */
async function buildClient(): Promise<string> {
  const hash = createHash('sha256');
  for (const name of ['go.mod', 'go.sum', 'main.go']) hash.update(name).update(fs.readFileSync(path.join(clientDir, name)));
  const dir = path.join(cacheRoot(), 'spdy-goclient');
  const binary = path.join(dir, hash.digest('hex').slice(0, 16));
  if (fs.existsSync(binary)) return binary;
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${binary}.${process.pid}.tmp`;
  await run('go', ['build', '-o', tmp, '.'], {
    cwd: clientDir,
    env: { ...process.env, GOFLAGS: '-mod=mod', CGO_ENABLED: '0' },
    timeout: 300_000,
  });
  fs.renameSync(tmp, binary);
  return binary;
}

test('interop: Go moby/spdystream client runs an exec-shaped session against us', { timeout: 360_000 }, async (t) => {
  if (!goAvailable()) {
    t.skip('go toolchain not found on PATH: skipping the moby/spdystream interoperability test');
    return;
  }
  const binary = await buildClient();
  const size = 4 << 20;
  const seen: Record<string, string>[] = [];
  let pongs = 0;
  let stdinHash = '';
  const server = await startServer(
    (conn, protocol) => {
      assert.equal(protocol, 'v4.channel.k8s.io');
      conn.on('pong', () => pongs++);
      const byType = new Map<string, SpdyStream>();
      conn.on('stream', (stream: SpdyStream) => {
        seen.push({ ...stream.headers });
        byType.set(stream.headers['streamtype'] ?? '', stream);
        const stdin = byType.get('stdin');
        const stdout = byType.get('stdout');
        const error = byType.get('error');
        if (stream.headers['streamtype'] !== 'stdout' || !stdin || !error || !stdout) return;
        // cat: echo stdin to stdout; then the v4 success status, then close like the kubelet.
        const hash = createHash('sha256');
        stdin.on('data', (c: Buffer) => hash.update(c));
        stdin.pipe(stdout);
        stdout.on('finish', () => {
          stdinHash = hash.digest('hex');
          error.end('{"metadata":{},"status":"Success"}');
          const close = (): void => conn.close();
          if (pongs > 0) close();
          else conn.once('pong', close);
        });
      });
    },
    { pingIntervalMs: 20 },
  );
  t.after(() => server.close());

  const { stdout, stderr } = await run(binary, [`127.0.0.1:${server.port}`, String(size)], { timeout: 60_000 }).catch(
    (err: { stdout?: string; stderr?: string; message: string }) => {
      assert.fail(`go client failed: ${err.message}\nstdout:\n${err.stdout}\nstderr:\n${err.stderr}`);
    },
  );
  const results = Object.assign(
    {},
    ...stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as object),
  ) as Record<string, unknown>;
  assert.equal(stderr, '');
  assert.equal(results['protocol'], 'v4.channel.k8s.io');
  assert.equal(results['ping'], true, 'our echo of the Go client ping');
  assert.equal(results['stdin_sha256'], stdinHash, 'stdin arrived intact');
  assert.equal(results['stdout_match'], true, 'stdout echoed intact');
  assert.equal(results['status'], '{"metadata":{},"status":"Success"}');
  assert.equal(results['closed'], true, 'the Go client saw our GOAWAY/close');
  assert.ok(pongs > 0, 'the Go client answered our pings');
  assert.deepEqual(seen, [{ streamtype: 'error' }, { streamtype: 'stdin' }, { streamtype: 'stdout' }, { streamtype: 'data', port: '8080', requestid: '42' }]);
});
