/**
 * Real upstreams that misbehave on cue, for the resilience tests, and a
 * reader for the sidecar's Prometheus metrics. Always 127.0.0.1, port 0.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'undici';
import { startHttpServer, type TestServer } from './servers.ts';
import { startTcpServer } from './raw.ts';

/** What one request gets. */
export type Behaviour =
  | 'ok'
  | 'reset' // connection reset before any response byte
  | 'stall' // never answers
  | 'midbody-reset' // head and part of the body, then a reset
  | { readonly status: number; readonly headers?: Record<string, string> }
  | { readonly slowHeadMs: number };

export interface ScriptedServer extends TestServer {
  /** Requests received (whatever their fate). */
  readonly hits: () => number;
  /** Bodies of the requests received, in order. */
  readonly bodies: string[];
  /** Changes what the next requests get: the next one gets `script[0]`. */
  setScript(script: readonly Behaviour[]): void;
}

/**
 * An HTTP server whose n-th request gets `script[n]` (the last entry repeats).
 * `ok` answers 200 with the body `ok <name>`.
 */
export async function scriptedServer(name: string, initial: readonly Behaviour[]): Promise<ScriptedServer> {
  let script = initial;
  let hits = 0;
  let scriptStart = 0;
  const bodies: string[] = [];
  const server = await startHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const behaviour = script[Math.min(hits - scriptStart, script.length - 1)];
    hits++;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString());
      act(req, res, behaviour, name);
    });
  });
  return Object.assign(server, {
    hits: () => hits,
    bodies,
    setScript: (next: readonly Behaviour[]) => {
      script = next;
      scriptStart = hits;
    },
  });
}

function act(req: IncomingMessage, res: ServerResponse, behaviour: Behaviour, name: string): void {
  if (behaviour === 'ok') return void res.end(`ok ${name}`);
  if (behaviour === 'reset') return void req.socket.resetAndDestroy();
  if (behaviour === 'stall') return;
  if (behaviour === 'midbody-reset') {
    res.writeHead(200, { 'content-length': '100' });
    res.write('partial');
    setTimeout(() => req.socket.resetAndDestroy(), 20);
    return;
  }
  if ('slowHeadMs' in behaviour) {
    setTimeout(() => res.end(`ok ${name}`), behaviour.slowHeadMs);
    return;
  }
  res.writeHead(behaviour.status, behaviour.headers);
  res.end(`status ${behaviour.status} from ${name}`);
}

/**
 * A raw HTTP/1.1 server that answers the first request on each connection
 * (keep-alive) and resets the connection when a second request arrives on it:
 * an upstream that closed an idle connection just as the proxy reused it.
 */
export async function reuseResetServer(): Promise<{ port: number; url: string; served: () => number; resets: () => number; close(): Promise<void> }> {
  let served = 0;
  let resets = 0;
  const tcp = await startTcpServer((socket) => {
    let seen = 0;
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      while (pending.includes('\r\n\r\n')) {
        pending = pending.slice(pending.indexOf('\r\n\r\n') + 4); // bodiless requests only
        seen++;
        if (seen === 1) {
          served++;
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok');
        } else {
          resets++;
          socket.resetAndDestroy();
          return;
        }
      }
    });
  });
  return { port: tcp.port, url: `http://127.0.0.1:${tcp.port}`, served: () => served, resets: () => resets, close: tcp.close };
}

/** The value of one sample of the sidecar's /metrics (0 when absent). */
export async function metricValue(metricsUrl: string, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await request(metricsUrl)).body.text();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const labelText = line.slice(name.length + 1, line.lastIndexOf('}'));
    const present = Object.entries(labels).every(([key, value]) => labelText.includes(`${key}="${value}"`));
    if (present) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/** Polls `check` every `everyMs` until it holds, at most `tries` times; returns whether it held. */
export async function eventually(check: () => Promise<boolean> | boolean, tries = 100, everyMs = 50): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return false;
}

/** GET /upstreams of the sidecar. */
export async function upstreamsView(adminUrl: string): Promise<Record<string, { breaker: string; endpoints: Array<{ url: string; healthy: boolean; ejected: boolean; inFlight: number }> }>> {
  const body = (await (await request(adminUrl)).body.json()) as { upstreams: Record<string, never> };
  return body.upstreams;
}
