/**
 * The certificate for the name a client asks for (SNI): an exact name first,
 * then a wildcard for one label (`*.example.com` is `api.example.com`, not
 * `example.com` or `a.b.example.com`, as certificates themselves match), else
 * none: the listener's default certificate. A map is built whole and never
 * changed: a reload builds a new one and the listener swaps the reference
 * (`server.addContext` only ever appends, so a removed name would keep its
 * old certificate).
 */
import type { SecureContext } from 'node:tls';

export class SniMap<T = SecureContext> {
  /** Exact names -> context. */
  readonly #exact: ReadonlyMap<string, T>;
  /** `example.com` of `*.example.com` -> context. */
  readonly #wildcard: ReadonlyMap<string, T>;

  private constructor(exact: ReadonlyMap<string, T>, wildcard: ReadonlyMap<string, T>) {
    this.#exact = exact;
    this.#wildcard = wildcard;
  }

  /** A map of the entries' names; a name given twice keeps its first entry (config checks refuse that anyway). */
  static of<T>(entries: Iterable<{ readonly serverNames: readonly string[]; readonly value: T }>): SniMap<T> {
    const exact = new Map<string, T>();
    const wildcard = new Map<string, T>();
    for (const { serverNames, value } of entries) {
      for (const written of serverNames) {
        const name = normalName(written);
        const [map, key] = name.startsWith('*.') ? [wildcard, name.slice(2)] : [exact, name];
        if (!map.has(key)) map.set(key, value);
      }
    }
    return new SniMap(exact, wildcard);
  }

  /** The entry for `serverName` (as the client sent it), or undefined for the default. */
  lookup(serverName: string): T | undefined {
    const name = normalName(serverName);
    const exact = this.#exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    return dot > 0 ? this.#wildcard.get(name.slice(dot + 1)) : undefined;
  }
}

/** A server name as the map keys it: lower case, without a trailing dot. */
export function normalName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}
