/**
 * Endpoints discovered through DNS (`upstreams.NAME.discovery.dns`), as
 * Envoy's STRICT_DNS cluster does and as a Kubernetes headless Service
 * answers: the name's A and AAAA records, resolved at once and then every
 * `every`, each record an endpoint `scheme://address:port`. This module only
 * finds addresses; the registry owns the endpoints and their state (pools,
 * health, ejection), keyed by URL, so an address that stays keeps its history.
 *
 * A failed resolution (timeout, SERVFAIL, REFUSED, NXDOMAIN, no server) keeps
 * the last set: a DNS hiccup must not empty an upstream. A name that answers
 * with no address of either family (NODATA) has no endpoints: that is what
 * DNS says, as for a headless Service scaled to zero.
 */
import { Resolver } from 'node:dns/promises';
import { isIPv6 } from 'node:net';
import type { DnsDiscoveryConfig } from '../config/schema.ts';
import { log } from '../observe/log.ts';
import { discoveryErrorsTotal } from '../observe/metrics.ts';

/** What a family without records answers: not a failure. */
const NO_RECORDS = 'ENODATA';

export class DnsDiscovery {
  readonly config: DnsDiscoveryConfig;
  readonly #upstream: string;
  readonly #resolver: Resolver;
  readonly #onChange: (urls: readonly string[]) => void;
  #timer: NodeJS.Timeout | undefined;
  #last: string | undefined;
  #stopped = false;

  /** `onChange` hears each new set of endpoint URLs (sorted), the first one included. */
  constructor(upstream: string, config: DnsDiscoveryConfig, onChange: (urls: readonly string[]) => void) {
    this.#upstream = upstream;
    this.config = config;
    this.#onChange = onChange;
    // c-ares's default (5 s, 4 tries) would let one outage last a minute before it is counted.
    this.#resolver = new Resolver({ timeout: Math.max(100, Math.min(config.every, 2_000)), tries: 2 });
    if (config.servers.length > 0) this.#resolver.setServers(config.servers);
  }

  start(): void {
    void this.#round();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#resolver.cancel();
  }

  /** One resolution, then the next one `every` later (never two at once). */
  async #round(): Promise<void> {
    try {
      const urls = await this.#resolve();
      if (this.#stopped) return;
      const key = urls.join(' ');
      if (key !== this.#last) {
        log.info({ upstream: this.#upstream, name: this.config.name, endpoints: urls }, 'discovered endpoints');
        this.#onChange(urls);
        this.#last = key; // only once applied: a set that could not be (a TLS file gone) is tried again
      }
    } catch (err) {
      if (this.#stopped) return;
      discoveryErrorsTotal.inc({ upstream: this.#upstream });
      const code = (err as { code?: string }).code;
      log.warn({ upstream: this.#upstream, name: this.config.name, code, err }, 'DNS discovery failed: the last endpoints stay');
    }
    if (!this.#stopped) this.#timer = setTimeout(() => void this.#round(), this.config.every).unref();
  }

  async #resolve(): Promise<string[]> {
    const { name, port, scheme } = this.config;
    const answers = await Promise.allSettled([this.#resolver.resolve4(name), this.#resolver.resolve6(name)]);
    const addresses: string[] = [];
    for (const answer of answers) {
      if (answer.status === 'fulfilled') addresses.push(...answer.value);
      else if ((answer.reason as { code?: string }).code !== NO_RECORDS) throw answer.reason;
    }
    const urls = addresses.map((address) => `${scheme}://${isIPv6(address) ? `[${address}]` : address}:${port}`);
    return [...new Set(urls)].sort();
  }
}
