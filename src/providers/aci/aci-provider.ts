// The Azure Container Instances provider: each pod is one container group in the configured
// resource group (pod-mapping.ts), its status is read from the group's instance view by polling
// (status.ts) and its instance-view events become pod Events (events.ts), logs come from listLogs
// (logs.ts) and exec from the exec API (exec.ts). Attach and
// port-forward are not offered: ACI's attach has no stdin and it has no port-forward.
import { readFileSync } from 'node:fs';
import type { TokenCredential } from '@azure/identity';
import { ConfigError, ContainerStateError, InvalidRequestError, NotFoundError, PodRejectedError, errorMessage, hasCode, throwIfAborted } from '../../errors.ts';
import type { Pod, PodStatus } from '../../kube/types.ts';
import type { Logger } from '../../log.ts';
import { mapLimit } from '../../util/map-limit.ts';
import { rfc3339 } from '../../version.ts';
import { PodNotifier } from '../support/notifier.ts';
import { NewOccurrences, PodEventReporter } from '../support/pod-events.ts';
import {
  podKey,
  type CallOptions,
  type DeleteOptions,
  type ExecStreams,
  type LogOptions,
  type NodeConfig,
  type PodEventListener,
  type PodListener,
  type Provider,
  type ResolvedPod,
} from '../provider.ts';
import { AciApiError, ArmClient } from './arm-client.ts';
import type { ContainerGroup, ContainerGroupList, ExecResponse, Usage } from './arm-types.ts';
import { parseAciConfig, type AciConfig } from './config.ts';
import { createCredential } from './credentials.ts';
import { baselineGroupEvents, newGroupEvents } from './events.ts';
import { joinArgv, runExecSession } from './exec.ts';
import { containerLogStream } from './logs.ts';
import { aciNodeConfig, capacityFromUsages } from './node-config.ts';
import { containerGroupName, podToContainerGroup, TAG } from './pod-mapping.ts';
import { groupToPodStatus } from './status.ts';
import type { Readable } from 'node:stream';

export interface AciContext {
  nodeName: string;
  nodeIP: string;
  log: Logger;
  /** Replaces the credential the config names (tests, embedding programs). */
  credential?: TokenCredential;
}

interface Entry {
  pod: Pod;
  groupName: string;
  createdAt: string;
  /** The group as last read; undefined until the first read. */
  group?: ContainerGroup;
  /** The group vanished from ACI behind our back. */
  gone?: boolean;
  status: PodStatus;
  fingerprint: string;
  /** The instance-view events already reported as pod Events. */
  events: NewOccurrences;
  /** Adopted after a restart: the first read's events were reported by the earlier run. */
  baselinePending: boolean;
}

const READ_CONCURRENCY = 8;

export class AciProvider implements Provider {
  readonly name = 'aci';
  private readonly config: AciConfig;
  private readonly client: ArmClient;
  private readonly context: AciContext;
  private readonly log: Logger;
  private readonly entries = new Map<string, Entry>();
  private readonly notifier: PodNotifier<Entry>;
  private readonly podEvents: PodEventReporter;
  private readonly ca: string | undefined;
  private quota: Record<string, string> = {};
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private readonly closing = new AbortController();

  private constructor(config: AciConfig, client: ArmClient, context: AciContext) {
    this.config = config;
    this.client = client;
    this.context = context;
    this.log = context.log;
    this.ca = config.caFile ? readFileSync(config.caFile, 'utf8') : undefined;
    this.notifier = new PodNotifier((entry) => (this.entries.get(podKey(entry.pod)) === entry ? this.render(entry) : undefined), context.log);
    this.podEvents = new PodEventReporter(context.log);
  }

  /**
   * Checks the credential and the resource group with one list call (a refused credential or a
   * missing group is a one-line ConfigError), adopts the groups this node made before, and starts
   * reading their instance views.
   */
  static async open(input: unknown, context: AciContext): Promise<AciProvider> {
    const config = parseAciConfig(input);
    const credential = context.credential ?? (await createCredential(config));
    const client = new ArmClient(config, credential);
    const provider = new AciProvider(config, client, context);
    const signal = AbortSignal.timeout(config.requestTimeoutMs);
    let groups: ContainerGroup[];
    try {
      groups = await provider.listGroups(signal);
    } catch (err) {
      client.close();
      const line = errorMessage(err).split('\n')[0];
      throw new ConfigError(`aci provider: cannot list container groups in resource group ${config.resourceGroup} at ${config.endpoint}: ${line}`);
    }
    await provider.readQuota(signal).catch((err: unknown) => context.log.warn({ err: errorMessage(err) }, 'aci: quota not readable; capacity from config'));
    for (const group of groups) if (group.tags?.[TAG.node] === context.nodeName) provider.adopt(group);
    await provider.poll();
    provider.timer = setInterval(() => void provider.poll(), config.statusPollIntervalMs);
    provider.timer.unref();
    return provider;
  }

  /** The requests sent so far (method and path), most recent last. */
  get requestLog(): readonly string[] {
    return this.client.recent;
  }

  private async listGroups(signal: AbortSignal): Promise<ContainerGroup[]> {
    const out: ContainerGroup[] = [];
    let path: string | undefined = this.client.groupsBase;
    while (path) {
      const page: ContainerGroupList = (await this.client.call<ContainerGroupList>({ method: 'GET', path, signal, what: 'list container groups' })).body;
      out.push(...(page.value ?? []));
      path = page.nextLink ? new URL(page.nextLink).pathname + new URL(page.nextLink).search.replace(/[?&]api-version=[^&]*/, '') : undefined;
    }
    return out;
  }

  private async readQuota(signal: AbortSignal): Promise<void> {
    const usages = (await this.client.call<{ value?: Usage[] }>({ method: 'GET', path: `${this.client.locationBase}/usages`, signal, what: 'list usages' }))
      .body;
    this.quota = capacityFromUsages(usages.value ?? []);
  }

  /** A group made by an earlier run of this node: the pod is rebuilt from its tags and containers. */
  private adopt(group: ContainerGroup): void {
    const tags = group.tags ?? {};
    const pod: Pod = {
      metadata: {
        namespace: tags[TAG.namespace],
        name: tags[TAG.name],
        uid: tags[TAG.uid],
        ...(tags[TAG.created] && { creationTimestamp: tags[TAG.created] }),
      },
      spec: {
        restartPolicy: group.properties.restartPolicy ?? 'Always',
        containers: group.properties.containers.map((c) => ({ name: c.name, image: c.properties.image })),
        ...(group.properties.initContainers?.length && {
          initContainers: group.properties.initContainers.map((c) => ({ name: c.name, image: c.properties.image ?? '' })),
        }),
      },
    };
    const entry = this.newEntry(pod, group.name ?? containerGroupName(tags[TAG.namespace] ?? '', tags[TAG.name] ?? ''), tags[TAG.created] ?? rfc3339());
    entry.baselinePending = true;
    this.entries.set(podKey(pod), entry);
  }

  private newEntry(pod: Pod, groupName: string, createdAt: string): Entry {
    const entry: Entry = { pod, groupName, createdAt, status: {}, fingerprint: '', events: new NewOccurrences(), baselinePending: false };
    this.refresh(entry);
    return entry;
  }

  private render(entry: Entry): Pod {
    return { ...entry.pod, status: entry.status };
  }

  /** Re-renders the entry's status; true (and a notification) when it changed. */
  private refresh(entry: Entry): boolean {
    let status = groupToPodStatus(entry.pod, entry.group, { hostIP: this.context.nodeIP, createdAt: entry.createdAt, now: rfc3339() });
    if (entry.gone) {
      status = { ...status, phase: 'Failed', reason: 'ContainerGroupGone', message: `container group ${entry.groupName} no longer exists in ACI` };
    }
    const fingerprint = JSON.stringify(status);
    if (fingerprint === entry.fingerprint) return false;
    entry.status = status;
    entry.fingerprint = fingerprint;
    this.notifier.markDirty(entry);
    return true;
  }

  private groupPath(groupName: string): string {
    return `${this.client.groupsBase}/${encodeURIComponent(groupName)}`;
  }

  /** Reads every known group's instance view once (at most READ_CONCURRENCY at a time). */
  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      await mapLimit([...this.entries.values()], READ_CONCURRENCY, async (entry) => {
        try {
          const group = (
            await this.client.call<ContainerGroup>({
              method: 'GET',
              path: this.groupPath(entry.groupName),
              signal: this.closing.signal,
              what: `get container group ${entry.groupName}`,
            })
          ).body;
          if (this.entries.get(podKey(entry.pod)) !== entry) return;
          entry.group = group;
          entry.gone = false;
          this.reportEvents(entry, group);
        } catch (err) {
          if (hasCode(err, 'VK_NOT_FOUND')) entry.gone = this.entries.get(podKey(entry.pod)) === entry;
          else if (!hasCode(err, 'VK_ABORTED')) this.log.debug({ err: errorMessage(err), group: entry.groupName }, 'aci: reading a container group failed');
        }
        this.refresh(entry);
      });
    } finally {
      this.polling = false;
    }
  }

  /** The group's events not reported yet, as pod Events (an adopted group's first read only sets the baseline). */
  private reportEvents(entry: Entry, group: ContainerGroup): void {
    if (entry.baselinePending) {
      entry.baselinePending = false;
      baselineGroupEvents(group, entry.events);
      return;
    }
    const meta = entry.pod.metadata;
    const pod = { namespace: meta?.namespace ?? '', name: meta?.name ?? '', uid: meta?.uid ?? '' };
    for (const event of newGroupEvents(group, entry.events, pod)) this.podEvents.report(event);
  }

  async createPod(resolved: ResolvedPod, options: CallOptions): Promise<void> {
    throwIfAborted(options.signal, `create pod ${podKey(resolved.pod)}`);
    const pod = resolved.pod;
    const key = podKey(pod);
    const existing = this.entries.get(key);
    if (existing?.pod.metadata?.uid === pod.metadata?.uid) return;
    // Mapping first: a pod ACI cannot run is rejected before any API call.
    const group = podToContainerGroup(resolved, this.config, this.context.nodeName);
    const groupName = containerGroupName(pod.metadata?.namespace ?? 'default', pod.metadata?.name ?? '');
    const created = await this.putGroup(groupName, group, key, options.signal);
    const entry = this.newEntry(pod, groupName, rfc3339());
    entry.group = created;
    this.entries.set(key, entry);
    this.refresh(entry);
  }

  private async putGroup(groupName: string, group: ContainerGroup, key: string, signal: AbortSignal): Promise<ContainerGroup> {
    try {
      return (
        await this.client.call<ContainerGroup>({
          method: 'PUT',
          path: this.groupPath(groupName),
          body: group,
          signal,
          what: `create container group ${groupName} for pod ${key}`,
        })
      ).body;
    } catch (err) {
      // ACI refused the group as written (bad image name, region limits): the pod can never run as is.
      if (err instanceof AciApiError && err.status === 400) throw new PodRejectedError('ProviderRejected', err.message, { cause: err });
      throw err;
    }
  }

  /**
   * ACI changes a group by a new PUT of the whole group, which restarts it: done for an image
   * change; other allowed changes (labels, annotations, tolerations, deadlines, new volume
   * contents) are kept on the pod without touching the running group.
   */
  async updatePod(resolved: ResolvedPod, options: CallOptions): Promise<void> {
    const key = podKey(resolved.pod);
    const entry = this.entries.get(key);
    if (!entry || entry.pod.metadata?.uid !== resolved.pod.metadata?.uid) throw new NotFoundError(`update pod ${key}: not running in ACI`);
    const images = (p: Pod) => JSON.stringify([...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].map((c) => c.image));
    if (images(entry.pod) !== images(resolved.pod)) {
      const group = podToContainerGroup(resolved, this.config, this.context.nodeName);
      if (entry.pod.metadata?.creationTimestamp) group.tags![TAG.created] = entry.pod.metadata.creationTimestamp;
      entry.group = await this.putGroup(entry.groupName, group, key, options.signal);
    }
    entry.pod = resolved.pod;
    this.refresh(entry);
  }

  async deletePod(pod: Pod, options: DeleteOptions): Promise<void> {
    const key = podKey(pod);
    const entry = this.entries.get(key);
    if (!entry || entry.pod.metadata?.uid !== pod.metadata?.uid)
      throw new NotFoundError(`delete pod ${key} (uid ${pod.metadata?.uid ?? '?'}): no such container group from this node`);
    try {
      await this.client.call({
        method: 'DELETE',
        path: this.groupPath(entry.groupName),
        signal: options.signal,
        what: `delete container group ${entry.groupName} for pod ${key}`,
      });
    } catch (err) {
      if (!hasCode(err, 'VK_NOT_FOUND')) throw err;
    }
    if (this.entries.get(key) === entry) this.entries.delete(key);
  }

  async getPod(namespace: string, name: string): Promise<Pod | undefined> {
    const entry = this.entries.get(`${namespace}/${name}`);
    return entry && this.render(entry);
  }

  async getPodStatus(namespace: string, name: string): Promise<PodStatus | undefined> {
    return this.entries.get(`${namespace}/${name}`)?.status;
  }

  async listPods(): Promise<Pod[]> {
    return [...this.entries.values()].map((e) => this.render(e));
  }

  notifyPods(listener: PodListener): void {
    this.notifier.addListener(listener);
  }

  notifyPodEvents(listener: PodEventListener): void {
    this.podEvents.addListener(listener);
  }

  nodeConfig(): NodeConfig {
    return aciNodeConfig(this.config, this.quota);
  }

  /** One list call: it fails when ARM, the credential or the resource group fails. */
  async ping(signal: AbortSignal): Promise<void> {
    await this.client.call({ method: 'GET', path: this.client.groupsBase, signal, what: 'list container groups' });
  }

  private container(namespace: string, pod: string, container: string): Entry {
    const entry = this.entries.get(`${namespace}/${pod}`);
    if (!entry) throw new NotFoundError(`pod ${namespace}/${pod} is not running in ACI`);
    const known = [...(entry.pod.spec?.containers ?? []), ...(entry.pod.spec?.initContainers ?? [])].some((c) => c.name === container);
    if (!known) throw new NotFoundError(`container "${container}" not found in pod ${namespace}/${pod}`);
    return entry;
  }

  private containerState(entry: Entry, container: string) {
    return entry.status.containerStatuses?.find((c) => c.name === container) ?? entry.status.initContainerStatuses?.find((c) => c.name === container);
  }

  async getContainerLogs(namespace: string, pod: string, container: string, options: LogOptions): Promise<Readable> {
    const entry = this.container(namespace, pod, container);
    const state = this.containerState(entry, container);
    if (options.previous) throw ContainerStateError.noPrevious(pod, container);
    if (state?.state?.waiting && !state.lastState?.terminated) throw ContainerStateError.waiting(pod, container, state.state.waiting.reason);
    const path = `${this.groupPath(entry.groupName)}/containers/${encodeURIComponent(container)}/logs`;
    const fetch = async (query: { tail?: number; timestamps: boolean }, signal: AbortSignal) =>
      (
        await this.client.call<{ content?: string }>({
          method: 'GET',
          path,
          query: { ...(query.tail !== undefined && { tail: query.tail }), ...(query.timestamps && { timestamps: true }) },
          signal,
          what: `logs of ${namespace}/${pod}/${container}`,
        })
      ).body.content ?? '';
    const stillRunning = async () => this.entries.get(`${namespace}/${pod}`) === entry && entry.status.phase !== 'Succeeded' && entry.status.phase !== 'Failed';
    return containerLogStream(fetch, options, this.config.logPollIntervalMs, stillRunning);
  }

  async runInContainer(namespace: string, pod: string, container: string, command: string[], streams: ExecStreams): Promise<number> {
    const entry = this.container(namespace, pod, container);
    if (!this.containerState(entry, container)?.state?.running) throw ContainerStateError.notRunning(pod, container);
    if (command.length === 0) throw new InvalidRequestError('exec: empty command');
    const session = (
      await this.client.call<ExecResponse>({
        method: 'POST',
        path: `${this.groupPath(entry.groupName)}/containers/${encodeURIComponent(container)}/exec`,
        body: { command: joinArgv(command), terminalSize: { rows: 24, cols: 80 } },
        signal: streams.signal,
        what: `exec in ${namespace}/${pod}/${container}`,
      })
    ).body;
    if (!session.webSocketUri || !session.password) throw new NotFoundError(`exec in ${namespace}/${pod}/${container}: ACI returned no WebSocket`);
    return runExecSession({ webSocketUri: session.webSocketUri, password: session.password }, streams, this.ca);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.closing.abort();
    this.client.close();
  }
}
