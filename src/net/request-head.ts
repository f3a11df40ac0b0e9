/**
 * What a listener refuses in a request head before any handler sees it, for
 * the cases Node's parser lets through (its own refusals arrive as
 * 'clientError', see raw-answer.ts). A proxy that passes on a head two
 * servers can read differently is a request-smuggling vector, so the
 * sidecar answers these itself, in its own format (SPEC "Answers the
 * sidecar gives itself"), and closes the connection.
 *
 * Runs on every request: one pass over the raw header names and no
 * allocation when the head is fine.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ListenerName } from '../config/compile.ts';
import { Exchange } from '../observe/exchange.ts';
import { ProxyError } from '../core/errors.ts';
import { refuse, sendError } from './error-answer.ts';
import { requestIdOf } from '../proxy/headers.ts';
import { pathOf } from '../proxy/route.ts';
import type { ObservedResponse } from './observed-response.ts';

/**
 * Where a refused head is recorded: the proxy listeners log and count it like
 * any request the parser rejects (an access line, `sidecar_requests_total`
 * with no route, `sidecar_bad_requests_total`); the admin port does not.
 */
export interface HeadRecord {
  readonly listener: ListenerName;
  /** log.access of the live config. */
  readonly accessLog: () => boolean;
}

/**
 * Why the head of `req` is refused, or undefined. `requireHost`: an HTTP/1.1
 * request without Host is 400 (RFC 9112 3.2; not inside a CONNECT tunnel,
 * where the destination is the tunnel's).
 */
export function headProblem(req: IncomingMessage, requireHost: boolean): ProxyError | undefined {
  const coding = req.headers['transfer-encoding'];
  if (coding !== undefined) {
    // RFC 9112 6.1: HTTP/1.0 has no transfer codings; a front end that ignores one reads another body length.
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return new ProxyError('bad_request', 'Transfer-Encoding in an HTTP/1.0 request');
    // Node's parser accepts `gzip, chunked` (or two lines) and hands on the coded body as if it were plain.
    if (!onlyChunked(coding)) return new ProxyError('not_implemented', `transfer coding not supported: ${coding} (only chunked)`);
  }
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    // RFC 9112 3.2: more than one Host is 400. Node keeps the first, another server may take the last.
    if (isHost(name) && ++hosts > 1) {
      return new ProxyError('bad_request', 'more than one Host header');
    }
  }
  if (hosts === 0 && requireHost && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) {
    return new ProxyError('bad_request', 'an HTTP/1.1 request needs a Host header');
  }
  return undefined;
}

/** `Host` in any case, compared without making a lower-case copy. */
function isHost(name: string): boolean {
  return (
    name.length === 4 &&
    (name.charCodeAt(0) | 0x20) === 0x68 && // h
    (name.charCodeAt(1) | 0x20) === 0x6f && // o
    (name.charCodeAt(2) | 0x20) === 0x73 && // s
    (name.charCodeAt(3) | 0x20) === 0x74 // t
  );
}

/**
 * Node's `shouldUpgradeCallback` for a listener that takes upgrades: an
 * Upgrade offer is taken only for a protocol other than `h2c`. `Upgrade: h2c`
 * (what `curl --http2 http://...` sends) is an offer a server may ignore
 * (RFC 9110 7.8; RFC 9113 3.1 deprecates it): the request is then served as
 * plain HTTP/1.1, and `upgrade` / `http2-settings` are not forwarded
 * (headers.ts). Otherwise Node hands it to the 'upgrade' handler, which took
 * it for a WebSocket upgrade: an empty reply on a WebSocket route, 404 elsewhere.
 */
export function upgradeWanted(req: IncomingMessage): boolean {
  const offer = req.headers.upgrade;
  if (offer === undefined) return false;
  for (const token of offer.split(',')) {
    const protocol = token.trim().toLowerCase();
    if (protocol !== '' && protocol !== 'h2c') return true;
  }
  return false;
}

/**
 * Whether a Transfer-Encoding value is exactly `chunked` (case aside), the only
 * transfer coding the sidecar relays: any other would be dropped with the
 * hop-by-hop header while the coded bytes went on.
 */
export function onlyChunked(value: string | string[]): boolean {
  return value === 'chunked' || (typeof value === 'string' && value.trim().toLowerCase() === 'chunked');
}

/**
 * Admits `req` or answers it with its head problem (false: answered). The
 * connection closes after such an answer: what follows a refused head cannot
 * be trusted to be the next request.
 */
export function admitHead(req: IncomingMessage, res: ObservedResponse | ServerResponse, requireHost: boolean, record?: HeadRecord): boolean {
  // An Upgrade offer served as a plain request (h2c; any offer where nobody takes upgrades): Node's parser
  // stops at the offer and drops what was pipelined behind it, so the client must send that again, elsewhere.
  if (req.headers.upgrade !== undefined) res.shouldKeepAlive = false;
  const problem = headProblem(req, requireHost);
  if (!problem) return true;
  res.shouldKeepAlive = false;
  if (!record || !('observer' in res)) {
    sendError(res, problem, { 'x-request-id': requestIdOf(req.headers) });
    return false;
  }
  // The response's close finishes the record (observed-response.ts), with the client's address and the status.
  const exchange = new Exchange(record.listener, requestIdOf(req.headers), req.method ?? '', '', pathOf(req.url ?? ''), record.accessLog());
  res.observer = exchange;
  exchange.protocol = req.httpVersion;
  refuse(res, exchange, problem);
  return false;
}
