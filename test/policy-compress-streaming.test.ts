/**
 * Compressed streams are not held back (issue 19): server-sent events, and
 * any stream whose upstream goes quiet, reach the client chunk by chunk. The
 * upstream here sends its next event only after the client has decoded the
 * previous one: a compressor that kept bytes back would stall the exchange
 * (and the bounded wait would fail the test).
 */
import zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';

const EVENTS = 5;

function decoder(coding: string): Transform {
  if (coding === 'gzip') return zlib.createGunzip();
  if (coding === 'br') return zlib.createBrotliDecompress();
  return zlib.createZstdDecompress();
}

describe('compress: streams flow chunk by chunk', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;
  /** Called by the test when it has decoded an event: the upstream sends the next. */
  let next: (() => void) | undefined;

  beforeAll(async () => {
    upstream = await startHttpServer((req, res) => {
      const type = req.url === '/events' ? 'text/event-stream' : 'application/x-ndjson';
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' });
      let sent = 0;
      const send = () => {
        sent++;
        res.write(type === 'text/event-stream' ? `id: ${sent}\ndata: {"tick":${sent}}\n\n` : `{"tick":${sent}}\n`);
        if (sent === EVENTS) {
          next = undefined;
          res.end();
        } else {
          next = send;
        }
      };
      send();
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: app, match: { path: / }, upstream: app, compress: { algorithms: [br, zstd, gzip], minLength: 0 } }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await upstream?.close();
  });

  /** Reads the stream, decoding as bytes come; acknowledges each tick; resolves with the ticks seen in order. */
  async function ticks(path: string, coding: string): Promise<number[]> {
    const response = await request(sidecar.url(path), { headers: { 'accept-encoding': coding } });
    expect(response.headers['content-encoding']).toBe(coding);
    const decode = decoder(coding);
    const seen: number[] = [];
    let text = '';
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stalled after ticks ${JSON.stringify(seen)}`)), 10_000);
      decode.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        for (let match; (match = /"tick":(\d+)/.exec(text)); ) {
          seen.push(Number(match[1]));
          text = text.slice(match.index + match[0].length);
          next?.();
        }
      });
      decode.on('end', () => {
        clearTimeout(timer);
        resolve();
      });
      decode.on('error', reject);
    });
    response.body.pipe(decode);
    await done;
    return seen;
  }

  it('delivers server-sent events one by one, in every coding', async () => {
    for (const coding of ['gzip', 'br', 'zstd']) {
      expect(await ticks('/events', coding)).toEqual([1, 2, 3, 4, 5]);
    }
  });

  it('delivers each line of a stream whose upstream waits between lines', async () => {
    expect(await ticks('/lines', 'gzip')).toEqual([1, 2, 3, 4, 5]);
  });
});
