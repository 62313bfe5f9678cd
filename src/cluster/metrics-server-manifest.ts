// The objects that make a metrics-server running on this host (not as a pod) the cluster's
// metrics.k8s.io: RBAC as upstream's components.yaml gives its ServiceAccount (here the user of its
// client certificate), a selector-less Service whose EndpointSlice names the host address it
// listens on, and the APIService, verified against the cluster CA.

/** The user name in metrics-server's client certificate (controlplane/pki.go). */
export const METRICS_SERVER_USER = 'system:metrics-server';
export const METRICS_SERVER_APISERVICE = 'v1beta1.metrics.k8s.io';

const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'virtual-kubelet-ts' };

export interface MetricsServerEndpoint {
  /** A host address kube-apiserver reaches and an EndpointSlice accepts (not loopback). */
  address: string;
  port: number;
  /** PEM of the CA that signed metrics-server's serving certificate. */
  caBundlePem: string;
}

export function metricsServerManifest(endpoint: MetricsServerEndpoint): Record<string, unknown> {
  const user = [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: METRICS_SERVER_USER }];
  const items = [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: {
        name: 'system:aggregated-metrics-reader',
        labels: {
          ...MANAGED_BY,
          'rbac.authorization.k8s.io/aggregate-to-admin': 'true',
          'rbac.authorization.k8s.io/aggregate-to-edit': 'true',
          'rbac.authorization.k8s.io/aggregate-to-view': 'true',
        },
      },
      rules: [{ apiGroups: ['metrics.k8s.io'], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'system:metrics-server', labels: MANAGED_BY },
      rules: [
        { apiGroups: [''], resources: ['nodes/metrics'], verbs: ['get'] },
        { apiGroups: [''], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'system:metrics-server', labels: MANAGED_BY },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:metrics-server' },
      subjects: user,
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'metrics-server:system:auth-delegator', labels: MANAGED_BY },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: user,
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'metrics-server-auth-reader', namespace: 'kube-system', labels: MANAGED_BY },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'extension-apiserver-authentication-reader' },
      subjects: user,
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'metrics-server', namespace: 'kube-system', labels: MANAGED_BY },
      spec: { ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: endpoint.port }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'metrics-server-host',
        namespace: 'kube-system',
        // Not the EndpointSlice controller's: it leaves a selector-less Service's slices alone.
        labels: { ...MANAGED_BY, 'kubernetes.io/service-name': 'metrics-server', 'endpointslice.kubernetes.io/managed-by': 'virtual-kubelet-ts' },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: [endpoint.address], conditions: { ready: true } }],
      ports: [{ name: 'https', port: endpoint.port, protocol: 'TCP' }],
    },
    {
      apiVersion: 'apiregistration.k8s.io/v1',
      kind: 'APIService',
      metadata: { name: METRICS_SERVER_APISERVICE, labels: MANAGED_BY },
      spec: {
        group: 'metrics.k8s.io',
        version: 'v1beta1',
        groupPriorityMinimum: 100,
        versionPriority: 100,
        service: { name: 'metrics-server', namespace: 'kube-system', port: 443 },
        caBundle: Buffer.from(endpoint.caBundlePem).toString('base64'),
      },
    },
  ];
  return { apiVersion: 'v1', kind: 'List', items };
}
