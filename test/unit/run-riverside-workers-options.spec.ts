import { describe, expect, it } from 'vitest';
import { InvalidOptionsError, runRiversideWorkers } from 'nestjs-riverside';

// Rejected before anything is forked: a bad option never starts a worker.
describe('runRiversideWorkers options', () => {
  it.each([
    [{ main: 'app.js' }, 'runRiversideWorkers: invalid option "main": expected a function that starts the app, got "app.js".'],
    [{ main: () => {}, workers: 0 }, 'runRiversideWorkers: invalid option "workers": expected an integer >= 1, got 0.'],
    [{ main: () => {}, workers: Number('four') }, 'runRiversideWorkers: invalid option "workers": expected an integer >= 1, got NaN.'],
    [{ main: () => {}, restartDelay: -1 }, 'runRiversideWorkers: invalid option "restartDelay": expected an integer >= 0 (ms), got -1.'],
    [{ main: () => {}, stopTimeout: 0 }, 'runRiversideWorkers: invalid option "stopTimeout": expected a positive integer (ms), got 0.'],
    [{ main: () => {}, handleSignals: 'yes' }, 'runRiversideWorkers: invalid option "handleSignals": expected true or false, got "yes".'],
    [{ main: () => {}, schedulingPolicy: 'rr' }, 'runRiversideWorkers: invalid option "schedulingPolicy": expected \'round-robin\' or \'none\', got "rr".'],
    [
      { main: () => {}, worker: 2 },
      'runRiversideWorkers: invalid option "worker": expected one of the known options (main, workers, restartDelay, stopTimeout, handleSignals, schedulingPolicy, maxWorkerBacklog), got 2.',
    ],
    [{ main: () => {}, maxWorkerBacklog: 0 }, 'runRiversideWorkers: invalid option "maxWorkerBacklog": expected a positive integer (bytes), got 0.'],
  ])('refuses %o', async (options, message) => {
    const refusal = runRiversideWorkers(options as never);
    await expect(refusal).rejects.toThrow(InvalidOptionsError);
    await expect(refusal).rejects.toThrow(message);
  });
});
