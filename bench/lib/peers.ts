/**
 * The peers: every proxy under comparison is one separate process started
 * from here, pinned to the proxy CPU, and checked for readiness with a bounded
 * wait. A peer that cannot start throws an Error whose message is the skip
 * reason; the harness reports it and goes on with the others.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { haproxyConf, nginxConf, sidecarGrpcYaml, sidecarYaml, squidConf, type BenchCertificate, type SidecarPolicies } from './configs.ts';
import { freePort, probe, waitHttp, waitUntil } from './net.ts';
import { NODE, start, tail, type Proc } from './procs.ts';
import type { ToolStatus } from './tools.ts';

/** What the harness knows when it starts peers. */
export interface Env {
  tmp: string;
  /** Document root that holds static/1k.bin and static/1m.bin. */
  www: string;
  /** The upstream of the throughput scenarios: NGINX when installed, else the node upstream. */
  upstreamPort: number;
  /** The node:http upstream (servers/upstream.ts): JSON for compression, uploads; the same port as upstreamPort without NGINX. */
  nodeUpstreamPort: number;
  tcpSourcePort: number;
  tools: ToolStatus;
  /** CPU list for the proxy under test. */
  cpu?: string;
  readyMs: number;
  /** The certificate of the HTTPS peers, or why there is none (absent: none was made, as in bench:ab). */
  tls?: BenchCertificate | string;
  /** The OTLP sink (servers/otlp-sink.ts) that sidecars with tracing export to. */
  otlpPort?: number;
  /** The h2c gRPC upstream (servers/grpc-upstream.ts), when a gRPC scenario runs. */
  grpcUpstreamPort?: number;
}

/** A running peer and the ports of the roles it offers. */
export interface Peer {
  name: string;
  /** The process whose memory is sampled (absent for the direct baseline). */
  proc?: Proc;
  /** Reverse proxy port (GET / and /1mib reach the upstream). */
  ingress?: number;
  /** Reverse proxy port to the node upstream (scenarios with `upstream: 'node'`: uploads). */
  ingressNode?: number;
  /** Port that serves /static/1k.bin and /static/1m.bin. */
  static?: number;
  /** Forward proxy port (absolute-form requests and CONNECT). */
  forward?: number;
  /** HTTPS reverse proxy port (TLS offload of the same upstream). */
  https?: number;
  /** HTTP/2 over TLS (ALPN h2) to the same upstream. */
  h2?: number;
  /** gRPC over h2c to the gRPC upstream. */
  grpc?: number;
  /** Reverse proxy port that compresses answers, and the codings it can produce. */
  compress?: number;
  encodings?: readonly string[];
  /** Extra files of interest, truncated between runs (the sidecar's access log). */
  truncate?: string[];
  /** RSS of the process tree after every peer was ready, before any load (run.ts). */
  startRssBytes?: number;
}

export interface PeerSpec {
  name: string;
  /** One line for the report. */
  about: string;
  start(env: Env): Promise<Peer>;
}

const ROOT = new URL('../..', import.meta.url).pathname;
const BENCH = join(ROOT, 'bench');

function check(reason: string | undefined, logs: string[]): void {
  if (reason === undefined) return;
  const details = logs.map((file) => tail(file, 6)).filter(Boolean).join('\n');
  throw new Error(details ? `${reason}\n${details}` : reason);
}

async function nodePeer(env: Env, name: string, script: string, extra: string): Promise<{ proc: Proc; port: number }> {
  const port = await freePort();
  const log = join(env.tmp, `${name}.log`);
  const proc = start(name, NODE, [join(BENCH, script), String(port), extra], log, { cpu: env.cpu, cwd: ROOT });
  return { proc, port };
}

/** A Node reverse proxy to the throughput upstream, or (`toNode`) to the node upstream, where it serves only `upstream: 'node'` scenarios. */
function proxyPeer(name: string, about: string, script: string, toNode = false): PeerSpec {
  return {
    name,
    about,
    async start(env) {
      const { proc, port } = await nodePeer(env, name, script, String(toNode ? env.nodeUpstreamPort : env.upstreamPort));
      check(await waitHttp(port, '/', proc, env.readyMs, 200), [proc.logFile]);
      return toNode ? { name, proc, ingressNode: port } : { name, proc, ingress: port };
    },
  };
}

export const direct: PeerSpec = {
  name: 'direct',
  about: 'no proxy: the load generator talks to the upstream (or the TCP source) itself',
  async start(env) {
    return { name: 'direct', ingress: env.upstreamPort, ingressNode: env.nodeUpstreamPort };
  },
};

export const undiciCeiling = proxyPeer('undici-ceiling', 'bare undici Pool.stream reverse proxy (bench/peers/undici-ceiling.ts): the Node ceiling', 'peers/undici-ceiling.ts');
export const undiciFloor = proxyPeer('undici-floor', 'bare undici dispatch reverse proxy (bench/peers/undici-floor.ts): what node:http and undici cost before any feature', 'peers/undici-floor.ts');
export const undiciFloorNode = proxyPeer('undici-floor-node', 'the same floor, a process of its own in front of the node upstream (uploads)', 'peers/undici-floor.ts', true);
export const fastifyProxy = proxyPeer('fastify-http-proxy', '@fastify/http-proxy on fastify, defaults, logger off', 'peers/fastify-proxy.ts');
export const httpProxy = proxyPeer('http-proxy', 'http-proxy with a keep-alive agent behind node:http', 'peers/http-proxy.ts');

export const sendStatic: PeerSpec = {
  name: 'send',
  about: 'the send module behind node:http (what express.static uses)',
  async start(env) {
    const { proc, port } = await nodePeer(env, 'send', 'peers/send-static.ts', env.www);
    check(await waitHttp(port, '/static/1k.bin', proc, env.readyMs, 200), [proc.logFile]);
    return { name: 'send', proc, static: port };
  },
};

export const nginx: PeerSpec = {
  name: 'nginx',
  about: 'NGINX proxy_pass with upstream keepalive, 1 worker, buffered access log; static with sendfile; HTTPS with the sidecar-tls certificate',
  async start(env) {
    const bin = env.tools.nginx.path;
    if (!bin) throw new Error(`nginx ${env.tools.nginx.missing}`);
    const dir = join(env.tmp, 'nginx');
    mkdirSync(dir, { recursive: true });
    const tls = typeof env.tls === 'object' ? env.tls : undefined;
    const ports = {
      proxy: await freePort(),
      static: await freePort(),
      upstream: env.upstreamPort,
      nodeUpstream: env.nodeUpstreamPort,
      proxyNode: await freePort(),
      compress: await freePort(),
      https: tls ? await freePort() : undefined,
      grpc: env.grpcUpstreamPort ? await freePort() : undefined,
      grpcUpstream: env.grpcUpstreamPort,
    };
    const conf = join(dir, 'nginx.conf');
    const brotli = env.tools.nginx.brotliModule;
    writeFileSync(conf, nginxConf(dir, env.www, ports, brotli, tls));
    const log = join(dir, 'nginx.out');
    const proc = start('nginx', bin, ['-p', dir, '-e', join(dir, 'nginx-error.log'), '-c', conf], log, { cpu: env.cpu });
    const logs = [log, join(dir, 'nginx-error.log')];
    check(await waitHttp(ports.proxy, '/', proc, env.readyMs, 200), logs);
    check(await waitHttp(ports.static, '/static/1k.bin', proc, env.readyMs, 200), logs);
    return {
      name: 'nginx',
      proc,
      ingress: ports.proxy,
      ingressNode: ports.proxyNode,
      static: ports.static,
      https: ports.https,
      h2: ports.https,
      grpc: ports.grpc,
      compress: ports.compress,
      encodings: brotli ? ['gzip', 'br'] : ['gzip'],
    };
  },
};

export const haproxy: PeerSpec = {
  name: 'haproxy',
  about: 'HAProxy mode http, one thread, keep-alive to the upstream (http-reuse always), no log',
  async start(env) {
    const bin = env.tools.haproxy.path;
    if (!bin) throw new Error(`haproxy ${env.tools.haproxy.missing}`);
    const dir = join(env.tmp, 'haproxy');
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const conf = join(dir, 'haproxy.cfg');
    writeFileSync(conf, haproxyConf(dir, port, env.upstreamPort));
    const log = join(dir, 'haproxy.out');
    // -db: stay in the foreground, so the process group is ours to stop.
    const proc = start('haproxy', bin, ['-db', '-f', conf], log, { cpu: env.cpu });
    check(await waitHttp(port, '/', proc, env.readyMs, 200), [log]);
    return { name: 'haproxy', proc, ingress: port };
  },
};

export const squid: PeerSpec = {
  name: 'squid',
  about: 'Squid forward proxy, no cache, loopback only, access log via its log daemon',
  async start(env) {
    const bin = env.tools.squid.path;
    if (!bin) throw new Error(`squid ${env.tools.squid.missing}`);
    const dir = join(env.tmp, 'squid');
    // Squid drops root for its effective user, which must still write its logs here.
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o777);
    const port = await freePort();
    const conf = join(dir, 'squid.conf');
    writeFileSync(conf, squidConf(dir, port));
    const log = join(dir, 'squid.out');
    const proc = start('squid', bin, ['-N', '-f', conf], log, { cpu: env.cpu });
    const target = `http://127.0.0.1:${env.upstreamPort}/`;
    check(await waitUntil(`squid forwarding ${target}`, async () => (await probe(port, target, 1000)).status === 200, proc, env.readyMs), [log, join(dir, 'squid-cache.log')]);
    return { name: 'squid', proc, forward: port };
  },
};

/**
 * `workers` > 1 and `pinned: false` are for the scaling scenario: a sidecar
 * given both CPUs (which the upstream and the load generator use too).
 */
function sidecarPeer(name: string, access: boolean, workers = 1, pinned = true, about?: string, tracing?: number): PeerSpec {
  return {
    name,
    about: about ?? (workers > 1
      ? `the realistic sidecar config with workers: ${workers}, not pinned`
      : !pinned
        ? 'the realistic sidecar config, one process, not pinned'
        : access
          ? 'the sidecar (src/cli.ts) with the realistic config: access log on (to a file), metrics, retry, breaker'
          : 'the same sidecar config with log.access: false'),
    start: (env) => launchSidecar(env, name, { access, workers, pinned, tracing }),
  };
}

export interface SidecarLaunch {
  access: boolean;
  workers?: number;
  pinned?: boolean;
  policies?: SidecarPolicies;
  /** The checkout whose src/cli.ts runs (default: this one); bench/ab.ts passes git worktrees. */
  root?: string;
  /** HTTPS on ingress with the bench certificate: the listener then speaks TLS only. */
  tls?: BenchCertificate;
  /** Tracing on with this sampleRatio, exporting to env.otlpPort. */
  tracing?: number;
  /** The app upstream's port (default env.upstreamPort); a sidecar sent to the node upstream serves only its scenarios. */
  upstreamPort?: number;
}

/** Starts a sidecar from `root` with the realistic config on fresh ports and waits for /readyz. */
export async function launchSidecar(env: Env, name: string, launch: SidecarLaunch): Promise<Peer> {
  const root = launch.root ?? ROOT;
  const cli = join(root, 'src/cli.ts');
  if (!existsSync(cli)) throw new Error(`${cli} does not exist`);
  const ports = {
    admin: await freePort(),
    ingress: await freePort(),
    egress: await freePort(),
    upstream: launch.upstreamPort ?? env.upstreamPort,
    tcpSource: env.tcpSourcePort,
  };
  const dir = join(env.tmp, name);
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'sidecar.yaml');
  if (launch.tracing !== undefined && env.otlpPort === undefined) throw new Error('tracing needs the OTLP sink (env.otlpPort)');
  const tracing = launch.tracing === undefined ? undefined : { sampleRatio: launch.tracing, endpoint: `http://127.0.0.1:${env.otlpPort}/v1/traces` };
  writeFileSync(config, sidecarYaml(ports, join(env.www, 'static'), launch.access, launch.workers ?? 1, launch.policies, tracing, launch.tls));
  // JSON log lines (access log included) go to a file, so the terminal stays readable.
  const stdout = join(dir, 'sidecar-stdout.log');
  const stderr = join(dir, 'sidecar-stderr.log');
  // Started as `npm start` starts it: the same V8 flag and compile cache (package.json).
  // `check` first fills the cache, as the Docker image's build does: a start that has to
  // compile (type stripping included) holds about 20 MB more RSS for its whole life,
  // which made the first sidecar of a run after a code change look heavier than the rest.
  const sidecarEnv = { ...process.env, NODE_COMPILE_CACHE: join(root, 'node_modules/.cache/sidecar-compile') };
  try {
    execFileSync(NODE, [cli, 'check', '--config', config], { cwd: root, env: sidecarEnv, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  } catch (err) {
    const { stdout: out, stderr: errText, signal } = err as { stdout?: Buffer; stderr?: Buffer; signal?: string };
    throw new Error(`${cli} check failed${signal ? ` (${signal}: over 30 s?)` : ''}:\n${String(out ?? '')}${String(errText ?? '')}`.trim());
  }
  const proc = start(name, NODE, ['--max-semi-space-size=8', cli, '--config', config], stderr, {
    cpu: launch.pinned === false ? undefined : env.cpu,
    cwd: root,
    stdoutFile: stdout,
    env: sidecarEnv,
  });
  check(await waitHttp(ports.admin, '/readyz', proc, env.readyMs, 200), [stderr, stdout]);
  if (launch.tls) return { name, proc, https: ports.ingress, h2: ports.ingress, forward: ports.egress, truncate: [stdout] };
  const compress = launch.policies?.compress ? { compress: ports.ingress, encodings: ['gzip', 'br'] } : {};
  const toNode = launch.upstreamPort !== undefined && launch.upstreamPort !== env.upstreamPort ? { ingressNode: ports.ingress } : {};
  return { name, proc, ingress: ports.ingress, static: ports.ingress, forward: ports.egress, truncate: [stdout], ...compress, ...toNode };
}

/** The realistic config plus a policy on the app route (issue 19), a process used only for its scenario; `toNode`: its app upstream is the node upstream. */
function policyPeer(name: string, about: string, policies: SidecarPolicies, toNode = false): PeerSpec {
  return { name, about, start: (env) => launchSidecar(env, name, { access: true, policies, upstreamPort: toNode ? env.nodeUpstreamPort : undefined }) };
}

export const sidecar = sidecarPeer('sidecar', true);
export const sidecarNoLog = sidecarPeer('sidecar-nolog', false);
/**
 * The log-on side of the access-log comparison: a process of its own, so both
 * sides have the same history (the main sidecar is warm from every scenario
 * before; against it a fresh sidecar-nolog lost by 16%, the opposite of what
 * two fresh processes show).
 */
export const sidecarLog = sidecarPeer('sidecar-log', true, 1, true, 'the realistic sidecar config (access log on), a process used only to compare with sidecar-nolog');
export const sidecarCompress = policyPeer('sidecar-compress', 'the realistic sidecar config with compress on the app route (gzip 5, br 4), to the node upstream (its JSON)', { compress: true }, true);
/** The uploads scenario: 1 MiB request bodies streamed to the node upstream, which reads and discards them. */
export const sidecarUpload = policyPeer('sidecar-upload', 'the realistic sidecar config to the node upstream, a process used only for the uploads scenario', {}, true);
export const sidecarUnlimited = policyPeer('sidecar-unlimited', 'the realistic sidecar config, a process used only to compare with sidecar-ratelimit', {});
export const sidecarRateLimit = policyPeer('sidecar-ratelimit', 'the realistic sidecar config with a rateLimit (key client-ip) on the app route that never trips', { rateLimit: true });
/** The tracing comparison: three fresh processes of the realistic config, tracing off, on at 1% and on at 100%. */
export const sidecarTraceOff = sidecarPeer('sidecar-trace-off', true, 1, true, 'the realistic sidecar config, tracing off (a process used only for the tracing comparison)');
export const sidecarTrace1 = sidecarPeer('sidecar-trace-1pct', true, 1, true, 'the same with tracing on, sampleRatio 0.01, exporting to a local OTLP sink', 0.01);
export const sidecarTrace100 = sidecarPeer('sidecar-trace-100pct', true, 1, true, 'the same with tracing on, sampleRatio 1 (every request a span)', 1);
export const sidecarUnpinned = sidecarPeer('sidecar-1w', true, 1, false);

/** The realistic config with `ingress.tls`: the subject of the HTTPS scenarios. */
export const sidecarTls: PeerSpec = {
  name: 'sidecar-tls',
  about: 'the realistic sidecar config with ingress.tls (the same certificate as NGINX): TLS offload',
  async start(env) {
    if (typeof env.tls !== 'object') throw new Error(env.tls ?? 'no certificate was made for this run');
    return launchSidecar(env, 'sidecar-tls', { access: true, tls: env.tls });
  },
};
export const sidecarTwoWorkers = sidecarPeer('sidecar-2w', true, 2, false);

/** h2c on ingress to the h2c gRPC upstream: the subject of the gRPC scenario. */
export const sidecarGrpc: PeerSpec = {
  name: 'sidecar-grpc',
  about: 'the sidecar with h2c on ingress and an h2c gRPC upstream (protocol: h2c), access log on',
  async start(env) {
    if (env.grpcUpstreamPort === undefined) throw new Error('no gRPC upstream in this run');
    const ports = { admin: await freePort(), ingress: await freePort(), grpcUpstream: env.grpcUpstreamPort };
    const dir = join(env.tmp, 'sidecar-grpc');
    mkdirSync(dir, { recursive: true });
    const config = join(dir, 'sidecar.yaml');
    writeFileSync(config, sidecarGrpcYaml(ports));
    const stdout = join(dir, 'sidecar-stdout.log');
    const stderr = join(dir, 'sidecar-stderr.log');
    const proc = start('sidecar-grpc', NODE, ['--max-semi-space-size=8', join(ROOT, 'src/cli.ts'), '--config', config], stderr, { cpu: env.cpu, cwd: ROOT, stdoutFile: stdout });
    check(await waitHttp(ports.admin, '/readyz', proc, env.readyMs, 200), [stderr, stdout]);
    return { name: 'sidecar-grpc', proc, grpc: ports.ingress, truncate: [stdout] };
  },
};

/** Every peer, in start order. */
export const ALL_PEERS: readonly PeerSpec[] = [
  direct,
  nginx,
  squid,
  undiciCeiling,
  undiciFloor,
  undiciFloorNode,
  haproxy,
  fastifyProxy,
  httpProxy,
  sendStatic,
  sidecar,
  sidecarNoLog,
  sidecarLog,
  sidecarCompress,
  sidecarUpload,
  sidecarUnlimited,
  sidecarRateLimit,
  sidecarTraceOff,
  sidecarTrace1,
  sidecarTrace100,
  sidecarUnpinned,
  sidecarTwoWorkers,
  sidecarTls,
  sidecarGrpc,
];
