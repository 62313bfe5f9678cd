// Registry authentication pieces: WWW-Authenticate challenges (RFC 7235) and the Docker
// token flow's request and response (https://distribution.github.io/distribution/spec/auth/token/).

export interface Credential {
  username: string;
  password: string;
}

export interface Challenge {
  /** Lower-cased: 'bearer', 'basic', ... */
  scheme: string;
  /** Parameter names lower-cased. */
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate header value into its challenges, e.g.
 * `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`.
 * Quoted strings may contain commas and backslash escapes; several challenges may share the header.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && !/[\s,=";]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  const readQuoted = (): string => {
    let out = '';
    i++; // opening quote
    while (i < n && header[i] !== '"') {
      if (header[i] === '\\' && i + 1 < n) i++;
      out += header[i];
      i++;
    }
    i++; // closing quote
    return out;
  };
  let current: Challenge | undefined;
  while (i < n) {
    skipSpace();
    if (header[i] === ',') {
      i++;
      continue;
    }
    const token = readToken();
    if (!token) {
      i++;
      continue;
    }
    skipSpace();
    if (header[i] === '=') {
      i++;
      skipSpace();
      const value = header[i] === '"' ? readQuoted() : readToken();
      if (current) current.params[token.toLowerCase()] = value;
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      challenges.push(current);
    }
  }
  return challenges;
}

export function basicAuthorization(credential: Credential): string {
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`, 'utf8').toString('base64')}`;
}

/** The pull scope for a repository: repository:<path>:pull. */
export function pullScope(repositoryPath: string): string {
  return `repository:${repositoryPath}:pull`;
}

/** The token endpoint URL for a Bearer challenge, with service and scope as query parameters. */
export function tokenUrl(challenge: Challenge, fallbackScope: string): URL {
  const realm = challenge.params.realm;
  if (!realm) throw new Error('Bearer challenge without a realm');
  const url = new URL(realm);
  if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
  const scopes = (challenge.params.scope ?? fallbackScope).split(' ').filter(Boolean);
  for (const scope of scopes) url.searchParams.append('scope', scope);
  return url;
}

export interface TokenResponse {
  token: string;
  /** Absolute expiry in ms since the epoch. */
  expiresAt: number;
}

/** Reads a token endpoint answer: `token` or `access_token`, `expires_in` seconds (60 by default per the spec). */
export function parseTokenResponse(body: string, now = Date.now()): TokenResponse {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new Error('token endpoint answered with something that is not JSON');
  }
  const record = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  const token = typeof record.token === 'string' && record.token ? record.token : typeof record.access_token === 'string' ? record.access_token : '';
  if (!token) throw new Error('token endpoint answered without a token');
  const expiresIn = typeof record.expires_in === 'number' && record.expires_in > 0 ? record.expires_in : 60;
  return { token, expiresAt: now + expiresIn * 1000 };
}
