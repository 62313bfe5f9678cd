// The Fargate provider against the shared in-process Provider contract, pointed at the AWS
// contract server (test/contract/aws/): every request it sends is validated against the official
// ECS and CloudWatch Logs models, and a request the models reject fails the case.
import { runProviderContract } from '../contract.ts';
import { startFargate } from '../../../test/contract/aws/fargate-fixture.ts';

runProviderContract({
  name: 'fargate (AWS contract server)',
  async make() {
    const { provider, close } = await startFargate();
    return { provider, close };
  },
  pod: () => ({ spec: { restartPolicy: 'Always', containers: [{ name: 'app', image: 'busybox:1.36', command: ['sleep', '3600'] }] } }),
});
