/**
 * A blind CONNECT tunnel: connect to the destination within the connect
 * timeout, then bytes both ways with backpressure (pipe pauses the side that
 * reads while the other side's buffer is full). A half-close is passed on (a
 * client that sends FIN still gets the answer), a tunnel idle for
 * `tunnelIdleTimeout` is closed, and the byte counts go to the access log and
 * `sidecar_tunnel_bytes_total` as they flow.
 */
import { connect, type LookupFunction, type Socket } from 'node:net';
import type { Exchange } from '../observe/exchange.ts';
import { tunnelBytesTotal } from '../observe/metrics.ts';
import { ProxyError, fromUpstreamError } from '../proxy/errors.ts';
import { hostPort } from './target.ts';

const upBytes = tunnelBytesTotal.labels({ direction: 'up' });
const downBytes = tunnelBytesTotal.labels({ direction: 'down' });

export interface TunnelTarget {
  readonly host: string;
  readonly port: number;
  /** Resolves and checks the host (policy.checkedLookup); absent for configured upstream endpoints. */
  readonly lookup?: LookupFunction;
  readonly connectTimeout: number;
}

/**
 * Connects `client` (already answered `200 Connection Established`) to
 * `target`, sends `first` (the bytes peeked to tell TLS from HTTP), and
 * pipes. `done` is called once, when both sockets are closed.
 */
export function openTunnel(
  client: Socket,
  target: TunnelTarget,
  first: Buffer | undefined,
  idleTimeout: number,
  exchange: Exchange,
  done: () => void,
): void {
  const upstream = connect({ host: target.host, port: target.port, lookup: target.lookup, allowHalfOpen: true, noDelay: true });
  exchange.endpoint = hostPort(target.host, target.port);
  let connected = false;
  let closed = 0;
  const onClosed = () => {
    if (++closed < 2) return;
    if (exchange.status === 0) exchange.status = 499; // the client left before the destination answered
    done();
  };
  client.once('close', onClosed);
  upstream.once('close', onClosed);

  const connectTimer = setTimeout(() => {
    upstream.destroy(new ProxyError('upstream_connect_failed', `no connection to ${exchange.endpoint} within ${target.connectTimeout}ms`));
  }, target.connectTimeout);

  upstream.once('error', (err) => {
    clearTimeout(connectTimer);
    if (!connected) {
      const error = fromUpstreamError(err);
      exchange.error = error.code;
      exchange.status = error.status;
    } else if (exchange.error === undefined) {
      exchange.aborted = true;
    }
    client.destroy();
  });
  client.on('error', () => {
    exchange.aborted = true;
    upstream.destroy();
  });
  // The client left before the destination answered the connect.
  client.once('close', () => {
    if (!connected) upstream.destroy();
  });

  upstream.once('connect', () => {
    clearTimeout(connectTimer);
    connected = true;
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    exchange.status = 200;
    if (first && first.length > 0) {
      exchange.bytesIn += first.length;
      upBytes.inc(first.length);
      upstream.write(first);
    }
    client.on('data', (chunk: Buffer) => {
      exchange.bytesIn += chunk.length;
      upBytes.inc(chunk.length);
    });
    upstream.on('data', (chunk: Buffer) => {
      exchange.bytesOut += chunk.length;
      downBytes.inc(chunk.length);
    });
    // pipe() passes a FIN on (end: true) and keeps the other direction open (allowHalfOpen on both).
    client.pipe(upstream);
    upstream.pipe(client);
    const idle = () => {
      client.destroy();
      upstream.destroy();
    };
    if (idleTimeout > 0) {
      client.setTimeout(idleTimeout, idle);
      upstream.setTimeout(idleTimeout, idle);
    }
    // One side gone for good: finish writing to the other, then close it.
    upstream.once('close', (hadError) => (hadError ? client.destroy() : client.destroySoon()));
    client.once('close', (hadError) => (hadError ? upstream.destroy() : upstream.destroySoon()));
    client.resume();
  });
}
