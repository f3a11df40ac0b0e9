/**
 * A small authoritative DNS server for tests: UDP on 127.0.0.1, port 0. It
 * answers A queries for the names it holds with their current addresses
 * (changed by the test while the sidecar runs), AAAA queries for them with
 * no record (NODATA), other names with NXDOMAIN; or fails every query
 * (SERVFAIL) or ignores them (a server that times out) when told to.
 */
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';
import { upstreamsView } from './misbehave.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './sidecar.ts';

export type DnsMode = 'answer' | 'servfail' | 'drop';

export interface TestDnsServer {
  readonly port: number;
  /** `127.0.0.1:PORT`, for `discovery.dns.servers`. */
  readonly address: string;
  /** Sets the A records of `name` (an empty list: the name exists without addresses). */
  set(name: string, addresses: readonly string[]): void;
  /** Forgets `name`: queries for it get NXDOMAIN. */
  forget(name: string): void;
  mode: DnsMode;
  /** Queries received, by type ('A', 'AAAA', or the number). */
  readonly queries: Record<string, number>;
  close(): Promise<void>;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;
const RCODE = { noError: 0, serverFailure: 2, nameError: 3 } as const;

export async function startDnsServer(): Promise<TestDnsServer> {
  const socket: Socket = createSocket('udp4');
  const records = new Map<string, readonly string[]>();
  const queries: Record<string, number> = {};
  const server: TestDnsServer = {
    port: 0,
    address: '',
    mode: 'answer',
    queries,
    set: (name, addresses) => void records.set(name.toLowerCase().replace(/\.$/, ''), [...addresses]),
    forget: (name) => void records.delete(name.toLowerCase().replace(/\.$/, '')),
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (query, peer) => {
    const question = readQuestion(query);
    if (!question) return;
    const typeName = question.type === TYPE_A ? 'A' : question.type === TYPE_AAAA ? 'AAAA' : String(question.type);
    queries[typeName] = (queries[typeName] ?? 0) + 1;
    if (server.mode === 'drop') return;
    const addresses = records.get(question.name);
    let rcode: number = RCODE.noError;
    if (server.mode === 'servfail') rcode = RCODE.serverFailure;
    else if (addresses === undefined) rcode = RCODE.nameError;
    const answers = rcode === RCODE.noError && question.type === TYPE_A ? addresses! : [];
    socket.send(answer(query, question.end, rcode, answers), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  return Object.assign(server, { port, address: `127.0.0.1:${port}` });
}

/** The first question of a query: its name (lower case, no trailing dot), type, and where the question section ends. */
function readQuestion(query: Buffer): { name: string; type: number; end: number } | undefined {
  if (query.length < 12 || query.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let offset = 12;
  while (offset < query.length) {
    const length = query[offset];
    if (length === 0) break;
    if (length > 63) return undefined; // no compression in a question we sent ourselves
    labels.push(query.toString('latin1', offset + 1, offset + 1 + length));
    offset += 1 + length;
  }
  if (offset + 5 > query.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: query.readUInt16BE(offset + 1), end: offset + 5 };
}

/** A response to `query`: its id and question, `rcode`, and one A record per address (TTL 0, so nothing caches it). */
function answer(query: Buffer, questionEnd: number, rcode: number, addresses: readonly string[]): Buffer {
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // id
  const recursionDesired = query.readUInt16BE(2) & 0x0100;
  header.writeUInt16BE(0x8000 | 0x0400 | recursionDesired | 0x0080 | rcode, 2); // response, authoritative, RA
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(addresses.length, 6);
  const records = addresses.map((address) => {
    const record = Buffer.alloc(16);
    record.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
    record.writeUInt16BE(TYPE_A, 2);
    record.writeUInt16BE(1, 4); // IN
    record.writeUInt32BE(0, 6); // TTL
    record.writeUInt16BE(4, 10);
    address.split('.').forEach((part, index) => record.writeUInt8(Number(part), 12 + index));
    return record;
  });
  return Buffer.concat([header, query.subarray(12, questionEnd), ...records]);
}

/** One server per loopback address, all on the same port (DNS discovery gives every endpoint one port). */
export interface LoopbackFleet {
  readonly port: number;
  /** Requests each address has received so far. */
  served(address: string): number;
  /** Connections open at each address now. */
  open(address: string): number;
  close(): Promise<void>;
}

/** Binds an HTTP server answering "hello from ADDRESS" on each of `addresses` (127.0.0.x), on one shared free port. */
export async function startLoopbackFleet(addresses: readonly string[]): Promise<LoopbackFleet> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const servers = new Map<string, { server: Server; served: number; open: number }>();
    try {
      let port = 0;
      for (const address of addresses) {
        const entry = { server: createServer(), served: 0, open: 0 };
        entry.server.on('request', (_req, res) => {
          entry.served++;
          res.end(`hello from ${address}`);
        });
        entry.server.on('connection', (socket) => {
          entry.open++;
          socket.on('close', () => entry.open--);
        });
        servers.set(address, entry);
        await new Promise<void>((resolve, reject) => {
          entry.server.once('error', reject);
          entry.server.listen(port, address, () => resolve());
        });
        port = (entry.server.address() as AddressInfo).port;
      }
      return {
        port,
        served: (address) => servers.get(address)?.served ?? 0,
        open: (address) => servers.get(address)?.open ?? 0,
        close: () => closeAll(servers.values()),
      };
    } catch {
      await closeAll(servers.values()); // the port was taken on another address: try another one
    }
  }
  throw new Error(`no free port on all of ${addresses.join(', ')}`);
}

async function closeAll(entries: Iterable<{ server: Server }>): Promise<void> {
  await Promise.all(
    [...entries].map(
      ({ server }) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
}

/** What a discovery test runs: the DNS server, the upstream fleet, and a sidecar whose upstream `pay` discovers `pay.test`. */
export interface DiscoveryRig {
  readonly dns: TestDnsServer;
  readonly fleet: LoopbackFleet;
  readonly running: RunningSidecar;
  /** http://ADDRESS:PORT of a fleet member, as /upstreams shows it. */
  url(address: string): string;
  /** The endpoint URLs /upstreams shows for `pay`, sorted. */
  urls(): Promise<string[]>;
}

/**
 * Starts a DNS server holding `pay.test` = `initial`, a fleet on `addresses`
 * and an in-process sidecar routing ingress `/` to upstream `pay`, discovered
 * every 100ms from that server (`extra` YAML is added under `upstreams`).
 * Everything is closed after the test.
 */
export function discoveryRig(): (addresses: readonly string[], initial: readonly string[], extra?: string) => Promise<DiscoveryRig> {
  const closing: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closing.splice(0).reverse()) await close();
  });
  return async (addresses, initial, extra = '') => {
    const dns = await startDnsServer();
    closing.push(() => dns.close());
    const fleet = await startLoopbackFleet(addresses);
    closing.push(() => fleet.close());
    dns.set('pay.test', initial);
    const running = await startSidecar(`${TEST_BASE}
upstreams:
  pay:
    discovery: { dns: { name: pay.test., port: ${fleet.port}, every: 100ms, servers: ["${dns.address}"] } }
${extra}
ingress:
  listen: 127.0.0.1:0
  routes: [ { match: { path: / }, upstream: pay } ]
`);
    closing.push(() => running.close());
    const view = running.admin('/upstreams');
    return {
      dns,
      fleet,
      running,
      url: (address) => `http://${address}:${fleet.port}`,
      urls: async () => (await upstreamsView(view)).pay.endpoints.map((endpoint) => endpoint.url).sort(),
    };
  };
}
