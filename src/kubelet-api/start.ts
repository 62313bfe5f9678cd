// Brings up the kubelet API for one virtual node: serving certificate, client CA, webhook
// authentication/authorization, and the HTTPS server, bound before the Node is registered so
// the Node can publish the real port.
import { ConfigError, errorMessage } from '../errors.ts';
import type { KubeClient } from '../kube/client.ts';
import type { Logger } from '../log.ts';
import type { Provider } from '../providers/provider.ts';
import type { Registry } from 'prom-client';
import { KubeletAuth } from './auth.ts';
import { loadClientCA, obtainServingCert, type ServingCertMode } from './certificates.ts';
import { KubeletServer, type HealthCheck, type KubeletServerMetrics } from './server.ts';
import { StatsSource, processUsage } from './stats.ts';

export type KubeletAuthMode = 'webhook' | 'none';

export interface KubeletApiOptions {
  /** Listen address; default 0.0.0.0. */
  address?: string;
  auth: KubeletAuthMode;
  clientCAFile?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  servingCert: ServingCertMode;
  csrTimeoutMs: number;
  /** Approves the serving certificate's CSR (vk up, tests); otherwise an admin or approver must. */
  approveCsr?: (csrName: string) => Promise<void>;
  /** How often the client CA ConfigMap is re-read; default 5 min. */
  clientCARefreshMs?: number;
  /** Overrides of the decision caches' lifetimes (defaults: the kubelet's 2 min / 5 min / 30 s). */
  authCache?: { authnTtlMs?: number; allowTtlMs?: number; denyTtlMs?: number };
}

export interface KubeletApiContext {
  nodeName: string;
  nodeIP: string;
  port: number;
  /** The registry /metrics serves, asked for on each scrape. */
  registry?: () => Registry;
  metrics?: KubeletServerMetrics;
  healthChecks?: Record<string, HealthCheck>;
}

export class KubeletApi {
  readonly server: KubeletServer;
  private readonly abort: AbortController;
  private readonly timers: NodeJS.Timeout[];

  private constructor(server: KubeletServer, abort: AbortController, timers: NodeJS.Timeout[]) {
    this.server = server;
    this.abort = abort;
    this.timers = timers;
  }

  get port(): number {
    return this.server.port;
  }

  static async start(client: KubeClient, provider: Provider, options: KubeletApiOptions, context: KubeletApiContext, log: Logger): Promise<KubeletApi> {
    const abort = new AbortController();
    const { nodeName, nodeIP } = context;
    const certs = await obtainServingCert(
      client,
      {
        nodeName,
        nodeIP,
        certFile: options.tlsCertFile,
        keyFile: options.tlsKeyFile,
        mode: options.servingCert,
        csrTimeoutMs: options.csrTimeoutMs,
        approve: options.approveCsr,
        signal: abort.signal,
      },
      log,
    );
    let auth: KubeletAuth | undefined;
    let clientCA: string | undefined;
    const fromConfigMap = options.auth === 'webhook' && !options.clientCAFile;
    if (options.auth === 'webhook') {
      auth = new KubeletAuth(client, { nodeName, log, ...options.authCache });
      clientCA = await loadClientCA(client, options.clientCAFile, log);
    } else {
      log.warn('kubelet API: --kubelet-auth=none: every request is served without authentication or authorization; for local development only');
    }
    let server: KubeletServer;
    try {
      server = await KubeletServer.start({
        nodeName,
        provider,
        log,
        address: options.address,
        port: context.port,
        cert: certs.current.cert,
        key: certs.current.key,
        clientCA,
        auth,
        registry: context.registry,
        metrics: context.metrics,
        healthChecks: context.healthChecks,
        stats: new StatsSource(provider, nodeName, { system: processUsage }),
      });
    } catch (err) {
      abort.abort();
      const code = (err as NodeJS.ErrnoException).code;
      throw new ConfigError(`--kubelet-port ${context.port}: ${code === 'EADDRINUSE' ? 'address already in use' : errorMessage(err)}`);
    }
    void certs.later?.then((signed) => {
      if (!signed || abort.signal.aborted) return;
      server.setCertificate(signed.cert, signed.key);
      log.info({ csr: signed.csrName, notAfter: signed.notAfter.toISOString() }, 'kubelet API: now serving the certificate signed by the cluster');
    });
    const timers: NodeJS.Timeout[] = [];
    if (fromConfigMap) {
      // The cluster's client CA can rotate; follow it.
      const timer = setInterval(() => {
        void loadClientCA(client, undefined, log).then((pem) => {
          if (pem && pem !== clientCA && !abort.signal.aborted) {
            clientCA = pem;
            try {
              server.setClientCA(pem);
              log.info('kubelet API: client CA changed; reloaded');
            } catch (err) {
              log.warn({ err: errorMessage(err) }, 'kubelet API: the changed client CA is unusable; keeping the previous one');
            }
          }
        });
      }, options.clientCARefreshMs ?? 300_000);
      timer.unref();
      timers.push(timer);
    }
    return new KubeletApi(server, abort, timers);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    for (const t of this.timers) clearInterval(t);
    await this.server.close();
  }
}
