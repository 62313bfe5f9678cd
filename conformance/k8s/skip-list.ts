// The one list of what the conformance run leaves out or expects to fail, each with its reason.
// `match` is a substring of the spec's full text. Nothing is skipped without an entry here.

export interface ListedSpec {
  match: string;
  reason: string;
}

/** Not run: the spec cannot pass here, and running it only waits out its timeouts. */
export const SKIP: readonly ListedSpec[] = [
  {
    match: '[sig-node] Pod InPlace Resize Container',
    reason:
      'missing feature: the sandbox provider does not resize a running pod in place (no containerStatuses[].resources/allocatedResources, cgroups keep their first limits)',
  },
  { match: '[sig-node] Ephemeral Containers', reason: 'missing feature: the sandbox provider does not run ephemeral containers' },
  { match: '[sig-node] ImageVolume', reason: 'missing feature: the sandbox provider has no image volumes' },
];

/** Run, and expected to fail until the feature exists; the reason goes into results.md. */
export const KNOWN_FAILURES: readonly ListedSpec[] = [
  {
    match: '[sig-node] Kubelet when scheduling a read only busybox container should not write to root filesystem',
    reason:
      "stand-in image, not the node: the busybox image's /bin/sh is bash (images.ts: busybox's ash drops env vars such as data-1 that four other specs need), and this spec compares ash's exact error text",
  },
];

export function listed(list: readonly ListedSpec[], name: string): ListedSpec | undefined {
  return list.find((entry) => name.includes(entry.match));
}
