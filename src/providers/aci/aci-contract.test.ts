// The ACI provider against the shared in-process Provider contract, talking HTTPS to the ACI
// contract server (test/contract/aci), which validates every request against the published
// containerInstance.json. A schema violation fails the case.
import assert from 'node:assert/strict';
import { silentLogger } from '../../log.ts';
import { startAciFixture } from '../../../test/contract/aci/fixture.ts';
import { runProviderContract } from '../contract.ts';

runProviderContract({
  name: 'aci (contract server)',
  async make() {
    const fixture = await startAciFixture(silentLogger);
    const provider = await fixture.open();
    return {
      provider,
      async close() {
        const violations = [...fixture.server.violations];
        await fixture.close();
        assert.deepEqual(violations, [], `requests the published schema rejects:\n${violations.join('\n')}`);
      },
    };
  },
  pod: () => ({ spec: { restartPolicy: 'Always', containers: [{ name: 'app', image: 'busybox', command: ['sleep', '3600'] }] } }),
});
