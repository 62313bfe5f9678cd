// imagePullPolicy as the kubelet applies it, as pure functions.
// Default (what the API server fills in when the field is empty): Always when the tag is
// `latest` or there is neither tag nor digest, else IfNotPresent (so a digest-only reference
// defaults to IfNotPresent, and `image:latest@sha256:...` to Always, as in Kubernetes).
import { ImagePullError } from './errors.ts';
import { parseImageReference } from './reference.ts';

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export type PullDecision = { action: 'pull' } | { action: 'use-local' } | { action: 'fail'; error: ImagePullError };

/** Kubernetes' default for an empty imagePullPolicy. Throws InvalidImageNameError for a bad reference. */
export function defaultPullPolicy(image: string): PullPolicy {
  const ref = parseImageReference(image);
  return ref.tag === 'latest' ? 'Always' : 'IfNotPresent';
}

/**
 * What to do for a container: `pull` (contact the registry; for Always this happens even when
 * the image is present, which costs one manifest request when nothing changed), `use-local`,
 * or `fail` with ErrImageNeverPull.
 */
export function decidePull(image: string, policy: string | undefined, present: boolean): PullDecision {
  const effective = policy === undefined || policy === '' ? defaultPullPolicy(image) : policy;
  switch (effective) {
    case 'Always':
      return { action: 'pull' };
    case 'IfNotPresent':
      return present ? { action: 'use-local' } : { action: 'pull' };
    case 'Never':
      return present
        ? { action: 'use-local' }
        : {
            action: 'fail',
            error: new ImagePullError(image, `Container image "${image}" is not present with pull policy of Never`, { reason: 'ErrImageNeverPull' }),
          };
    default:
      return { action: 'fail', error: new ImagePullError(image, `unknown imagePullPolicy "${effective}" (want Always, IfNotPresent or Never)`) };
  }
}
