// Downward API values: fieldRef (pod metadata and status) and resourceFieldRef (container
// requests/limits), as pkg/fieldpath and pkg/api/v1/resource compute them.
import { isIPv6 } from 'node:net';
import type { Container, Pod } from '../kube/types.ts';
import { UnsupportedPodSpecError } from './errors.ts';
import { ceilDiv, isZero, milliValue, parseQuantity, value } from '../kube/quantity.ts';
import type { Quantity } from '../kube/quantity.ts';
import type { ResolveContext } from './types.ts';

export interface FieldSelector {
  apiVersion?: string;
  fieldPath: string;
}

export interface ResourceSelector {
  containerName?: string;
  resource: string;
  divisor?: string;
}

/** Where a value is used: env vars see status and spec fields, downward API volumes only metadata. */
export type FieldUse = 'env' | 'volume';

/** Like fieldpath.FormatMap: `key="value"` lines, keys sorted, values Go-quoted. */
export function formatMap(map: Record<string, string> | undefined): string {
  return Object.keys(map ?? {})
    .sort()
    .map((key) => `${key}=${goQuote(map![key]!)}`)
    .join('\n');
}

const GO_ESCAPES: Record<string, string> = { '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v' };

/** Go's %q for a string (strconv.Quote), for ASCII control characters and quotes. */
function goQuote(text: string): string {
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (ch in GO_ESCAPES) out += GO_ESCAPES[ch];
    else if (code < 0x20 || code === 0x7f) out += '\\x' + code.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + '"';
}

/** Splits `metadata.labels['key']` into path and subscript, as fieldpath.SplitMaybeSubscriptedPath. */
function splitSubscript(fieldPath: string): [string, string] | undefined {
  if (!fieldPath.endsWith("']")) return undefined;
  const body = fieldPath.slice(0, -2);
  const open = body.indexOf("['");
  if (open <= 0) return undefined;
  return [body.slice(0, open), body.slice(open + 2)];
}

/**
 * The variables a container's spec sets from status.podIP / status.podIPs, by name, with their
 * field path (a later entry of a name wins, as in the kubelet). The core resolves env before the
 * provider gives the pod an address, so these are empty in a ResolvedPod (see pod-ip.ts for how a
 * provider fills them and what uses them in).
 */
export function podIPEnvFields(container: Pick<Container, 'env'> | undefined): Map<string, 'status.podIP' | 'status.podIPs'> {
  const fields = new Map<string, 'status.podIP' | 'status.podIPs'>();
  for (const variable of container?.env ?? []) {
    const fieldPath = variable.valueFrom?.fieldRef?.fieldPath;
    if (fieldPath === 'status.podIP' || fieldPath === 'status.podIPs') fields.set(variable.name, fieldPath);
    else fields.delete(variable.name);
  }
  return fields;
}

/** Pod IPs with the host's family first, as the kubelet's sortPodIPs does. */
function sortedPodIPs(context: ResolveContext): string[] {
  const ips = context.podIPs?.length ? [...context.podIPs] : context.podIP ? [context.podIP] : [];
  const v6First = isIPv6(context.hostIPs?.[0] ?? context.hostIP);
  return ips.sort((a, b) => Number(isIPv6(b) === v6First) - Number(isIPv6(a) === v6First));
}

export function fieldValue(
  pod: Pod,
  selector: FieldSelector,
  context: ResolveContext,
  use: FieldUse,
  where: { containerName?: string; volumeName?: string },
): string {
  const unsupported = (why: string) => new UnsupportedPodSpecError('UnsupportedField', `${why}: ${selector.fieldPath}`, where);
  if (selector.apiVersion && selector.apiVersion !== 'v1')
    throw new UnsupportedPodSpecError('UnsupportedField', `unsupported pod version: ${selector.apiVersion}`, where);
  const meta = pod.metadata ?? {};
  const subscripted = splitSubscript(selector.fieldPath);
  if (subscripted) {
    const [path, key] = subscripted;
    if (path === 'metadata.labels') return meta.labels?.[key] ?? '';
    if (path === 'metadata.annotations') return meta.annotations?.[key] ?? '';
    throw unsupported('field label does not support subscript');
  }
  switch (selector.fieldPath) {
    case 'metadata.name':
      return meta.name ?? '';
    case 'metadata.namespace':
      return meta.namespace ?? '';
    case 'metadata.uid':
      return meta.uid ?? '';
    case 'metadata.labels':
      return formatMap(meta.labels);
    case 'metadata.annotations':
      return formatMap(meta.annotations);
  }
  // The kubelet answers these only for env vars; volumes go through fieldpath, which knows metadata only.
  if (use === 'env') {
    switch (selector.fieldPath) {
      case 'spec.nodeName':
      case 'spec.host':
        return pod.spec?.nodeName || context.nodeName;
      case 'spec.serviceAccountName':
        return pod.spec?.serviceAccountName ?? '';
      case 'status.hostIP':
        return context.hostIPs?.[0] ?? context.hostIP;
      case 'status.hostIPs':
        return (context.hostIPs?.length ? context.hostIPs : [context.hostIP]).join(',');
      case 'status.podIP':
        return sortedPodIPs(context)[0] ?? '';
      case 'status.podIPs':
        return sortedPodIPs(context).join(',');
    }
  }
  throw unsupported('unsupported fieldPath');
}

const MEMORY_LIKE = new Set(['memory', 'ephemeral-storage']);

function quantityOf(list: Record<string, string> | undefined, name: string): Quantity {
  const text = list?.[name];
  return text === undefined ? { num: 0n, den: 1n } : parseQuantity(text);
}

/**
 * The limits the downward API reports for a container: unset (or zero) cpu, memory and
 * ephemeral-storage limits default to pod-level limits (cpu, memory), then to node allocatable.
 */
function defaultedLimits(pod: Pod, container: Pick<Container, 'resources'>, allocatable: Record<string, string>): Record<string, string> {
  const defaults: Record<string, string> = { ...allocatable };
  const podLimits = pod.spec?.resources?.limits ?? {};
  for (const name of ['cpu', 'memory']) {
    const podLimit = podLimits[name];
    if (podLimit !== undefined && name in defaults && !isZero(parseQuantity(podLimit))) defaults[name] = podLimit;
  }
  const limits: Record<string, string> = { ...container.resources?.limits };
  for (const name of ['cpu', 'memory', 'ephemeral-storage']) {
    const current = limits[name];
    const fallback = defaults[name];
    if ((current === undefined || isZero(parseQuantity(current))) && fallback !== undefined) limits[name] = fallback;
  }
  return limits;
}

function findContainer(pod: Pod, name: string): Pick<Container, 'resources'> | undefined {
  return pod.spec?.containers.find((c) => c.name === name) ?? pod.spec?.initContainers?.find((c) => c.name === name);
}

/**
 * The value of a resourceFieldRef: `ceil(quantity / divisor)`, cpu compared in millis and
 * memory-like resources in whole units, as resource.ExtractContainerResourceValue.
 */
export function resourceValue(
  pod: Pod,
  selector: ResourceSelector,
  ownContainer: Pick<Container, 'resources'> | undefined,
  allocatable: Record<string, string>,
  where: { containerName?: string; volumeName?: string },
): string {
  const container = selector.containerName ? findContainer(pod, selector.containerName) : ownContainer;
  if (!container)
    throw new UnsupportedPodSpecError(
      'UnsupportedField',
      `container ${selector.containerName ?? ''} not found for resourceFieldRef ${selector.resource}`,
      where,
    );
  const dot = selector.resource.indexOf('.');
  const kind = selector.resource.slice(0, dot);
  const name = selector.resource.slice(dot + 1);
  if ((kind !== 'limits' && kind !== 'requests') || !(name === 'cpu' || MEMORY_LIKE.has(name) || name.startsWith('hugepages-'))) {
    throw new UnsupportedPodSpecError('UnsupportedField', `unsupported container resource: ${selector.resource}`, where);
  }
  const list = kind === 'limits' ? defaultedLimits(pod, container, allocatable) : container.resources?.requests;
  const amount = quantityOf(list, name);
  let divisor = selector.divisor ? parseQuantity(selector.divisor) : { num: 1n, den: 1n };
  if (isZero(divisor)) divisor = { num: 1n, den: 1n };
  const [a, b] = name === 'cpu' ? [milliValue(amount), milliValue(divisor)] : [value(amount), value(divisor)];
  if (b <= 0n) throw new UnsupportedPodSpecError('UnsupportedField', `invalid divisor ${selector.divisor} for ${selector.resource}`, where);
  return ceilDiv(a, b).toString();
}
