/**
 * The scenarios (issue 7, restated by issue 22). Each names the peers it
 * compares and the subject (the sidecar) whose ratios to them are reported.
 * Throughput scenarios forward to the NGINX upstream when NGINX is installed;
 * `upstream: 'node'` ones to the node:http upstream (uploads, JSON).
 */

/** What a scenario exercises, and so which port of a peer it uses. */
export type Kind = 'ingress' | 'forward' | 'connect' | 'static' | 'https' | 'compress' | 'h2' | 'grpc' | 'latency';

export interface Scenario {
  name: string;
  title: string;
  kind: Kind;
  /** Request path (ingress/static); the upstream path for forward requests. */
  path: string;
  /** Connections (HTTP) or tunnels (CONNECT). */
  connections: number;
  /** Body bytes every response must carry (checked once per peer before load); for a compressed answer, at most this many. */
  expectBytes: number;
  /** Request headers of every request (wrk -H). */
  headers?: Readonly<Record<string, string>>;
  /** The Content-Encoding every answer must have (checked before load). */
  encoding?: string;
  unit: 'req/s' | 'MB/s';
  /** Peers in table order. */
  peers: string[];
  /** The peer whose ratio to each other peer is reported. */
  subject: string;
  /** Each request on a new connection (`Connection: close`): for HTTPS, a TCP and TLS handshake per request. */
  newConnections?: boolean;
  /** HTTP/2 (h2load -m): concurrent streams per connection. */
  streams?: number;
  /** The node:http upstream rather than the throughput one (peers reach it by their `ingressNode` port). */
  upstream?: 'node';
  /** POST bodies of this many bytes (uploads). */
  bodyBytes?: number;
  /** Latency scenarios: the constant rate over all connections (req/s), and the client that holds it. */
  rate?: number;
  client?: 'hey' | 'paced';
}

const INGRESS_PEERS = ['direct', 'nginx', 'undici-ceiling', 'fastify-http-proxy', 'http-proxy', 'sidecar'];
/** The c50 run also measures the floor (bench/peers/undici-floor.ts), so the targets can say which ratios any node:http + undici proxy could reach. */
const INGRESS_PEERS_WITH_FLOOR = ['direct', 'nginx', 'haproxy', 'undici-ceiling', 'undici-floor', 'fastify-http-proxy', 'http-proxy', 'sidecar'];
/** Latency under a steady load: added over direct, for the sidecar against the floor and the two C proxies. */
const LATENCY_PEERS = ['direct', 'undici-floor', 'sidecar', 'nginx', 'haproxy'];
const KiB = 1024;
const MiB = 1024 * KiB;

export const SCENARIOS: readonly Scenario[] = [
  { name: 'ingress-small-c1', title: 'ingress reverse proxy, "hello", 1 connection', kind: 'ingress', path: '/', connections: 1, expectBytes: 5, unit: 'req/s', peers: INGRESS_PEERS, subject: 'sidecar' },
  { name: 'ingress-small-c50', title: 'ingress reverse proxy, "hello", 50 connections', kind: 'ingress', path: '/', connections: 50, expectBytes: 5, unit: 'req/s', peers: INGRESS_PEERS_WITH_FLOOR, subject: 'sidecar' },
  // Issue 22: latency at a fixed rate well under saturation, 20 connections, client on CPU 1; p50/p99/p99.9 added over direct.
  // hey paces each connection with its own ticker, all started together: requests come in bursts of 20.
  { name: 'latency-2k', title: 'latency at 2,000 req/s over 20 connections (hey -q 100 -c 20: bursts of 20 every 10 ms)', kind: 'latency', path: '/', connections: 20, rate: 2000, client: 'hey', expectBytes: 5, unit: 'req/s', peers: LATENCY_PEERS, subject: 'sidecar' },
  { name: 'latency-5k', title: 'latency at 5,000 req/s over 20 connections (hey -q 250 -c 20: bursts of 20 every 4 ms)', kind: 'latency', path: '/', connections: 20, rate: 5000, client: 'hey', expectBytes: 5, unit: 'req/s', peers: LATENCY_PEERS, subject: 'sidecar' },
  // The same rate with requests evenly spaced (clients/paced.ts): what one request alone waits in each proxy.
  { name: 'latency-2k-paced', title: 'latency at 2,000 req/s over 20 connections, evenly spaced (one request every 0.5 ms, clients/paced.ts)', kind: 'latency', path: '/', connections: 20, rate: 2000, client: 'paced', expectBytes: 5, unit: 'req/s', peers: LATENCY_PEERS, subject: 'sidecar' },
  { name: 'ingress-1mib-c10', title: 'ingress reverse proxy, 1 MiB response, 10 connections', kind: 'ingress', path: '/1mib', connections: 10, expectBytes: 1024 * KiB, unit: 'req/s', peers: INGRESS_PEERS, subject: 'sidecar' },
  // Issue 22: 1 MiB request bodies streamed through the proxy to the node upstream, which reads and discards them.
  { name: 'uploads-1mib-c10', title: 'uploads: 1 MiB POST bodies streamed to the node upstream (read and discarded), 10 connections', kind: 'ingress', path: '/upload', connections: 10, expectBytes: 5, bodyBytes: MiB, upstream: 'node', unit: 'req/s', peers: ['direct', 'nginx', 'undici-floor-node', 'sidecar-upload'], subject: 'sidecar-upload' },
  { name: 'egress-absolute-c50', title: 'egress forward proxy, absolute-form GET "hello", 50 connections', kind: 'forward', path: '/', connections: 50, expectBytes: 5, unit: 'req/s', peers: ['direct', 'squid', 'sidecar'], subject: 'sidecar' },
  { name: 'egress-connect-bulk', title: 'egress CONNECT tunnels, bulk download, 4 tunnels', kind: 'connect', path: '', connections: 4, expectBytes: 0, unit: 'MB/s', peers: ['direct', 'squid', 'sidecar'], subject: 'sidecar' },
  { name: 'static-1k-c50', title: 'static file, 1 KiB, 50 connections', kind: 'static', path: '/static/1k.bin', connections: 50, expectBytes: KiB, unit: 'req/s', peers: ['nginx', 'send', 'sidecar'], subject: 'sidecar' },
  { name: 'static-1m-c10', title: 'static file, 1 MiB, 10 connections', kind: 'static', path: '/static/1m.bin', connections: 10, expectBytes: 1024 * KiB, unit: 'req/s', peers: ['nginx', 'send', 'sidecar'], subject: 'sidecar' },
  // Scaling: one process against two workers, both free to use either CPU, which the upstream and wrk share.
  { name: 'workers-c50', title: 'sidecar workers: 2 vs 1, both unpinned (load shares the 2 CPUs), "hello", 50 connections', kind: 'ingress', path: '/', connections: 50, expectBytes: 5, unit: 'req/s', peers: ['sidecar-1w', 'sidecar-2w'], subject: 'sidecar-2w' },
  // TLS offload (issue 17): NGINX and the sidecar serve the same certificate (ECDSA P-256) and proxy to the same upstream.
  { name: 'https-keepalive-c50', title: 'HTTPS ingress (TLS offload), keep-alive, "hello", 50 connections', kind: 'https', path: '/', connections: 50, expectBytes: 5, unit: 'req/s', peers: ['nginx', 'sidecar-tls'], subject: 'sidecar-tls' },
  { name: 'https-handshakes-c10', title: 'HTTPS ingress, a new connection and TLS handshake per request (req/s = handshakes/s), 10 connections', kind: 'https', path: '/', connections: 10, expectBytes: 5, unit: 'req/s', peers: ['nginx', 'sidecar-tls'], subject: 'sidecar-tls', newConnections: true },
  // Tracing's cost: the closing note gives 1% and 100% sampled against off, from this one run (targets.ts tracingNote).
  { name: 'tracing-c50', title: 'sidecar tracing off vs sampled 1% vs 100% (OTLP/HTTP to a local sink), "hello", 50 connections', kind: 'ingress', path: '/', connections: 50, expectBytes: 5, unit: 'req/s', peers: ['sidecar-trace-off', 'sidecar-trace-1pct', 'sidecar-trace-100pct'], subject: 'sidecar-trace-off' },
  // HTTP/2 (issue 18), h2load: many streams over few connections. HTTPS with ALPN h2 to the same HTTP/1.1 upstream,
  // and gRPC unary calls over h2c to an h2c gRPC upstream (NGINX: http2 + proxy_pass, and grpc_pass).
  { name: 'h2-tls-c4-m25', title: 'HTTP/2 over TLS (ALPN h2), "hello", 4 connections x 25 streams', kind: 'h2', path: '/', connections: 4, streams: 25, expectBytes: 5, unit: 'req/s', peers: ['nginx', 'sidecar-tls'], subject: 'sidecar-tls' },
  { name: 'grpc-unary-c4-m25', title: 'gRPC unary over h2c to an h2c gRPC upstream, 4 connections x 25 streams', kind: 'grpc', path: '/bench.Echo/Unary', connections: 4, streams: 25, expectBytes: 10, unit: 'req/s', peers: ['nginx', 'sidecar-grpc'], subject: 'sidecar-grpc' },
  { name: 'accesslog-c50', title: 'sidecar access log on vs off, "hello", 50 connections', kind: 'ingress', path: '/', connections: 50, expectBytes: 5, unit: 'req/s', peers: ['sidecar-nolog', 'sidecar-log'], subject: 'sidecar-log' },
  // Issue 19: compression of a proxied 64 KiB JSON answer at the same level as NGINX's (gzip 5, brotli 4).
  { name: 'compress-gzip-64k', title: 'compression, 64 KiB JSON proxied, gzip level 5, 10 connections', kind: 'compress', path: '/json64k', connections: 10, expectBytes: 64 * KiB, headers: { 'accept-encoding': 'gzip' }, encoding: 'gzip', unit: 'req/s', peers: ['nginx', 'sidecar-compress'], subject: 'sidecar-compress' },
  { name: 'compress-br-64k', title: 'compression, 64 KiB JSON proxied, brotli level 4, 10 connections', kind: 'compress', path: '/json64k', connections: 10, expectBytes: 64 * KiB, headers: { 'accept-encoding': 'br' }, encoding: 'br', unit: 'req/s', peers: ['nginx', 'sidecar-compress'], subject: 'sidecar-compress' },
  // What a rate limit costs: the same route with a limit that never trips (key client-ip) against none, two fresh processes.
  { name: 'ratelimit-c50', title: 'rate-limited route (never over) vs the same route unlimited, "hello", 50 connections', kind: 'ingress', path: '/', connections: 50, expectBytes: 5, unit: 'req/s', peers: ['sidecar-unlimited', 'sidecar-ratelimit'], subject: 'sidecar-ratelimit' },
];

/** Scenarios whose name contains any of the comma-separated filters. */
export function selectScenarios(filter: string | undefined): Scenario[] {
  if (!filter) return [...SCENARIOS];
  const wanted = filter.split(',').map((s) => s.trim()).filter(Boolean);
  return SCENARIOS.filter((s) => wanted.some((w) => s.name.includes(w)));
}
