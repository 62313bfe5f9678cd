// The client for the target cluster: from a kubeconfig (and context), or from service-account
// credentials of the target mounted in a directory (token + ca.crt) and its server, as client-go's
// rest.InClusterConfig reads them but pointed elsewhere than this pod's own cluster.
import { ConfigError, errorMessage } from '../../errors.ts';
import { KubeClient } from '../../kube/client.ts';
import { inClusterConfig } from '../../kube/kubeconfig.ts';
import type { ClusterConfig } from './config.ts';

export async function targetClient(config: ClusterConfig): Promise<KubeClient> {
  try {
    if (config.inCluster) {
      const { server, serviceAccountDir } = config.inCluster;
      return KubeClient.fromConfig(inClusterConfig({ server: new URL(server), serviceAccountDir }));
    }
    return await KubeClient.load({ kubeconfig: config.kubeconfig, ...(config.context && { context: config.context }) });
  } catch (err) {
    throw new ConfigError(`cluster provider config: ${config.inCluster ? 'inCluster' : 'kubeconfig'}: ${errorMessage(err)}`);
  }
}
