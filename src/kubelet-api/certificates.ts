// TLS material for the kubelet port: the serving certificate (files, a kubelet-serving CSR signed
// by the cluster, or self-signed) and the CA that client certificates must chain to.
//
// kubelet-serving CSRs: kube-controller-manager's signer (kubernetes.io/kubelet-serving) checks
// only the request itself (pkg/apis/certificates ValidateKubeletServingCSR): subject O exactly
// [system:nodes], CN starting with system:node:, at least one DNS or IP SAN, no email/URI SANs,
// usages {digital signature, server auth} (+ key encipherment). It does not check who asked, so
// a virtual kubelet running as a ServiceAccount can request one; nothing approves it on its own
// (the built-in approver handles only kubelet client certificates), so an admin or an approver
// controller must: `kubectl certificate approve <name>`.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, KubeApiError, VkError, errorMessage, isStatus } from '../errors.ts';
import type { KubeClient } from '../kube/client.ts';
import type { ConfigMap } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import { createCertificateRequest, createSelfSignedCertificate, generateKeyPair } from './x509.ts';

export type ServingCertMode = 'csr' | 'self-signed';

export interface ServingCert {
  cert: string;
  key: string;
  source: 'file' | 'csr' | 'self-signed';
  /** The CSR the certificate came from (or that is still pending, for a self-signed fallback). */
  csrName?: string;
  notAfter: Date;
}

export interface ServingCertOptions {
  nodeName: string;
  nodeIP: string;
  certFile?: string;
  keyFile?: string;
  mode: ServingCertMode;
  /** How long to wait for the CSR to be approved and signed before serving a self-signed certificate. */
  csrTimeoutMs: number;
  /** Called with the CSR's name once created: `vk up` and the tests approve it as a cluster admin would. */
  approve?: (csrName: string) => Promise<void>;
  /** Polling period while waiting for the signed certificate. */
  pollIntervalMs?: number;
  /** Ends the background wait of a self-signed fallback. */
  signal?: AbortSignal;
}

export interface ServingCertResult {
  current: ServingCert;
  /** When `current` is a fallback for a CSR that was not signed in time: resolves with the signed certificate once it is (undefined if it never is). */
  later?: Promise<ServingCert | undefined>;
}

const CSR_PATH = '/apis/certificates.k8s.io/v1/certificatesigningrequests';
const KUBELET_SERVING_SIGNER = 'kubernetes.io/kubelet-serving';

interface Csr {
  metadata?: { name?: string; resourceVersion?: string };
  spec?: Record<string, unknown>;
  status?: { certificate?: string; conditions?: { type: string; status?: string; reason?: string; message?: string }[] };
}

function readPem(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${flag}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
  }
}

function subject(nodeName: string) {
  return { commonName: `system:node:${nodeName}`, organization: ['system:nodes'] };
}

function altNames(options: ServingCertOptions) {
  return { dnsNames: [options.nodeName], ipAddresses: [options.nodeIP] };
}

export function selfSignedServingCert(options: Pick<ServingCertOptions, 'nodeName' | 'nodeIP'>): ServingCert {
  const keys = generateKeyPair();
  const cert = createSelfSignedCertificate(keys, subject(options.nodeName), altNames(options as ServingCertOptions));
  return { cert, key: keys.keyPem, source: 'self-signed', notAfter: new Date(new X509Certificate(cert).validTo) };
}

/** The serving certificate: from files, else from a kubelet-serving CSR (self-signed while it is not signed), else self-signed. */
export async function obtainServingCert(client: KubeClient, options: ServingCertOptions, log: Logger): Promise<ServingCertResult> {
  if (options.certFile || options.keyFile) {
    if (!options.certFile || !options.keyFile) throw new ConfigError('--kubelet-tls-cert-file and --kubelet-tls-key-file go together');
    const cert = readPem(options.certFile, '--kubelet-tls-cert-file');
    const key = readPem(options.keyFile, '--kubelet-tls-key-file');
    let parsed: X509Certificate;
    try {
      parsed = new X509Certificate(cert);
    } catch (err) {
      throw new ConfigError(`--kubelet-tls-cert-file ${options.certFile}: not a PEM certificate: ${errorMessage(err)}`);
    }
    return { current: { cert, key, source: 'file', notAfter: new Date(parsed.validTo) } };
  }
  if (options.mode === 'self-signed') {
    log.warn(
      'kubelet API: serving a self-signed certificate (--kubelet-serving-cert=self-signed); kube-apiserver accepts it only without --kubelet-certificate-authority',
    );
    return { current: selfSignedServingCert(options) };
  }
  return requestServingCert(client, options, log);
}

async function requestServingCert(client: KubeClient, options: ServingCertOptions, log: Logger): Promise<ServingCertResult> {
  const keys = generateKeyPair();
  const request = createCertificateRequest(keys, subject(options.nodeName), altNames(options));
  let name: string;
  try {
    const created = await client.create<Csr>(CSR_PATH, {
      apiVersion: 'certificates.k8s.io/v1',
      kind: 'CertificateSigningRequest',
      metadata: { generateName: 'csr-', labels: { 'virtual-kubelet.io/node': options.nodeName } },
      spec: {
        request: Buffer.from(request).toString('base64'),
        signerName: KUBELET_SERVING_SIGNER,
        // Key encipherment is for RSA keys; ours are ECDSA, which the signer accepts without it.
        usages: ['digital signature', 'server auth'],
      },
    });
    name = created.metadata?.name ?? '';
  } catch (err) {
    log.warn(
      { err: errorMessage(err) },
      'kubelet API: cannot create a kubelet-serving CertificateSigningRequest (needs create on certificatesigningrequests); serving a self-signed certificate',
    );
    return { current: selfSignedServingCert(options) };
  }
  const seconds = Math.round(options.csrTimeoutMs / 1000);
  log.info(
    { csr: name },
    `kubelet API: waiting up to ${seconds}s for CertificateSigningRequest ${name} to be approved and signed (approve it with: kubectl certificate approve ${name})`,
  );
  if (options.approve) {
    try {
      await options.approve(name);
    } catch (err) {
      log.warn({ csr: name, err: errorMessage(err) }, 'kubelet API: approving the CSR failed');
    }
  }
  const poll = options.pollIntervalMs ?? 500;
  const deadline = Date.now() + options.csrTimeoutMs;
  const issue = (cert: string): ServingCert => {
    const parsed = new X509Certificate(cert);
    if (!parsed.checkPrivateKey(keys.privateKey)) throw new VkError('VK_KUBE_API', `CSR ${name}: the issued certificate does not match our key`);
    return { cert, key: keys.keyPem, source: 'csr', csrName: name, notAfter: new Date(parsed.validTo) };
  };
  try {
    const cert = await waitForCertificate(client, name, deadline, poll, options.signal);
    if (cert) {
      const signed = issue(cert);
      log.info({ csr: name, notAfter: signed.notAfter.toISOString() }, 'kubelet API: serving certificate signed by the cluster');
      return { current: signed };
    }
  } catch (err) {
    log.warn({ csr: name, err: errorMessage(err) }, 'kubelet API: no serving certificate from the cluster; serving a self-signed certificate');
    return { current: { ...selfSignedServingCert(options), csrName: name } };
  }
  log.warn(
    { csr: name },
    `kubelet API: CertificateSigningRequest ${name} was not signed within ${seconds}s; serving a self-signed certificate meanwhile and switching when it is signed (kubectl certificate approve ${name})`,
  );
  const later = waitForCertificate(client, name, Infinity, Math.max(poll, 5000), options.signal)
    .then((cert) => (cert ? issue(cert) : undefined))
    .catch((err: unknown) => {
      if (!options.signal?.aborted) log.warn({ csr: name, err: errorMessage(err) }, 'kubelet API: gave up waiting for the serving certificate');
      return undefined;
    });
  return { current: { ...selfSignedServingCert(options), csrName: name }, later };
}

/** The PEM certificate once the CSR is signed; undefined at the deadline or on abort; throws when it is denied or failed. */
async function waitForCertificate(client: KubeClient, name: string, deadline: number, pollMs: number, signal?: AbortSignal): Promise<string | undefined> {
  while (!signal?.aborted) {
    let csr: Csr | undefined;
    try {
      csr = await client.get<Csr>(`${CSR_PATH}/${name}`, { timeoutMs: 10_000 });
    } catch (err) {
      if (isStatus(err, 404)) throw new VkError('VK_KUBE_API', `CSR ${name} was deleted`);
      if (err instanceof KubeApiError && err.status === 403) throw err;
      // Transient: try again.
    }
    for (const c of csr?.status?.conditions ?? []) {
      if ((c.type === 'Denied' || c.type === 'Failed') && c.status !== 'False') {
        throw new VkError('VK_KUBE_API', `CSR ${name} ${c.type.toLowerCase()}: ${c.reason ?? ''} ${c.message ?? ''}`.trim());
      }
    }
    const encoded = csr?.status?.certificate;
    if (encoded) return Buffer.from(encoded, 'base64').toString('utf8');
    const wait = Math.min(pollMs, deadline - Date.now());
    if (wait <= 0) return undefined;
    try {
      await sleep(wait, undefined, { signal });
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Approves a CSR the way `kubectl certificate approve` does (needs approve on the signer). */
export async function approveCsr(client: KubeClient, name: string, message = 'approved by vk'): Promise<void> {
  const csr = await client.get<Csr & Record<string, unknown>>(`${CSR_PATH}/${name}`);
  const conditions = csr.status?.conditions ?? [];
  if (conditions.some((c) => c.type === 'Approved')) return;
  await client.update(`${CSR_PATH}/${name}/approval`, {
    ...csr,
    status: {
      ...csr.status,
      conditions: [
        ...conditions,
        { type: 'Approved', status: 'True', reason: 'VkApprove', message, lastUpdateTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
      ],
    },
  });
}

/** The CA client certificates must chain to: from --kubelet-client-ca-file, else the cluster's extension-apiserver-authentication ConfigMap. */
export async function loadClientCA(client: KubeClient, file: string | undefined, log: Logger): Promise<string | undefined> {
  if (file) {
    const pem = readPem(file, '--kubelet-client-ca-file');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`--kubelet-client-ca-file ${file}: no PEM certificate in it`);
    return pem;
  }
  try {
    const cm = await client.get<ConfigMap>('/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication');
    const pem = cm.data?.['client-ca-file'];
    if (pem) return pem;
    log.warn(
      'kubelet API: ConfigMap kube-system/extension-apiserver-authentication has no client-ca-file; client certificates will not be accepted (bearer tokens still are)',
    );
  } catch (err) {
    log.warn(
      { err: errorMessage(err) },
      'kubelet API: cannot read ConfigMap kube-system/extension-apiserver-authentication (grant Role extension-apiserver-authentication-reader, or pass --kubelet-client-ca-file); client certificates will not be accepted',
    );
  }
  return undefined;
}
