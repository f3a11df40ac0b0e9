/**
 * Pass-through destinations: an egress route without `upstream:` forwards to
 * the host and port the app asked for. Each destination gets an UpstreamState
 * of its own (one endpoint, one undici pool), so `proxyRequest` serves it
 * exactly like a configured upstream. The set is bounded and idle-evicted: an
 * app that talks to many hosts must not grow the sidecar without limit.
 */
import { undici } from '../upstream/undici.ts';
import { upstreamSchema } from '../config/schema.ts';
import { log } from '../observe/log.ts';
import { EndpointState, UpstreamState } from '../upstream/state.ts';
import type { Reach } from '../config/compile.ts';
import { checkedLookup, type DestinationRules } from './policy.ts';
import { authorityOf, hostPort } from './target.ts';

/** Most destinations with a live pool (Envoy's dynamic forward proxy DNS cache holds 1024 hosts). */
export const MAX_DESTINATIONS = 256;
/** A destination unused this long is closed. */
export const DESTINATION_IDLE_MS = 60_000;
/** Connect timeout when the route sets none (the upstreams' default). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 2_000;

export interface DestinationKey {
  /** The route the destination is reached through: its `upstream` label in the metrics. */
  readonly route: string;
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly port: number;
  readonly connectTimeout: number | undefined;
  /** Which special addresses the route lets the destination be (its pool's lookup checks them). */
  readonly reach: Reach;
}

/** A destination in use; `release` once the request is over. */
export interface DestinationLease {
  readonly state: UpstreamState;
  release(): void;
}

interface Entry {
  readonly state: UpstreamState;
  /** When its last lease was released (ms since the epoch): the idle sweep's clock. */
  lastUsed: number;
  /** Order of last acquire: the idle entry with the lowest is evicted first. */
  recency: number;
  /** Requests between `acquire` and `release`; an entry in use is never evicted. */
  leases: number;
}

/** One request's hold on an entry; `release` is idempotent. */
class Lease implements DestinationLease {
  readonly state: UpstreamState;
  #entry: Entry | undefined;

  constructor(entry: Entry) {
    this.state = entry.state;
    this.#entry = entry;
  }

  release(): void {
    const entry = this.#entry;
    if (!entry) return;
    this.#entry = undefined;
    entry.leases--;
    entry.lastUsed = Date.now();
  }
}

export class Destinations {
  readonly #entries = new Map<string, Entry>();
  readonly #own: DestinationRules['own'];
  readonly #max: number;
  readonly #idleMs: number;
  readonly #sweeper: NodeJS.Timeout;
  #recency = 0;

  constructor(own: DestinationRules['own'], options: { max?: number; idleMs?: number } = {}) {
    this.#own = own;
    this.#max = options.max ?? MAX_DESTINATIONS;
    this.#idleMs = options.idleMs ?? DESTINATION_IDLE_MS;
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(1_000, this.#idleMs / 2));
    this.#sweeper.unref();
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * The state for a destination, leased until the lease is released (an
   * entry in use is never evicted); undefined when the table is full of
   * destinations in use.
   *
   * A request only reads the table; it no longer deletes and re-inserts its
   * entry to keep the Map in use order (eviction scans for the lowest
   * `recency` instead, and only when the table is full).
   */
  acquire(key: DestinationKey): DestinationLease | undefined {
    const { reach } = key;
    const id = JSON.stringify([key.route, key.scheme, key.host, key.port, key.connectTimeout ?? null, reach.exactHost, reach.loopback, reach.private]);
    let entry = this.#entries.get(id);
    if (!entry) {
      if (this.#entries.size >= this.#max && !this.#evictOne()) return undefined;
      entry = { state: createState(key, this.#own), lastUsed: Date.now(), recency: 0, leases: 0 };
      this.#entries.set(id, entry);
    }
    entry.recency = ++this.#recency;
    entry.leases++;
    return new Lease(entry);
  }

  /** Closes the least recently acquired idle destination; false when every one is in use. */
  #evictOne(): boolean {
    let oldest: [string, Entry] | undefined;
    for (const [id, entry] of this.#entries) {
      if (entry.leases === 0 && busy(entry.state) === 0 && (!oldest || entry.recency < oldest[1].recency)) oldest = [id, entry];
    }
    if (!oldest) return false;
    this.#entries.delete(oldest[0]);
    closePools(oldest[1].state);
    return true;
  }

  #sweep(): void {
    const before = Date.now() - this.#idleMs;
    for (const [id, entry] of this.#entries) {
      if (entry.leases === 0 && busy(entry.state) === 0 && entry.lastUsed < before) {
        this.#entries.delete(id);
        closePools(entry.state);
      }
    }
  }

  /** Closes every pool, letting in-flight requests finish. */
  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    const closing = [...this.#entries.values()].flatMap((entry) => entry.state.endpoints.map((endpoint) => endpoint.pool.close()));
    this.#entries.clear();
    await Promise.allSettled(closing);
  }

  /** Destroys every pool at once. */
  async destroy(): Promise<void> {
    clearInterval(this.#sweeper);
    const destroying = [...this.#entries.values()].flatMap((entry) => entry.state.endpoints.map((endpoint) => endpoint.pool.destroy()));
    this.#entries.clear();
    await Promise.allSettled(destroying);
  }
}

function busy(state: UpstreamState): number {
  return state.endpoints.reduce((sum, endpoint) => sum + endpoint.inFlight, 0);
}

function closePools(state: UpstreamState): void {
  for (const endpoint of state.endpoints) {
    endpoint.pool.close().catch((err: unknown) => log.warn({ err, destination: state.name }, 'closing an egress destination pool failed'));
  }
}

/**
 * One destination as an upstream of one endpoint. Its name is `host:port`,
 * which the access log shows as `upstream`; the metrics label it with its
 * route's name instead (one series per route, however many destinations a `*`
 * route reaches, and the route still told apart from the others). The pool,
 * and the endpoint's agent (its WebSockets), connect through `checkedLookup`,
 * so every new connection is checked against the route's address rules on
 * the address it really uses.
 */
function createState(key: DestinationKey, own: DestinationRules['own']): UpstreamState {
  const url = `${key.scheme}://${authorityOf(key.scheme, key.host, key.port)}`;
  // Written as in a config file (a duration needs its unit), so the upstream defaults come from the one schema.
  const config = upstreamSchema.parse({ endpoints: [url], connectTimeout: `${key.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS}ms` });
  const lookup = checkedLookup(key.port, { ...key.reach, own });
  const pool = new undici.Pool(new URL(url).origin, {
    connections: config.connections,
    keepAliveTimeout: config.idleTimeout,
    keepAliveMaxTimeout: config.idleTimeout,
    keepAliveTimeoutThreshold: 1_000,
    headersTimeout: 0,
    bodyTimeout: 0,
    // HTTP/1.1, as the app asked: undici 8 would otherwise offer h2 by ALPN to https:// destinations.
    allowH2: false,
    connect: {
      timeout: config.connectTimeout,
      lookup,
      allowH2: false,
    },
  });
  return new UpstreamState(hostPort(key.host, key.port), config, [new EndpointState(url, pool, `egress:${url}`, { lookup })], key.route);
}
