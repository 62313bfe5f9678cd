// Volume contents, as the kubelet's configmap, secret, downwardapi and projected plugins
// compute them (MakePayload / CollectData / collectData), plus emptyDir as a declaration.
import { posix } from 'node:path';
import type { KeyToPath, Pod, Volume } from '../kube/types.ts';
import type { ResolvedVolume, VolumeFile } from '../providers/provider.ts';
import { MissingReferenceError, UnsupportedPodSpecError } from './errors.ts';
import { fieldValue, resourceValue } from './fieldref.ts';
import type { FieldSelector, ResourceSelector } from './fieldref.ts';
import { decodeBase64 } from './objects.ts';
import type { ObjectCache } from './objects.ts';
import type { ObjectSource, ResolveContext } from './types.ts';

const DEFAULT_MODE = 0o644;
/** The API server's default for serviceAccountToken.expirationSeconds. */
const DEFAULT_TOKEN_SECONDS = 3600;

type Payload = Map<string, { content: Uint8Array; mode: number }>;

export interface ResolvedVolumes {
  volumes: Map<string, ResolvedVolume>;
  /** When the earliest service account token should be re-requested (80% of its lifetime, at most 24h), as the kubelet's token manager. */
  refreshAt?: Date;
}

interface VolumeState {
  pod: Pod;
  objects: ObjectCache;
  source: ObjectSource;
  context: ResolveContext;
  refreshAt?: Date;
}

const text = new TextEncoder();

function setUpFailed(volumeName: string, why: string): string {
  return `MountVolume.SetUp failed for volume "${volumeName}" : ${why}`;
}

/** The volume source key set on `volume` (e.g. 'configMap', 'hostPath'). */
function volumeType(volume: Volume): string {
  return Object.keys(volume).find((key) => key !== 'name' && (volume as Record<string, unknown>)[key] != null) ?? '';
}

function pathProblem(path: string): string | undefined {
  if (path === '') return 'must not be empty';
  if (path.startsWith('/')) return 'must be relative path';
  if (path.length > 4096) return 'must be less than or equal to 4096 characters';
  const parts = path.split('/');
  if (parts.includes('..')) return "must not contain '..'";
  if (parts.some((part) => part.length > 255)) return 'file names must be less than or equal to 255 characters';
  // '..data' and friends would collide with the atomic writer's own entries.
  if (parts[0]!.startsWith('..')) return "must not start with '..'";
  return undefined;
}

/** Validates a payload path like the kubelet's atomic writer, then cleans it (`a//./b/` → `a/b`). */
function cleanPath(path: string, volumeName: string): string {
  const problem = pathProblem(path);
  if (problem) throw new UnsupportedPodSpecError('InvalidVolumePath', setUpFailed(volumeName, `invalid path: ${problem}: ${path}`), { volumeName });
  const cleaned = posix.normalize(path);
  return cleaned.length > 1 && cleaned.endsWith('/') ? cleaned.slice(0, -1) : cleaned;
}

function missingKey(volumeName: string, kind: 'ConfigMap' | 'Secret', objectName: string, key: string): MissingReferenceError {
  // Same wording as the kubelet's configmap and secret plugins.
  const why = kind === 'ConfigMap' ? `configmap references non-existent config key: ${key}` : `references non-existent secret key: ${key}`;
  return new MissingReferenceError(setUpFailed(volumeName, why), { kind, objectName, key, volumeName });
}

interface ObjectRef {
  name?: string;
  items?: KeyToPath[];
  optional?: boolean;
}

/** A configMap volume or projection; a missing optional ConfigMap reads as an empty one. */
async function configMapPayload(state: VolumeState, volumeName: string, ref: ObjectRef, defaultMode: number): Promise<Payload> {
  const name = ref.name ?? '';
  const optional = ref.optional === true;
  const configMap = await state.objects.configMap(name);
  if (!configMap && !optional) {
    throw new MissingReferenceError(setUpFailed(volumeName, `configmap "${name}" not found`), { kind: 'ConfigMap', objectName: name, volumeName });
  }
  const data = configMap?.data ?? {};
  const binary = configMap?.binaryData ?? {};
  const payload: Payload = new Map();
  if (!ref.items?.length) {
    for (const key of Object.keys(data).sort()) payload.set(key, { content: text.encode(data[key]!), mode: defaultMode });
    for (const key of Object.keys(binary).sort()) payload.set(key, { content: decodeBase64(binary[key]!), mode: defaultMode });
    return payload;
  }
  for (const item of ref.items) {
    const textValue = data[item.key];
    const binaryValue = binary[item.key];
    if (textValue === undefined && binaryValue === undefined) {
      if (optional) continue;
      throw missingKey(volumeName, 'ConfigMap', name, item.key);
    }
    const content = textValue !== undefined ? text.encode(textValue) : decodeBase64(binaryValue!);
    payload.set(item.path, { content, mode: item.mode ?? defaultMode });
  }
  return payload;
}

/** A secret volume or projection; a missing optional Secret reads as an empty one. */
async function secretPayload(state: VolumeState, volumeName: string, ref: ObjectRef, defaultMode: number): Promise<Payload> {
  const name = ref.name ?? '';
  const optional = ref.optional === true;
  const secret = await state.objects.secret(name);
  if (!secret && !optional) {
    throw new MissingReferenceError(setUpFailed(volumeName, `secret "${name}" not found`), { kind: 'Secret', objectName: name, volumeName });
  }
  const data = secret?.data ?? {};
  const payload: Payload = new Map();
  if (!ref.items?.length) {
    for (const key of Object.keys(data).sort()) payload.set(key, { content: decodeBase64(data[key]!), mode: defaultMode });
    return payload;
  }
  for (const item of ref.items) {
    const value = data[item.key];
    if (value === undefined) {
      if (optional) continue;
      throw missingKey(volumeName, 'Secret', name, item.key);
    }
    payload.set(item.path, { content: decodeBase64(value), mode: item.mode ?? defaultMode });
  }
  return payload;
}

function downwardAPIPayload(
  state: VolumeState,
  volumeName: string,
  items: { path: string; mode?: number; fieldRef?: FieldSelector; resourceFieldRef?: ResourceSelector }[],
  defaultMode: number,
): Payload {
  const payload: Payload = new Map();
  for (const item of items) {
    let value = '';
    if (item.fieldRef) value = fieldValue(state.pod, item.fieldRef, state.context, 'volume', { volumeName });
    else if (item.resourceFieldRef) value = resourceValue(state.pod, item.resourceFieldRef, undefined, state.context.nodeAllocatable, { volumeName });
    payload.set(posix.normalize(item.path), { content: text.encode(value), mode: item.mode ?? defaultMode });
  }
  return payload;
}

async function projectedVolume(state: VolumeState, volume: Volume): Promise<Payload> {
  const volumeName = volume.name;
  const defaultMode = volume.projected?.defaultMode ?? DEFAULT_MODE;
  const payload: Payload = new Map();
  const merge = (part: Payload) => {
    for (const [path, file] of part) payload.set(path, file);
  };
  for (const source of volume.projected?.sources ?? []) {
    if (source.configMap) merge(await configMapPayload(state, volumeName, source.configMap, defaultMode));
    else if (source.secret) merge(await secretPayload(state, volumeName, source.secret, defaultMode));
    else if (source.downwardAPI) merge(downwardAPIPayload(state, volumeName, source.downwardAPI.items ?? [], defaultMode));
    else if (source.serviceAccountToken) merge(await tokenPayload(state, source.serviceAccountToken, defaultMode));
    else {
      const kind = Object.keys(source).find((key) => (source as Record<string, unknown>)[key] != null) ?? 'unknown';
      throw new UnsupportedPodSpecError('UnsupportedVolume', `volume "${volumeName}": projected ${kind} sources are not supported by this virtual kubelet`, {
        volumeName,
      });
    }
  }
  return payload;
}

async function tokenPayload(
  state: VolumeState,
  projection: { audience?: string; expirationSeconds?: number; path: string },
  defaultMode: number,
): Promise<Payload> {
  const { pod } = state;
  const expirationSeconds = projection.expirationSeconds ?? DEFAULT_TOKEN_SECONDS;
  const serviceAccount = pod.spec?.serviceAccountName || pod.spec?.serviceAccount || 'default';
  const token = await state.source.createServiceAccountToken(pod.metadata?.namespace ?? '', serviceAccount, {
    ...(projection.audience ? { audience: projection.audience } : {}),
    expirationSeconds,
    podName: pod.metadata?.name ?? '',
    podUid: pod.metadata?.uid ?? '',
  });
  const expires = Date.parse(token.expirationTimestamp);
  if (!Number.isNaN(expires)) {
    // Refresh at 80% of the requested lifetime, and at least daily.
    const refresh = new Date(Math.min(expires - expirationSeconds * 200, expires - expirationSeconds * 1000 + 24 * 3600 * 1000));
    if (!state.refreshAt || refresh < state.refreshAt) state.refreshAt = refresh;
  }
  // The kubelet uses 0600 when it can chown the file to the pod's fsUser/fsGroup; providers
  // cannot, so the projected volume's defaultMode keeps the token readable.
  return new Map([[projection.path, { content: text.encode(token.token), mode: defaultMode }]]);
}

function toFiles(payload: Payload, volumeName: string): VolumeFile[] {
  const files = new Map<string, VolumeFile>();
  for (const [path, file] of payload) {
    const cleaned = cleanPath(path, volumeName);
    files.set(cleaned, { path: cleaned, content: file.content, mode: file.mode });
  }
  return [...files.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export async function resolveVolumes(pod: Pod, objects: ObjectCache, source: ObjectSource, context: ResolveContext): Promise<ResolvedVolumes> {
  const state: VolumeState = { pod, objects, source, context };
  const volumes = new Map<string, ResolvedVolume>();
  for (const volume of pod.spec?.volumes ?? []) {
    const name = volume.name;
    const type = volumeType(volume);
    let resolved: ResolvedVolume | undefined;
    switch (type) {
      case 'configMap': {
        const files = await configMapPayload(state, name, volume.configMap!, volume.configMap!.defaultMode ?? DEFAULT_MODE);
        resolved = { name, type: 'files', source: 'configMap', files: toFiles(files, name) };
        break;
      }
      case 'secret': {
        const ref = volume.secret!;
        const files = await secretPayload(state, name, { name: ref.secretName, items: ref.items, optional: ref.optional }, ref.defaultMode ?? DEFAULT_MODE);
        resolved = { name, type: 'files', source: 'secret', files: toFiles(files, name) };
        break;
      }
      case 'downwardAPI': {
        const files = downwardAPIPayload(state, name, volume.downwardAPI!.items ?? [], volume.downwardAPI!.defaultMode ?? DEFAULT_MODE);
        resolved = { name, type: 'files', source: 'downwardAPI', files: toFiles(files, name) };
        break;
      }
      case 'projected':
        resolved = { name, type: 'files', source: 'projected', files: toFiles(await projectedVolume(state, volume), name) };
        break;
      case 'emptyDir': {
        const { medium = '', sizeLimit } = volume.emptyDir!;
        resolved = { name, type: 'emptyDir', medium, ...(sizeLimit !== undefined ? { sizeLimit } : {}) };
        break;
      }
      default:
        if (context.providerVolumeTypes?.includes(type)) continue;
        throw new UnsupportedPodSpecError('UnsupportedVolume', `volume "${name}": ${type || 'unknown'} volumes are not supported by this virtual kubelet`, {
          volumeName: name,
        });
    }
    volumes.set(name, resolved);
  }
  return { volumes, ...(state.refreshAt ? { refreshAt: state.refreshAt } : {}) };
}
