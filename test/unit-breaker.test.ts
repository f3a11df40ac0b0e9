import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamBreaker, type BreakerCall, type TryReport } from '../src/upstream/breaker.ts';
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

  it('a try whose start throws counts as a failure, and its error comes back', async () => {
    const b = breaker('throws');
    const boom = new Error('boom');
    for (const result of ['ok', 'ok']) await b.run(trial(async () => result));
    for (let i = 0; i < 2; i++) {
      const err = await b.run({ start: () => { throw boom; }, failed }).catch((e: unknown) => e);
      expect(err).toBe(boom);
    }
    expect(b.state).toBe('open'); // 2 of 4 failed
    expect(b.inFlight).toBe(0);
  });

  it('a try still in flight when the breaker opens is counted and handed back', async () => {
    const b = new UpstreamBreaker('straggler', { ...config, maxConcurrent: 10 });
    made.push(b);
    let release!: () => void;
    const held = new Promise<string>((resolve) => (release = () => resolve('ok')));
    const straggler = b.run(trial(() => held));
    for (let i = 0; i < 4; i++) await b.run(trial(async () => 'fail'));
    expect(b.state).toBe('open');
    release();
    expect(await straggler).toBe('ok');
    expect(b.state).toBe('open'); // a success under an open breaker closes nothing
    expect(b.inFlight).toBe(0);
  });
});

describe('breaker attempt(): the callback form the attempt loop uses', () => {
  const made: UpstreamBreaker[] = [];
  afterEach(() => made.splice(0).forEach((breaker) => breaker.shutdown()));

  /** A try that ends when told to; records what the breaker said. */
  class Call implements BreakerCall<string> {
    started = 0;
    values: string[] = [];
    onEnd: () => void = () => undefined;
    refusal: unknown = undefined;
    report: TryReport<string> | undefined = undefined;
    start(report: TryReport<string>): void {
      this.started++;
      this.report = report;
    }
    finish(value: string): void {
      this.report!.tryEnded(this, value);
    }
    failed(value: string): boolean {
      return value === 'fail';
    }
    ended(value: string): void {
      this.values.push(value);
      this.onEnd();
    }
    refused(error: unknown): void {
      this.refusal = error;
    }
  }
  /** Runs one call to its end with `value` and waits until the breaker handed it back. */
  async function settle(b: UpstreamBreaker, value: string): Promise<Call> {
    const call = new Call();
    const over = new Promise<void>((resolve) => (call.onEnd = resolve));
    b.attempt(call);
    // An open breaker refuses through opossum's promise: wait for the refusal or the start.
    for (let i = 0; i < 10 && call.started === 0 && call.refusal === undefined; i++) await Promise.resolve();
    if (call.started === 0) return call;
    call.finish(value);
    await over;
    return call;
  }

  it('starts a try under a closed breaker at once and hands its end back once', () => {
    const b = new UpstreamBreaker('cb-closed', config);
    made.push(b);
    const call = new Call();
    b.attempt(call);
    expect(call.started).toBe(1); // no promise in between
    expect(b.inFlight).toBe(1);
    call.finish('ok');
    expect(call.values).toEqual(['ok']);
    expect(b.inFlight).toBe(0);
  });

  it('opens on failures counted from the fast path, refuses while open, and a half-open trial that succeeds closes it', async () => {
    const b = new UpstreamBreaker('cb-cycle', { ...config, openFor: 50 });
    made.push(b);
    for (const value of ['ok', 'fail', 'ok', 'fail']) await settle(b, value);
    expect(b.state).toBe('open');
    const refused = await settle(b, 'ok');
    expect(refused.started).toBe(0);
    expect((refused.refusal as ProxyError).code).toBe('circuit_open');
    for (let i = 0; i < 100 && b.state !== 'half_open'; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(b.state).toBe('half_open');
    const trialCall = await settle(b, 'ok');
    expect(trialCall.started).toBe(1);
    expect(b.state).toBe('closed');
    // A fresh window after closing: one failure does not reopen it.
    await settle(b, 'fail');
    expect(b.state).toBe('closed');
  });

  it('a start that throws is refused with its error, and takes no place', () => {
    const b = new UpstreamBreaker('cb-throws', config);
    made.push(b);
    const call = new Call();
    const boom = new Error('boom');
    call.start = () => {
      throw boom;
    };
    b.attempt(call);
    expect(call.refusal).toBe(boom);
    expect(b.inFlight).toBe(0);
  });
});
