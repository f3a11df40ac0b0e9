/**
 * The pass-through destination table: one pooled upstream per destination,
 * bounded in number (a destination in use is never evicted; a full table of
 * busy ones refuses), and idle entries closed by the sweeper.
 */
import { describe, expect, it } from 'vitest';
import { Destinations, type DestinationKey } from '../src/egress/destinations.ts';
import { eventually } from './helpers/egress.ts';

const key = (host: string, port = 80): DestinationKey => ({ route: 'anywhere', scheme: 'http', host, port, connectTimeout: undefined, reach: { exactHost: false, loopback: false, private: false } });

describe('egress destinations', () => {
  it('reuses the state of a destination, and names it host:port', async () => {
    const table = new Destinations(() => []);
    const first = table.acquire(key('a.example'))!;
    const again = table.acquire(key('a.example'))!;
    expect(again.state).toBe(first.state);
    expect(first.state.name).toBe('a.example:80');
    expect(table.acquire(key('::1', 8080))!.state.name).toBe('[::1]:8080');
    expect(table.size).toBe(2);
    await table.destroy();
  });

  it('keeps at most `max` destinations: evicts the least recently used idle one, refuses when all are in use', async () => {
    const table = new Destinations(() => [], { max: 2 });
    const a = table.acquire(key('a.example'))!;
    const b = table.acquire(key('b.example'))!;
    expect(table.acquire(key('c.example'))).toBeUndefined();
    a.release();
    const c = table.acquire(key('c.example'))!;
    expect(c).toBeDefined();
    expect(table.size).toBe(2);
    // a was evicted: it comes back as a new state.
    b.release();
    const a2 = table.acquire(key('a.example'))!;
    expect(a2.state).not.toBe(a.state);
    await table.destroy();
  });

  it('evicts by last use, not by first arrival', async () => {
    const table = new Destinations(() => [], { max: 3 });
    const [a, b, c] = ['a.example', 'b.example', 'c.example'].map((host) => table.acquire(key(host))!);
    for (const lease of [a, b, c]) lease.release();
    table.acquire(key('a.example'))!.release(); // a is now the most recently used
    table.acquire(key('d.example'))!.release(); // evicts b, the least recently used
    expect(table.acquire(key('a.example'))!.state).toBe(a.state);
    expect(table.acquire(key('c.example'))!.state).toBe(c.state);
    expect(table.acquire(key('b.example'))!.state).not.toBe(b.state);
    await table.destroy();
  });

  it('closes destinations idle for idleMs', async () => {
    const table = new Destinations(() => [], { idleMs: 200 });
    table.acquire(key('a.example'))!.release();
    const busy = table.acquire(key('b.example'))!;
    await eventually(() => (table.size === 1 ? true : undefined), 10_000);
    expect(table.acquire(key('b.example'))!.state).toBe(busy.state);
    await table.destroy();
  });
});
