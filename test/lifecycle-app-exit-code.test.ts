/**
 * With `restart: never` the sidecar exits with the app's exit code; an app
 * that died of signal N gives 128 + N, as a shell reports it. Before, only
 * six signals had their number and any other became 143 (SIGTERM's).
 */
import { describe, expect, it } from 'vitest';
import { spawnSidecar, writeConfig } from './helpers/process.ts';

describe('the app died of a signal (restart: never)', () => {
  it('SIGUSR2 (12): the sidecar exits 140', async () => {
    const file = writeConfig('admin: { listen: 127.0.0.1:0 }\n');
    const proc = await spawnSidecar(['--config', file, '--', process.execPath, '-e', "setTimeout(() => process.kill(process.pid, 'SIGUSR2'), 200)"]);
    expect(await proc.exited).toBe(140);
  });
});
