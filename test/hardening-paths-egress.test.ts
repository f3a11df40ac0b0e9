/**
 * Hostile paths on egress: a route with `path: /public/` must not let
 * `/public/../secret` through, whichever request form carries it
 * (absolute-form, origin-form with Host, origin-form inside CONNECT), and
 * what the upstream gets is exactly the path that was matched. Raw bytes, so
 * that no client normalises the path first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { parseRawResponse, rawExchange, type RawResponse } from './helpers/raw.ts';
import { openConnect, readAll } from './helpers/egress.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

type Form = 'absolute' | 'origin' | 'connect';
const FORMS: readonly Form[] = ['absolute', 'origin', 'connect'];

describe('egress: every request form is matched on the normalised path it is forwarded with', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;
  const seen: string[] = [];

  beforeAll(async () => {
    upstream = await startHttpServer((req, res) => {
      seen.push(req.url ?? '');
      req.resume();
      res.end(`got ${req.url}`);
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  files: { endpoints: [${upstream.url}] }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: public, match: { host: files.internal, path: /public/ }, upstream: files }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await upstream?.close();
  });

  /** `GET path` to files.internal in the given form; the status and the whole answer. */
  async function send(form: Form, path: string): Promise<RawResponse> {
    const head = (target: string) => `GET ${target} HTTP/1.1\r\nHost: files.internal\r\nConnection: close\r\n\r\n`;
    let text: string;
    if (form === 'connect') {
      const tunnel = await openConnect(sidecar.egressPort!, 'files.internal:80');
      expect(tunnel.status).toBe(200);
      const answer = readAll(tunnel.socket);
      tunnel.socket.write(head(path));
      text = await answer;
    } else {
      text = await rawExchange(sidecar.egressPort!, head(form === 'absolute' ? `http://files.internal${path}` : path));
    }
    return parseRawResponse(text);
  }

  for (const form of FORMS) {
    it(`${form}: a path that leaves /public/ after normalisation is denied`, async () => {
      const before = seen.length;
      for (const path of ['/public/../secret', '/public/%2e%2e/secret', '/public/.%2E/secret', '/public//..//secret', '/public/x/../../secret']) {
        const answer = await send(form, path);
        expect(answer.status, `${form} ${path}`).toBe(403);
        expect(answer.headers['x-sidecar-error'], `${form} ${path}`).toBe('destination_denied');
      }
      expect(seen.slice(before)).toEqual([]);
    });

    it(`${form}: the upstream gets the path that was matched`, async () => {
      const answer = await send(form, '/public/./a//b/../c%7e?q=/../x');
      expect(answer.status).toBe(200);
      expect(answer.body).toBe('got /public/a/c~?q=/../x');
    });

    it(`${form}: a path above the root is 400 bad_request`, async () => {
      const answer = await send(form, '/public/../../secret');
      expect(answer.status).toBe(400);
      expect(answer.headers['x-sidecar-error']).toBe('bad_request');
    });
  }
});
