// Loads a kubeconfig the way kubectl/client-go does, without @kubernetes/client-node: importing
// its KubeConfig pulls in the whole generated API (~84 MB RSS) just to read a YAML file. Only
// users that need an exec plugin or an auth-provider load client-node, lazily, to get a token.
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Agent, RequestOptions } from 'node:https';
import { isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { ConfigError, errorMessage } from '../errors.ts';

export interface ClientConfig {
  server: URL;
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean; servername?: string };
  /** The Authorization header value to send now (bearer token re-read from tokenFile / in-cluster token at most once a minute, exec plugins via the fallback), or undefined. */
  authorization(): Promise<string | undefined>;
  /** Where it came from, for messages: the kubeconfig path(s) or 'in-cluster'. */
  source: string;
  contextName?: string;
}

export interface LoadClientConfigOptions {
  kubeconfig?: string;
  context?: string;
  /** Where the in-cluster token and ca.crt live. */
  serviceAccountDir?: string;
  /** How long a token read from a file is reused before the file is read again. */
  tokenRefreshMs?: number;
  /** Source of KUBECONFIG, HOME and KUBERNETES_SERVICE_HOST/PORT; defaults to process.env. */
  env?: Record<string, string | undefined>;
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
// client-go re-reads token files once a minute: projected service-account tokens rotate.
const TOKEN_REFRESH_MS = 60_000;
const NO_CLUSTER = 'kubeconfig: no current cluster (pass --kubeconfig or set KUBECONFIG)';

type Fields = Record<string, unknown>;

/** A named cluster, user or context, with the file that defined it: relative paths resolve against it. */
interface Entry {
  kind: 'cluster' | 'user' | 'context';
  name: string;
  fields: Fields;
  file: string;
}

interface Merged {
  files: string[];
  currentContext?: string;
  clusters: Map<string, Entry>;
  users: Map<string, Entry>;
  contexts: Map<string, Entry>;
}

export async function loadClientConfig(options: LoadClientConfigOptions = {}): Promise<ClientConfig> {
  const env = options.env ?? process.env;
  const merged: Merged = { files: [], clusters: new Map(), users: new Map(), contexts: new Map() };
  if (options.kubeconfig) {
    const file = options.kubeconfig;
    if (!existsSync(file)) throw new ConfigError(`--kubeconfig: file ${file} does not exist`);
    mergeFile(merged, file, `--kubeconfig ${file}`);
  } else {
    const list = (env.KUBECONFIG ?? '').split(path.delimiter).filter(Boolean);
    const files = list.length > 0 ? [...new Set(list)] : [path.join(env.HOME || homedir(), '.kube', 'config')];
    for (const file of files) mergeFile(merged, file, `kubeconfig ${file}`, true);
    // As in client-go: in-cluster only when the kubeconfig files hold nothing at all.
    const empty = !merged.currentContext && merged.clusters.size + merged.users.size + merged.contexts.size === 0;
    if (empty && !options.context) {
      const inCluster = loadInCluster(env, options);
      if (inCluster) return inCluster;
    }
  }
  return fromKubeconfig(merged, options);
}

function mergeFile(merged: Merged, file: string, label: string, skipMissing = false): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (skipMissing && (err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new ConfigError(`${label}: ${errorMessage(err)}`);
  }
  let doc: unknown;
  try {
    // YAML 1.1 like client-go's go-yaml, so `insecure-skip-tls-verify: yes` means true.
    doc = parse(text, { version: '1.1' });
  } catch (err) {
    throw new ConfigError(`${label}: ${errorMessage(err).split('\n')[0]}`);
  }
  merged.files.push(file);
  if (doc == null) return;
  if (!isFields(doc)) throw new ConfigError(`${label}: not a kubeconfig (expected a mapping)`);
  const current = doc['current-context'];
  if (!merged.currentContext && typeof current === 'string' && current) merged.currentContext = current;
  for (const kind of ['cluster', 'user', 'context'] as const) {
    const list = doc[`${kind}s`];
    if (list == null) continue;
    if (!Array.isArray(list)) throw new ConfigError(`${label}: ${kind}s must be a list`);
    const map = merged[`${kind}s`];
    for (const item of list) {
      const fields = isFields(item) ? (item[kind] ?? {}) : undefined;
      if (!isFields(item) || typeof item.name !== 'string' || !isFields(fields)) {
        throw new ConfigError(`${label}: each entry in ${kind}s needs a name and a ${kind} mapping`);
      }
      // client-go merge rule: the first file that defines a name wins.
      if (!map.has(item.name)) map.set(item.name, { kind, name: item.name, fields, file });
    }
  }
}

async function fromKubeconfig(merged: Merged, options: LoadClientConfigOptions): Promise<ClientConfig> {
  if (options.context && !merged.contexts.has(options.context)) {
    throw new ConfigError(`--context: no context named ${options.context} in the kubeconfig`);
  }
  if (merged.files.length === 0) throw new ConfigError(NO_CLUSTER);
  const source = merged.files.join(path.delimiter);
  const contextName = options.context ?? merged.currentContext;
  if (!contextName) throw new ConfigError(`kubeconfig ${source}: no current context (set current-context or pass --context)`);
  const context = merged.contexts.get(contextName);
  if (!context) throw new ConfigError(`kubeconfig ${source}: current-context ${contextName} is not defined`);
  const clusterName = str(context, 'cluster');
  if (!clusterName) throw new ConfigError(`kubeconfig ${source}: context ${contextName} names no cluster`);
  const cluster = merged.clusters.get(clusterName);
  if (!cluster) throw new ConfigError(`kubeconfig ${source}: context ${contextName} refers to cluster ${clusterName}, which is not defined`);
  // A context without a user is allowed: requests go out anonymous (or with a client cert from elsewhere).
  const userName = str(context, 'user');
  const user = userName ? merged.users.get(userName) : undefined;
  if (userName && !user) throw new ConfigError(`kubeconfig ${source}: context ${contextName} refers to user ${userName}, which is not defined`);

  const serverText = str(cluster, 'server') ?? '';
  const server = URL.canParse(serverText) ? new URL(serverText) : undefined;
  if (!server || (server.protocol !== 'https:' && server.protocol !== 'http:')) {
    throw new ConfigError(`kubeconfig: cluster ${cluster.name} has an invalid server URL ${JSON.stringify(serverText)}`);
  }
  const insecure = cluster.fields['insecure-skip-tls-verify'] === true;
  return {
    server,
    tls: {
      // With verification off a CA is unused, so a stale CA path must not stop us.
      ca: insecure ? undefined : bytes(cluster, 'certificate-authority'),
      cert: user && bytes(user, 'client-certificate'),
      key: user && bytes(user, 'client-key'),
      rejectUnauthorized: !insecure,
      servername: str(cluster, 'tls-server-name'),
    },
    authorization: user ? await userAuthorization(user, cluster, options.tokenRefreshMs ?? TOKEN_REFRESH_MS) : async () => undefined,
    source,
    contextName,
  };
}

async function userAuthorization(user: Entry, cluster: Entry, refreshMs: number): Promise<() => Promise<string | undefined>> {
  if (user.fields.exec != null || user.fields['auth-provider'] != null) return pluginAuthorization(user, cluster);
  const token = str(user, 'token');
  const tokenFile = str(user, 'tokenFile');
  const username = str(user, 'username');
  if ((token || tokenFile) && username) {
    throw new ConfigError(`kubeconfig: user ${user.name}: username/password or token may be set, but not both`);
  }
  // client-go: a readable tokenFile wins over token, which is kept as the fallback.
  if (tokenFile) return fileToken(`kubeconfig: user ${user.name}: tokenFile`, resolvePath(user, tokenFile), refreshMs, token);
  if (token) return async () => `Bearer ${token}`;
  if (username) {
    const basic = `Basic ${Buffer.from(`${username}:${str(user, 'password') ?? ''}`).toString('base64')}`;
    return async () => basic;
  }
  return async () => undefined;
}

function loadInCluster(env: Record<string, string | undefined>, options: LoadClientConfigOptions): ClientConfig | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  const dir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const tokenPath = path.join(dir, 'token');
  if (!host || !port || !existsSync(tokenPath)) return undefined;
  const serverText = `https://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  if (!URL.canParse(serverText)) throw new ConfigError(`in-cluster: invalid KUBERNETES_SERVICE_HOST/PORT ${JSON.stringify(serverText)}`);
  return { ...inClusterConfig({ server: new URL(serverText), serviceAccountDir: dir, tokenRefreshMs: options.tokenRefreshMs }), source: 'in-cluster' };
}

/**
 * client-go's rest.InClusterConfig pointed at a given server and service-account directory
 * (token, re-read as it rotates, and ca.crt): another cluster's mounted credentials.
 */
export function inClusterConfig(options: { server: URL; serviceAccountDir: string; tokenRefreshMs?: number }): ClientConfig {
  const dir = options.serviceAccountDir;
  return {
    server: options.server,
    tls: { ca: readField(`in-cluster ${dir}: ca.crt`, path.join(dir, 'ca.crt')), rejectUnauthorized: true },
    authorization: fileToken(`in-cluster ${dir}: token`, path.join(dir, 'token'), options.tokenRefreshMs ?? TOKEN_REFRESH_MS),
    source: `in-cluster credentials ${dir}`,
  };
}

/** A bearer token read from a file now (failing loudly) and again after refreshMs (keeping the last token on failure, as client-go does, so a rotation in progress does not break requests). */
function fileToken(what: string, file: string, refreshMs: number, fallback?: string): () => Promise<string | undefined> {
  let token: string | undefined;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (err) {
    if (fallback === undefined) throw new ConfigError(`${what} ${file} cannot be read: ${errorMessage(err)}`);
    token = fallback;
  }
  let readAt = Date.now();
  return async () => {
    if (Date.now() - readAt >= refreshMs) {
      readAt = Date.now();
      token = (await readFile(file, 'utf8').catch(() => undefined))?.trim() ?? token;
    }
    return token ? `Bearer ${token}` : undefined;
  };
}

// Exec plugins and auth-providers (oidc, gcp, azure, ...) are rare and intricate; client-node
// already implements them. It gets a one-context kubeconfig built from our merge rather than
// loadFromDefault, whose merge throws on names repeated across KUBECONFIG files.
async function pluginAuthorization(user: Entry, cluster: Entry): Promise<() => Promise<string | undefined>> {
  const fields = { ...user.fields };
  for (const field of ['client-certificate', 'client-key', 'tokenFile']) {
    const value = str(user, field);
    if (value) fields[field] = resolvePath(user, value);
  }
  const exec = fields.exec;
  // client-go resolves a relative exec command only when it is a path, not a name looked up in PATH.
  if (isFields(exec) && typeof exec.command === 'string' && exec.command.includes(path.sep)) {
    fields.exec = { ...exec, command: resolvePath(user, exec.command) };
  }
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  try {
    kc.loadFromString(
      JSON.stringify({
        clusters: [{ name: cluster.name, cluster: { server: str(cluster, 'server') } }],
        users: [{ name: user.name, user: fields }],
        contexts: [{ name: 'vk', context: { cluster: cluster.name, user: user.name } }],
        'current-context': 'vk',
      }),
    );
  } catch (err) {
    throw new ConfigError(`kubeconfig: user ${user.name}: ${errorMessage(err)}`);
  }
  return async () => {
    const opts: RequestOptions = { headers: {} };
    await kc.applyToHTTPSOptions(opts);
    (opts.agent as Agent | undefined)?.destroy();
    return (opts.headers as Record<string, string | undefined>).Authorization;
  };
}

/** `<field>-data` (base64) or `<field>` (a file path); -data wins, as in client-go. */
function bytes(entry: Entry, field: string): Buffer | undefined {
  const data = str(entry, `${field}-data`);
  if (data) return Buffer.from(data, 'base64');
  const file = str(entry, field);
  return file ? readField(`kubeconfig: ${entry.kind} ${entry.name}: ${field}`, resolvePath(entry, file)) : undefined;
}

function readField(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(`${what} ${file} cannot be read: ${errorMessage(err)}`);
  }
}

function resolvePath(entry: Entry, file: string): string {
  return path.resolve(path.dirname(path.resolve(entry.file)), file);
}

// go-yaml fills string fields from unquoted scalars too (`password: 1234`).
function str(entry: Entry, field: string): string | undefined {
  const value = entry.fields[field];
  if (value == null || value === '') return undefined;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new ConfigError(`kubeconfig: ${entry.kind} ${entry.name}: ${field} must be a string`);
}

function isFields(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
