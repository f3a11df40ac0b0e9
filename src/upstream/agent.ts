/**
 * The node:http Agent of one endpoint: the connections the sidecar opens to
 * it outside its undici pool, for WebSocket upgrades (http-proxy makes them
 * through this agent, upgrade/attempt.ts). It carries what the pool's
 * connector carries: the upstream's TLS options (tls-options.ts) and, for an
 * egress pass-through destination, the lookup that checks the addresses a
 * name resolves to (egress/policy.ts checkedLookup).
 *
 * No keep-alive: an upgraded connection leaves the agent for good, and one
 * whose upgrade was refused closes after the answer.
 */
import type { Agent as HttpAgent } from 'node:http';
import { http } from '../net/node-http.ts';
import { Agent as HttpsAgent } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { UpstreamTlsOptions } from './tls-options.ts';

/** An http.Agent for an `http://` endpoint (`tls` undefined), an https.Agent for an `https://` one. */
export function endpointAgent(tls: UpstreamTlsOptions | undefined, lookup: LookupFunction | undefined): HttpAgent {
  const connect = lookup ? { lookup } : {};
  if (!tls) return new http.Agent(connect);
  // Node's Agent derives a missing servername from the request's Host header, here the client's
  // Host; it keeps one from its own options, '' included. So an IP endpoint without
  // tls.serverName gets '': no SNI (an IP is not allowed there, DEP0123), the certificate
  // checked against the IP.
  return new HttpsAgent({ ...connect, ...tls, servername: tls.servername ?? '' });
}
