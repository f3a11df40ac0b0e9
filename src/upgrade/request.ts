/**
 * The upstream side of an HTTP/1.1 Upgrade (a WebSocket): one connection of
 * its own to one endpoint (an upgraded connection never goes back to a pool),
 * the request head, and the endpoint's answer. TLS for an `https://` endpoint
 * comes from the endpoint's options (upstream/tls-options.ts), never from the
 * client's Host; a pass-through egress destination passes the `lookup` that
 * checks where the connection really goes (egress/policy.ts).
 *
 * node:http parses the answer (a 101 hands over the socket; anything else is
 * an ordinary response). The socket is made here and handed over through
 * `createConnection`, so no Agent is involved: an Agent would take the TLS
 * server name from the Host header.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as netConnect, type LookupFunction, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { EndpointState } from '../upstream/registry.ts';
import { ProxyError, fromUpstreamError } from '../proxy/errors.ts';

export interface UpgradeRequest {
  readonly endpoint: EndpointState;
  /** Path and query sent upstream. */
  readonly path: string;
  /** Flat [name, value, ...] list with Host, Connection and Upgrade (headers.ts, `keepUpgrade`). */
  readonly headers: string[];
  /** Resolves and checks the host (policy.checkedLookup); absent for configured upstream endpoints. */
  readonly lookup?: LookupFunction;
  readonly connectTimeout: number;
  /** Time allowed until the answer's head (ms; 0 = none). */
  readonly headTimeout: number;
}

/**
 * How the upgrade request ended:
 * - `switched`: 101; `socket` is the upstream connection, `head` what came after the answer's head.
 * - `answered`: any other answer (its body is still to be read from `response`).
 * - `failed`: no answer: connect failure, TLS failure, reset, timeout, a refused destination; or cancelled.
 */
export type UpgradeOutcome =
  | { readonly kind: 'switched'; readonly response: IncomingMessage; readonly socket: Socket; readonly head: Buffer }
  | { readonly kind: 'answered'; readonly response: IncomingMessage }
  | { readonly kind: 'failed'; readonly error: ProxyError };

export interface PendingUpgrade {
  readonly outcome: Promise<UpgradeOutcome>;
  /** Stops it (the client left): the outcome is then `failed`. */
  cancel(): void;
}

/** Sends the upgrade request to `request.endpoint`. */
export function requestUpgrade(request: UpgradeRequest): PendingUpgrade {
  const { endpoint } = request;
  const url = new URL(endpoint.url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const tls = endpoint.tls;
  const port = Number(url.port) || (tls ? 443 : 80);
  const socket: Socket = tls
    ? tlsConnect({ host, port, lookup: request.lookup, ...tls, ALPNProtocols: ['http/1.1'] })
    : netConnect({ host, port, lookup: request.lookup });
  socket.setNoDelay(true);
  const connectTimer = setTimeout(() => {
    socket.destroy(new ProxyError('upstream_connect_failed', `no connection to ${endpoint.shownAuthority} within ${request.connectTimeout}ms`));
  }, request.connectTimeout);
  socket.once(tls ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer));
  socket.once('close', () => clearTimeout(connectTimer));

  const req = httpRequest({ method: 'GET', path: request.path, headers: request.headers, createConnection: () => socket });
  let headTimer: NodeJS.Timeout | undefined;
  if (request.headTimeout > 0) {
    headTimer = setTimeout(() => req.destroy(new ProxyError('upstream_timeout')), request.headTimeout);
  }
  let settled = false;
  const outcome = new Promise<UpgradeOutcome>((resolve) => {
    const settle = (value: UpgradeOutcome) => {
      clearTimeout(headTimer);
      if (settled) return;
      settled = true;
      resolve(value);
    };
    req.once('upgrade', (response: IncomingMessage, upgraded: Socket, head: Buffer) => {
      if (response.statusCode === 101) return settle({ kind: 'switched', response, socket: upgraded, head });
      upgraded.destroy();
      settle({ kind: 'failed', error: new ProxyError('upstream_bad_response', `the upstream answered ${response.statusCode} with an Upgrade`) });
    });
    req.once('response', (response: IncomingMessage) => settle({ kind: 'answered', response }));
    req.on('error', (err: Error) => {
      if (settled) return;
      socket.destroy();
      settle({ kind: 'failed', error: fromUpstreamError(err) });
    });
  });
  req.end();
  return {
    outcome,
    cancel: () => {
      if (!settled) req.destroy(new ProxyError('upstream_reset', 'the client left before the upgrade was answered'));
    },
  };
}
