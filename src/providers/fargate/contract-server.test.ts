// The AWS contract server's own checks can fail: requests the official model rejects are
// answered with the shape path and recorded as violations; answers are in the model's shapes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ECSClient, RunTaskCommand, type RunTaskCommandInput } from '@aws-sdk/client-ecs';
import { AwsContractServer, TEST_CREDENTIALS } from '../../../test/contract/aws/server.ts';
import { loadModel, validateShape } from '../../../test/contract/aws/model.ts';

test('requests the ECS model rejects fail with the shape path', async () => {
  const server = await AwsContractServer.start();
  const ecs = new ECSClient({ region: 'us-east-1', endpoint: server.url, credentials: TEST_CREDENTIALS, maxAttempts: 1 });
  try {
    const bad = {
      taskDefinition: 'x',
      launchType: 'SPOT',
      networkConfiguration: { awsvpcConfiguration: { assignPublicIp: 'ENABLED' } },
    } as unknown as RunTaskCommandInput;
    await assert.rejects(ecs.send(new RunTaskCommand(bad)), (err: Error) => {
      assert.equal(err.name, 'ValidationException');
      assert.match(err.message, /RunTaskRequest\.launchType: "SPOT" is not one of EC2, FARGATE, EXTERNAL/);
      assert.match(err.message, /RunTaskRequest\.networkConfiguration\.awsvpcConfiguration: required member subnets missing/);
      return true;
    });
    assert.equal(server.violations.length, 1);
  } finally {
    ecs.destroy();
    await server.close();
  }
});

test('the validator checks patterns, lengths, ranges and unknown members', () => {
  const ecs = loadModel('ecs/2014-11-13');
  const logs = loadModel('logs/2014-03-28');
  assert.deepEqual(validateShape(ecs, 'Tag', { key: 'ok', value: 'fine' }), []);
  assert.match(validateShape(ecs, 'Tag', { key: 'bad!', value: 'x' })[0]!, /Tag\.key: "bad!" does not match the pattern/);
  assert.match(validateShape(ecs, 'Tag', { key: '', value: 'x' })[0]!, /length 0 is below the minimum 1/);
  assert.match(validateShape(logs, 'GetLogEventsRequest', { logGroupName: 'g', logStreamName: 's', limit: 0 })[0]!, /limit: value 0 is below the minimum 1/);
  assert.match(validateShape(ecs, 'StopTaskRequest', { task: 't', force: true })[0]!, /unknown member force/);
});
