/**
 * A WebSocket through egress to a pass-through destination given by name is
 * checked on the address its connection really uses, as the destination's
 * requests are: a `*` route does not reach loopback (egress/policy.ts), so
 * `ws://localhost:PORT` is 403 destination_denied there, while a route that
 * names `localhost` exactly reaches it. The check rides on the lookup of the
 * destination's agent, the one http-proxy connects through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { absoluteFormAgent, attachEchoServer, upgrade } from './helpers/websocket.ts';

describe('egress WebSockets to a destination by name', () => {
  let named: TestServer;
  let other: TestServer;
  const echoes: Array<ReturnType<typeof attachEchoServer>> = [];
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    named = await startHttpServer((_req, res) => res.end('plain'));
    other = await startHttpServer((_req, res) => res.end('plain'));
    echoes.push(attachEchoServer(named.server), attachEchoServer(other.server));
    sidecar = await startSidecar(`${TEST_BASE}
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: exact, match: { host: localhost, ports: [${named.port}] } }
    - { name: any, match: { host: "*" } }
`);
  });
  afterAll(async () => {
    await sidecar.close();
    for (const echo of echoes) echo.wss.close();
    await Promise.all([named.close(), other.close()]);
  });

  it('reaches localhost through a route that names it exactly', async () => {
    const result = await upgrade(`ws://localhost:${named.port}/exact`, { agent: absoluteFormAgent(sidecar.egressPort!) });
    if (result.kind !== 'open') throw new Error(`upgrade not open: ${JSON.stringify(result)}`);
    expect(result.hello).toBe('hello /exact');
    result.ws.close();
  });

  it('refuses localhost through a * route, checked on the resolved address: 403 destination_denied', async () => {
    const result = await upgrade(`ws://localhost:${other.port}/any`, { agent: absoluteFormAgent(sidecar.egressPort!) });
    expect(result).toMatchObject({ kind: 'answered', status: 403, error: 'destination_denied' });
    if (result.kind === 'answered') expect(result.body).toMatch(/loopback/);
    expect(echoes[1].requests).toHaveLength(0);
  });
});
