import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AbortRace, raceAbort } from './abort.ts';

test('calls settle as they do until the signal aborts; then the pending ones reject with its reason at once', async () => {
  const controller = new AbortController();
  const race = new AbortRace(controller.signal);
  assert.equal(await race.run(Promise.resolve(1)), 1);
  await assert.rejects(race.run(Promise.reject(new Error('own failure'))), /own failure/);
  const hanging = race.run(new Promise(() => {}));
  controller.abort(new Error('stopping'));
  await assert.rejects(hanging, /stopping/);
  await assert.rejects(race.run(Promise.resolve(2)), /stopping/, 'after the abort, new calls reject too');
});

test('raceAbort: the work, or the abort (mapped by onAbort) as soon as it comes', async () => {
  assert.equal(await raceAbort(Promise.resolve(1), undefined), 1);
  const controller = new AbortController();
  const racing = raceAbort(new Promise(() => {}), controller.signal, (reason) => new Error(`mapped: ${String(reason)}`));
  controller.abort('stop');
  await assert.rejects(racing, /mapped: stop/);
  await assert.rejects(raceAbort(Promise.resolve(2), controller.signal), (reason) => reason === 'stop');
});
