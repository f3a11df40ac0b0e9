/**
 * Peer: @fastify/http-proxy (reply-from over undici) with its defaults and
 * logging off. Usage: `node bench/peers/fastify-proxy.ts LISTEN_PORT UPSTREAM_PORT`.
 */
import proxy from '@fastify/http-proxy';
import Fastify from 'fastify';

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
const app = Fastify({ logger: false, keepAliveTimeout: 65_000 });
await app.register(proxy, { upstream: `http://127.0.0.1:${upstreamPort}` });
await app.listen({ port: listenPort, host: '127.0.0.1' });
process.on('SIGTERM', () => process.exit(0));
