// The one error an image pull surfaces to the pod: a VkError with the kubelet's waiting
// reason (`ErrImagePull`, `ErrImageNeverPull`, `InvalidImageName`) and a kubelet-style message
// that carries the registry's own words, e.g.
//   failed to pull image "127.0.0.1:5000/nope": manifest 127.0.0.1:5000/nope:latest: MANIFEST_UNKNOWN: manifest unknown
import { VkError } from '../../../errors.ts';

export type ImagePullReason = 'ErrImagePull' | 'ErrImageNeverPull' | 'InvalidImageName';

export interface ImagePullErrorOptions extends ErrorOptions {
  reason?: ImagePullReason;
  /** HTTP status of the registry answer that failed, if any. */
  status?: number;
  /** The registry's error codes (`MANIFEST_UNKNOWN`, `UNAUTHORIZED`, ...), if it sent any. */
  registryCodes?: string[];
}

export class ImagePullError extends VkError {
  readonly reason: ImagePullReason;
  /** The image as the pod spec wrote it. */
  readonly image: string;
  readonly status: number | undefined;
  readonly registryCodes: string[];

  /** `message` is the full text; use `ImagePullError.pull()` for the usual `failed to pull image "x": ...` form. */
  constructor(image: string, message: string, options: ImagePullErrorOptions = {}) {
    super('VK_IMAGE_PULL', message, options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = options.reason ?? 'ErrImagePull';
    this.image = image;
    this.status = options.status;
    this.registryCodes = options.registryCodes ?? [];
  }

  /** `failed to pull image "<image>": <detail>`, reason ErrImagePull. */
  static pull(image: string, detail: string, options: Omit<ImagePullErrorOptions, 'reason'> = {}): ImagePullError {
    return new ImagePullError(image, `failed to pull image "${image}": ${detail}`, options);
  }

  /** True when the registry refused our credentials (or their absence): another credential may work. */
  get isAuthError(): boolean {
    return this.status === 401 || this.status === 403 || this.registryCodes.some((c) => c === 'UNAUTHORIZED' || c === 'DENIED');
  }
}

/** The kubelet's InvalidImageName, for a reference that does not parse. */
export class InvalidImageNameError extends ImagePullError {
  constructor(image: string, detail = 'invalid reference format') {
    super(image, `couldn't parse image name "${image}": ${detail}`, { reason: 'InvalidImageName' });
  }
}

/**
 * What a registry says about a failed request: its `{"errors": [{"code", "message", "detail"}]}`
 * body as `CODE: message` lines joined with "; ", else the HTTP status and a piece of the body.
 */
export function describeRegistryError(status: number, statusText: string, body: string): { text: string; codes: string[] } {
  try {
    const parsed = JSON.parse(body) as { errors?: { code?: unknown; message?: unknown }[]; error?: unknown; details?: unknown };
    if (Array.isArray(parsed.errors) && parsed.errors.length > 0) {
      const codes: string[] = [];
      const parts = parsed.errors.map((e) => {
        const code = typeof e.code === 'string' ? e.code : '';
        if (code) codes.push(code);
        const message = typeof e.message === 'string' ? e.message : '';
        return code && message ? `${code}: ${message}` : code || message || 'unknown error';
      });
      return { text: parts.join('; '), codes };
    }
    // Token servers often answer {"error": "...", "details": "..."}.
    if (typeof parsed.error === 'string') {
      return { text: typeof parsed.details === 'string' ? `${parsed.error}: ${parsed.details}` : parsed.error, codes: [] };
    }
  } catch {
    // not JSON
  }
  const snippet = body.trim().replace(/\s+/g, ' ').slice(0, 200);
  return { text: `${status} ${statusText}`.trim() + (snippet ? `: ${snippet}` : ''), codes: [] };
}
