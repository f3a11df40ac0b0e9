/**
 * Accept-Encoding (RFC 9110 12.5.3) against the content codings a server can
 * give, with q-values: `br;q=0` refuses br, `*` stands for every coding not
 * named, `x-gzip` is gzip, and among codings of equal weight the server's
 * order decides (Caddy's `prefer`, NGINX's fixed order). A small function
 * rather than `negotiator`: that package ranks by the client's order on a
 * tie, where a server wants its own (br before gzip), and it would be one
 * more dependency for twenty lines.
 */

/** Content codings the sidecar can produce or serve. */
export const CODINGS = ['br', 'zstd', 'gzip'] as const;
export type Coding = (typeof CODINGS)[number];

/** Weights given in a header: coding (lower case) -> q. */
function weights(header: string): Map<string, number> {
  const q = new Map<string, number>();
  for (const item of header.split(',')) {
    const semicolon = item.indexOf(';');
    const name = (semicolon === -1 ? item : item.slice(0, semicolon)).trim().toLowerCase();
    if (!name) continue;
    const coding = name === 'x-gzip' ? 'gzip' : name;
    let weight = 1;
    if (semicolon !== -1) {
      for (const param of item.slice(semicolon + 1).split(';')) {
        const match = /^\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*$/i.exec(param);
        // A malformed q makes the item unusable rather than weight 1: never send what the client did not ask for.
        weight = match ? Number(match[1]) : Number.NaN;
      }
    }
    // Named twice: the lower weight, so a refusal is never overridden.
    if (!Number.isNaN(weight)) q.set(coding, Math.min(weight, q.get(coding) ?? Infinity));
  }
  return q;
}

/**
 * The codings of `offered` (in the server's order of preference) that the
 * header accepts, best first. No header, or none acceptable: empty (the
 * identity answer, which every client takes).
 */
export function acceptedCodings(header: string | string[] | undefined, offered: readonly Coding[]): Coding[] {
  if (header === undefined) return [];
  const q = weights(Array.isArray(header) ? header.join(',') : header);
  if (q.size === 0) return [];
  const star = q.get('*') ?? 0;
  return offered
    .map((coding, order) => ({ coding, order, weight: q.get(coding) ?? star }))
    .filter((entry) => entry.weight > 0)
    .sort((a, b) => b.weight - a.weight || a.order - b.order)
    .map((entry) => entry.coding);
}

/**
 * The one coding to answer with (the best of acceptedCodings), or undefined.
 * Remembers its last answer: one client, or a fleet of one browser, sends the
 * same header again and again.
 */
export class CodingChooser {
  readonly #offered: readonly Coding[];
  #lastHeader: string | undefined = undefined;
  #lastChoice: Coding | undefined = undefined;

  constructor(offered: readonly Coding[]) {
    this.#offered = offered;
  }

  choose(header: string | string[] | undefined): Coding | undefined {
    if (header === undefined) return undefined;
    if (typeof header === 'string' && header === this.#lastHeader) return this.#lastChoice;
    const choice = acceptedCodings(header, this.#offered)[0];
    if (typeof header === 'string') {
      this.#lastHeader = header;
      this.#lastChoice = choice;
    }
    return choice;
  }
}
