import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamBreaker } from '../src/upstream/breaker.ts';
import { ProxyError } from '../src/core/errors.ts';

const config = { errorRate: 0.5, minRequests: 4, window: 10_000, openFor: 60_000, maxConcurrent: 2 };
const failed = (value: string) => value === 'fail';
/** One try as the breaker runs it. */
const trial = (start: () => Promise<string>) => ({ start, failed });

describe('breaker arithmetic (opossum underneath)', () => {
  const made: UpstreamBreaker[] = [];
  afterEach(() => made.splice(0).forEach((breaker) => breaker.shutdown()));
  const breaker = (name: string) => {
    const b = new UpstreamBreaker(name, config);
    made.push(b);
    return b;
  };

  it('opens when the failed share reaches errorRate (>=, not >) once minRequests were seen', async () => {
    const b = breaker('exactly-half');
    for (const result of ['ok', 'ok', 'fail']) expect(await b.run(trial(async () => result))).toBe(result);
    expect(b.state).toBe('closed'); // 3 < minRequests
    await b.run(trial(async () => 'fail'));
    expect(b.state).toBe('open'); // 2 of 4 = 0.5
    await expect(b.run(trial(async () => 'ok'))).rejects.toMatchObject({ code: 'circuit_open' });
  });

  it('stays closed below errorRate', async () => {
    const b = breaker('below');
    for (const result of ['ok', 'ok', 'ok', 'fail', 'ok', 'fail']) await b.run(trial(async () => result));
    expect(b.state).toBe('closed'); // 2 of 6
  });

  it('maxConcurrent refuses with overloaded, which does not count as a failure', async () => {
    const b = breaker('busy');
    let release!: () => void;
    const held = new Promise<string>((resolve) => (release = () => resolve('ok')));
    const one = b.run(trial(() => held));
    const two = b.run(trial(() => held));
    expect(b.inFlight).toBe(2);
    for (let i = 0; i < 10; i++) {
      const refused = await b.run(trial(async () => 'ok')).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(ProxyError);
      expect((refused as ProxyError).code).toBe('overloaded');
    }
    release();
    await Promise.all([one, two]);
    expect(b.state).toBe('closed');
    expect(b.inFlight).toBe(0);
  });
});
