import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { ConfigError } from '../errors.ts';
import { loadClientConfig } from './kubeconfig.ts';

const root = mkdtempSync(path.join(tmpdir(), 'vk-kubeconfig-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirCount = 0;

function tempDir(): string {
  const dir = path.join(root, String(dirCount++));
  mkdirSync(dir);
  return dir;
}

function write(dir: string, name: string, content: string | object): string {
  const file = path.join(dir, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, typeof content === 'string' ? content : stringify(content));
  return file;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** A one-context kubeconfig; cluster and user fields are merged over the defaults. */
function kubeconfig(cluster: object = {}, user: object = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'ctx',
    clusters: [{ name: 'c', cluster: { server: 'https://k8s.example:6443', ...cluster } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
  };
}

async function rejectsConfig(promise: Promise<unknown>, message: string | RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

// Every test passes `env`, so the developer's own KUBECONFIG, ~/.kube/config or pod never leak in.
const noEnv = { HOME: '/nonexistent' };

describe('loadClientConfig: kubeconfig fields', () => {
  it('decodes the -data fields and reads server, tls-server-name and the context', async () => {
    const dir = tempDir();
    const file = write(
      dir,
      'config',
      kubeconfig(
        { 'certificate-authority-data': b64('CA'), 'tls-server-name': 'api.internal' },
        { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') },
      ),
    );
    const config = await loadClientConfig({ kubeconfig: file, env: noEnv });
    assert.equal(config.server.href, 'https://k8s.example:6443/');
    assert.equal(config.tls.ca?.toString(), 'CA');
    assert.equal(config.tls.cert?.toString(), 'CERT');
    assert.equal(config.tls.key?.toString(), 'KEY');
    assert.equal(config.tls.rejectUnauthorized, true);
    assert.equal(config.tls.servername, 'api.internal');
    assert.equal(config.source, file);
    assert.equal(config.contextName, 'ctx');
    assert.equal(await config.authorization(), undefined);
  });

  it('reads file fields, resolving relative paths against the kubeconfig that defines them', async () => {
    const dir = tempDir();
    write(dir, 'kube/ca.pem', 'CA-FILE');
    write(dir, 'certs/client.pem', 'CERT-FILE');
    const key = write(dir, 'elsewhere/client.key', 'KEY-FILE');
    const file = write(
      dir,
      'kube/config',
      kubeconfig({ 'certificate-authority': 'ca.pem' }, { 'client-certificate': '../certs/client.pem', 'client-key': key }),
    );
    const config = await loadClientConfig({ kubeconfig: file, env: noEnv });
    assert.equal(config.tls.ca?.toString(), 'CA-FILE');
    assert.equal(config.tls.cert?.toString(), 'CERT-FILE');
    assert.equal(config.tls.key?.toString(), 'KEY-FILE');
  });

  it('prefers -data over the file field, like client-go', async () => {
    const dir = tempDir();
    const file = write(dir, 'config', kubeconfig({ 'certificate-authority-data': b64('DATA'), 'certificate-authority': 'missing.pem' }));
    assert.equal((await loadClientConfig({ kubeconfig: file, env: noEnv })).tls.ca?.toString(), 'DATA');
  });

  it('turns verification off for insecure-skip-tls-verify, without reading the unused CA', async () => {
    const dir = tempDir();
    const file = write(dir, 'config', kubeconfig({ 'insecure-skip-tls-verify': true, 'certificate-authority': 'gone.pem' }));
    const config = await loadClientConfig({ kubeconfig: file, env: noEnv });
    assert.equal(config.tls.rejectUnauthorized, false);
    assert.equal(config.tls.ca, undefined);
  });

  it('reads YAML 1.1 booleans as go-yaml does', async () => {
    const dir = tempDir();
    const file = write(dir, 'config', stringify(kubeconfig()).replace('server:', 'insecure-skip-tls-verify: yes\n      server:'));
    assert.equal((await loadClientConfig({ kubeconfig: file, env: noEnv })).tls.rejectUnauthorized, false);
  });

  it('names the field and path of an unreadable file', async () => {
    const dir = tempDir();
    const file = write(dir, 'config', kubeconfig({}, { 'client-key': 'nope.key' }));
    await rejectsConfig(
      loadClientConfig({ kubeconfig: file, env: noEnv }),
      new RegExp(`^kubeconfig: user u: client-key ${path.join(dir, 'nope.key')} cannot be read: ENOENT`),
    );
    const file2 = write(dir, 'config2', kubeconfig({ 'certificate-authority': '/no/such/ca.pem' }));
    await rejectsConfig(
      loadClientConfig({ kubeconfig: file2, env: noEnv }),
      /^kubeconfig: cluster c: certificate-authority \/no\/such\/ca\.pem cannot be read/,
    );
  });
});

describe('loadClientConfig: authorization', () => {
  it('sends a static token as a bearer token', async () => {
    const file = write(tempDir(), 'config', kubeconfig({}, { token: 'abc' }));
    const config = await loadClientConfig({ kubeconfig: file, env: noEnv });
    assert.equal(await config.authorization(), 'Bearer abc');
  });

  it('re-reads tokenFile once the refresh interval has passed, and not before', async () => {
    const dir = tempDir();
    const tokenPath = write(dir, 'token', 'first\n');
    const file = write(dir, 'config', kubeconfig({}, { tokenFile: 'token' }));
    const eager = await loadClientConfig({ kubeconfig: file, env: noEnv, tokenRefreshMs: 0 });
    const cached = await loadClientConfig({ kubeconfig: file, env: noEnv });
    assert.equal(await eager.authorization(), 'Bearer first');
    writeFileSync(tokenPath, 'second\n');
    assert.equal(await eager.authorization(), 'Bearer second');
    assert.equal(await cached.authorization(), 'Bearer first');
    // A failed re-read (mid-rotation) keeps the last token.
    rmSync(tokenPath);
    assert.equal(await eager.authorization(), 'Bearer second');
  });

  it('prefers a readable tokenFile over token, and falls back to token when it is not', async () => {
    const dir = tempDir();
    write(dir, 'token', 'from-file');
    const both = write(dir, 'both', kubeconfig({}, { token: 'inline', tokenFile: 'token' }));
    assert.equal(await (await loadClientConfig({ kubeconfig: both, env: noEnv })).authorization(), 'Bearer from-file');
    const missing = write(dir, 'missing', kubeconfig({}, { token: 'inline', tokenFile: 'gone' }));
    assert.equal(await (await loadClientConfig({ kubeconfig: missing, env: noEnv })).authorization(), 'Bearer inline');
  });

  it('fails on an unreadable tokenFile with no token to fall back on', async () => {
    const dir = tempDir();
    const file = write(dir, 'config', kubeconfig({}, { tokenFile: 'gone' }));
    await rejectsConfig(loadClientConfig({ kubeconfig: file, env: noEnv }), /^kubeconfig: user u: tokenFile .*gone cannot be read/);
  });

  it('sends username/password as basic auth', async () => {
    const file = write(tempDir(), 'config', kubeconfig({}, { username: 'admin', password: 's3cret' }));
    const config = await loadClientConfig({ kubeconfig: file, env: noEnv });
    assert.equal(await config.authorization(), `Basic ${b64('admin:s3cret')}`);
  });

  it('gets an exec plugin token through the client-node fallback', { skip: process.platform === 'win32' }, async () => {
    const dir = tempDir();
    const credential = { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'from-plugin' } };
    const plugin = write(dir, 'bin/plugin.sh', `#!/bin/sh\necho '${JSON.stringify(credential)}'\n`);
    chmodSync(plugin, 0o755);
    const file = write(
      dir,
      'config',
      kubeconfig(
        {},
        {
          exec: { apiVersion: 'client.authentication.k8s.io/v1', command: './bin/plugin.sh', interactiveMode: 'Never' },
        },
      ),
    );
    const config = await loadClientConfig({ kubeconfig: file, env: noEnv });
    assert.equal(await config.authorization(), 'Bearer from-plugin');
  });
});

describe('loadClientConfig: choosing the config', () => {
  it('merges KUBECONFIG like client-go: first definition and first current-context win, missing files skipped', async () => {
    const dir = tempDir();
    const a = write(dir, 'a', {
      'current-context': 'a-ctx',
      clusters: [{ name: 'shared', cluster: { server: 'https://a.example' } }],
      contexts: [{ name: 'a-ctx', context: { cluster: 'shared' } }],
    });
    const b = write(dir, 'b', {
      'current-context': 'b-ctx',
      clusters: [{ name: 'shared', cluster: { server: 'https://b.example' } }],
      users: [{ name: 'b-user', user: { token: 'b-token' } }],
      contexts: [
        { name: 'a-ctx', context: { cluster: 'nowhere' } },
        { name: 'b-ctx', context: { cluster: 'shared', user: 'b-user' } },
      ],
    });
    const env = { HOME: '/nonexistent', KUBECONFIG: [path.join(dir, 'missing'), a, '', b].join(path.delimiter) };
    const config = await loadClientConfig({ env });
    assert.equal(config.contextName, 'a-ctx');
    assert.equal(config.server.host, 'a.example');
    assert.equal(await config.authorization(), undefined);
    assert.equal(config.source, [a, b].join(path.delimiter));

    const other = await loadClientConfig({ env, context: 'b-ctx' });
    assert.equal(other.server.host, 'a.example');
    assert.equal(await other.authorization(), 'Bearer b-token');
  });

  it('falls back to ~/.kube/config', async () => {
    const home = tempDir();
    const file = write(home, '.kube/config', kubeconfig({ server: 'https://home.example' }));
    const config = await loadClientConfig({ env: { HOME: home } });
    assert.equal(config.server.host, 'home.example');
    assert.equal(config.source, file);
  });

  it('selects --context and reports an unknown one', async () => {
    const file = write(tempDir(), 'config', {
      ...kubeconfig(),
      clusters: [
        { name: 'c', cluster: { server: 'https://one.example' } },
        { name: 'd', cluster: { server: 'https://two.example' } },
      ],
      contexts: [
        { name: 'ctx', context: { cluster: 'c' } },
        { name: 'other', context: { cluster: 'd', user: 'u' } },
      ],
    });
    const config = await loadClientConfig({ kubeconfig: file, context: 'other', env: noEnv });
    assert.equal(config.server.host, 'two.example');
    assert.equal(config.contextName, 'other');
    await rejectsConfig(loadClientConfig({ kubeconfig: file, context: 'nope', env: noEnv }), '--context: no context named nope in the kubeconfig');
  });

  it('explains a missing current context, cluster or user', async () => {
    const dir = tempDir();
    const noCurrent = write(dir, 'no-current', { ...kubeconfig(), 'current-context': '' });
    await rejectsConfig(
      loadClientConfig({ kubeconfig: noCurrent, env: noEnv }),
      `kubeconfig ${noCurrent}: no current context (set current-context or pass --context)`,
    );
    const undefinedCurrent = write(dir, 'undefined-current', { ...kubeconfig(), 'current-context': 'ghost' });
    await rejectsConfig(loadClientConfig({ kubeconfig: undefinedCurrent, env: noEnv }), `kubeconfig ${undefinedCurrent}: current-context ghost is not defined`);
    const noCluster = write(dir, 'no-cluster', { ...kubeconfig(), contexts: [{ name: 'ctx', context: { cluster: 'x', user: 'u' } }] });
    await rejectsConfig(
      loadClientConfig({ kubeconfig: noCluster, env: noEnv }),
      `kubeconfig ${noCluster}: context ctx refers to cluster x, which is not defined`,
    );
    const noUser = write(dir, 'no-user', { ...kubeconfig(), contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'nobody' } }] });
    await rejectsConfig(loadClientConfig({ kubeconfig: noUser, env: noEnv }), `kubeconfig ${noUser}: context ctx refers to user nobody, which is not defined`);
  });

  it('rejects an invalid server URL', async () => {
    const file = write(tempDir(), 'config', kubeconfig({ server: 'not a url' }));
    await rejectsConfig(loadClientConfig({ kubeconfig: file, env: noEnv }), 'kubeconfig: cluster c has an invalid server URL "not a url"');
  });

  it('reports a missing --kubeconfig file and unparsable YAML', async () => {
    const dir = tempDir();
    const missing = path.join(dir, 'missing');
    await rejectsConfig(loadClientConfig({ kubeconfig: missing, env: noEnv }), `--kubeconfig: file ${missing} does not exist`);
    const bad = write(dir, 'bad', 'clusters: [\n');
    await rejectsConfig(loadClientConfig({ kubeconfig: bad, env: noEnv }), new RegExp(`^--kubeconfig ${bad}: \\S`));
    const badInList = write(dir, 'bad2', 'a: b: c\n');
    await rejectsConfig(loadClientConfig({ env: { KUBECONFIG: badInList } }), new RegExp(`^kubeconfig ${badInList}: \\S`));
  });

  it('uses the in-cluster service account when there is no kubeconfig', async () => {
    const sa = tempDir();
    const tokenPath = write(sa, 'token', 'sa-token-1');
    write(sa, 'ca.crt', 'CLUSTER-CA');
    const env = { HOME: '/nonexistent', KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' };
    const config = await loadClientConfig({ env, serviceAccountDir: sa, tokenRefreshMs: 0 });
    assert.equal(config.server.href, 'https://[fd00::1]/');
    assert.equal(config.source, 'in-cluster');
    assert.equal(config.tls.ca?.toString(), 'CLUSTER-CA');
    assert.equal(config.tls.rejectUnauthorized, true);
    assert.equal(await config.authorization(), 'Bearer sa-token-1');
    writeFileSync(tokenPath, 'sa-token-2');
    assert.equal(await config.authorization(), 'Bearer sa-token-2');

    const v4 = await loadClientConfig({ env: { ...env, KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '6443' }, serviceAccountDir: sa });
    assert.equal(v4.server.href, 'https://10.96.0.1:6443/');

    // A kubeconfig, when there is one, wins over the pod's service account.
    const home = tempDir();
    write(home, '.kube/config', kubeconfig());
    assert.equal((await loadClientConfig({ env: { ...env, HOME: home }, serviceAccountDir: sa })).source, path.join(home, '.kube/config'));
  });

  it('says so when there is no kubeconfig and no service account', async () => {
    await rejectsConfig(loadClientConfig({ env: noEnv, serviceAccountDir: tempDir() }), 'kubeconfig: no current cluster (pass --kubeconfig or set KUBECONFIG)');
    const env = { ...noEnv, KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' };
    await rejectsConfig(loadClientConfig({ env, serviceAccountDir: tempDir() }), 'kubeconfig: no current cluster (pass --kubeconfig or set KUBECONFIG)');
  });
});

describe('loadClientConfig: memory', () => {
  // The point of this module: a plain kubeconfig must not pull in @kubernetes/client-node.
  // A child process records every module it resolves; the exec user afterwards shows the hook sees client-node.
  it('loads client-node only for users that need a plugin', { skip: process.platform === 'win32' }, async () => {
    const dir = tempDir();
    const certConfig = write(
      dir,
      'cert',
      kubeconfig({ 'certificate-authority-data': b64('CA') }, { 'client-certificate-data': b64('C'), 'client-key-data': b64('K') }),
    );
    const plugin = write(
      dir,
      'plugin.sh',
      `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"t"}}'\n`,
    );
    chmodSync(plugin, 0o755);
    const execConfig = write(dir, 'exec', kubeconfig({}, { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin } }));
    const script = `
      import { registerHooks } from 'node:module';
      const resolved = [];
      registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); resolved.push(r.url); return r; } });
      const { loadClientConfig } = await import(${JSON.stringify(new URL('./kubeconfig.ts', import.meta.url).href)});
      const clientNode = () => resolved.filter((url) => url.includes('/@kubernetes/client-node/')).length;
      const cert = await loadClientConfig({ kubeconfig: ${JSON.stringify(certConfig)} });
      await cert.authorization();
      const afterCert = { clientNode: clientNode(), yaml: resolved.some((url) => url.includes('/node_modules/yaml/')) };
      const exec = await loadClientConfig({ kubeconfig: ${JSON.stringify(execConfig)} });
      console.log(JSON.stringify({ afterCert, afterExec: clientNode(), token: await exec.authorization() }));
    `;
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    delete env.NODE_OPTIONS;
    const { stdout } = await promisify(execFile)(process.execPath, ['--no-warnings', '--input-type=module', '-e', script], { env });
    const result = JSON.parse(stdout);
    assert.deepEqual(result.afterCert, { clientNode: 0, yaml: true });
    assert.ok(result.afterExec > 0, 'the hook should see client-node once an exec user needs it');
    assert.equal(result.token, 'Bearer t');
  });
});
