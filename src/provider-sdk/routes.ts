// Path matching of the provider SDK server: which endpoint a request names, which methods it
// takes, and which protocol version it asks for. Unknown paths, versions and methods are
// WireStatusErrors, answered before anything reaches the provider.
import { WireStatusError } from '../protocol/errors.ts';
import { PATH_PREFIX, PROTOCOL_VERSIONS, VERSION_HEADER, parseVersionHeader, type ProtocolVersion } from '../protocol/wire.ts';

export type RouteKind =
  'capabilities' | 'ping' | 'node' | 'stats' | 'pods' | 'watch' | 'pod' | 'status' | 'resolved' | 'logs' | 'exec' | 'attach' | 'portforward';

export interface Route {
  kind: RouteKind;
  namespace: string;
  name: string;
  container: string;
}

const POD_ROUTE = /^\/pods\/([^/]+)\/([^/]+)(?:\/(status|resolved|portforward|containers\/([^/]+)\/(logs|exec|attach)))?$/;

const FIXED: Record<string, RouteKind> = {
  '/capabilities': 'capabilities',
  '/ping': 'ping',
  '/node': 'node',
  '/stats': 'stats',
  '/pods': 'pods',
  '/pods/watch': 'watch',
};

export const ALLOWED: Record<RouteKind, string[]> = {
  capabilities: ['GET'],
  ping: ['GET'],
  node: ['GET'],
  stats: ['GET'],
  pods: ['GET', 'POST'],
  watch: ['GET'],
  pod: ['GET', 'PUT', 'DELETE'],
  status: ['GET'],
  resolved: ['GET'],
  logs: ['GET'],
  exec: ['GET'],
  attach: ['GET'],
  portforward: ['GET'],
};

const SPOKEN = PROTOCOL_VERSIONS.join(' and ');

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new WireStatusError('VK_INVALID_REQUEST', 'BadRequest', `malformed percent-encoding in path segment ${JSON.stringify(segment)}`);
  }
}

/**
 * The protocol version a request asks for with its header (none: 1). One this server does not
 * speak is refused in version 1, the one every client reads.
 */
export function requestVersion(header: string | string[] | undefined): ProtocolVersion {
  const version = parseVersionHeader(header);
  if (version === undefined)
    throw new WireStatusError(
      'VK_PROTOCOL',
      'UnsupportedVersion',
      `${VERSION_HEADER} header ${JSON.stringify(String(header))} is not supported by this server; it speaks ${SPOKEN}`,
    );
  return version;
}

/** The route a path names; throws WireStatusError for unknown paths and path versions. */
export function matchRoute(pathname: string): Route {
  const version = /^\/v(\d+)(\/.*)?$/.exec(pathname);
  if (!version)
    throw new WireStatusError('VK_UNSUPPORTED', 'UnknownPath', `no such endpoint ${pathname}: remote provider protocol paths start with ${PATH_PREFIX}/`);
  if (`/v${version[1]}` !== PATH_PREFIX) {
    // Every protocol version keeps the /v1 paths: the header picks the version, not the path.
    throw new WireStatusError(
      'VK_PROTOCOL',
      'UnsupportedVersion',
      `protocol version v${version[1]} is not supported by this server; it speaks v1 paths (protocol versions ${SPOKEN}, chosen with the ${VERSION_HEADER} header)`,
    );
  }
  const rest = version[2] ?? '/';
  const fixed = FIXED[rest];
  if (fixed) return { kind: fixed, namespace: '', name: '', container: '' };
  const m = POD_ROUTE.exec(rest);
  if (!m) throw new WireStatusError('VK_UNSUPPORTED', 'UnknownPath', `no such endpoint ${pathname}`);
  const namespace = decode(m[1]!);
  const name = decode(m[2]!);
  if (m[4] !== undefined) return { kind: m[5] as 'logs' | 'exec' | 'attach', namespace, name, container: decode(m[4]) };
  return { kind: (m[3] as 'status' | 'resolved' | 'portforward' | undefined) ?? 'pod', namespace, name, container: '' };
}

/** Refuses a method the route does not take (405, with the Allow header's value). */
export function checkMethod(route: Route, method: string, pathname: string): void {
  if (!ALLOWED[route.kind].includes(method)) {
    throw new WireStatusError('VK_INVALID_REQUEST', 'MethodNotAllowed', `${method} is not allowed on ${pathname} (allowed: ${ALLOWED[route.kind].join(', ')})`);
  }
}
