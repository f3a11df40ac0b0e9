/**
 * An HTTP/2 request stream as the proxy core reads a request (net/client.ts).
 * The head is translated once (RFC 9113 8.3.1 and 8.2.3): `:method` and
 * `:path` become the method and target, `:authority` the Host (a `host`
 * field that names another authority is refused: two readings of one
 * request), pseudo-headers never reach the header list an HTTP/1.1 upstream
 * gets, and the cookie fields, which HTTP/2 may split, are one again, joined
 * with "; ". The body is the stream's readable side.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { ClientRequest } from '../net/client.ts';

/** HEADERS with END_STREAM: a request without a body (RFC 9113 6.2). */
const END_STREAM = 0x1;

export class H2Request implements ClientRequest {
  readonly method: string;
  url: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly socket: Socket;
  readonly httpVersion = '2';
  readonly hasBody: boolean;
  readonly stream: ServerHttp2Stream;
  /** Why the head cannot be served as it is (a conflicting Host); checked by the listener like an HTTP/1.1 head. */
  readonly problem: string | undefined;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: readonly string[], socket: Socket) {
    this.stream = stream;
    this.socket = socket;
    this.method = String(headers[':method'] ?? 'GET');
    this.url = String(headers[':path'] ?? '');
    this.hasBody = (flags & END_STREAM) === 0;
    const own: IncomingHttpHeaders = {};
    const rawOwn: string[] = [];
    let cookie: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i];
      if (name.charCodeAt(0) === 0x3a) continue; // ':' pseudo-header
      if (name === 'cookie') {
        cookie = cookie === undefined ? raw[i + 1] : `${cookie}; ${raw[i + 1]}`;
        continue;
      }
      rawOwn.push(name, raw[i + 1]);
    }
    if (cookie !== undefined) rawOwn.push('cookie', cookie);
    for (const name in headers) {
      if (name.charCodeAt(0) !== 0x3a) own[name] = headers[name] as string & string[];
    }
    const authority = headers[':authority'];
    const host = headers.host;
    this.problem =
      typeof authority === 'string' && typeof host === 'string' && host.toLowerCase() !== authority.toLowerCase()
        ? `the Host field (${host}) names another authority than :authority (${authority})`
        : undefined;
    if (typeof authority === 'string') {
      own.host = authority;
      // The Host an HTTP/1.1 upstream gets comes from here too (headers.ts rebuilds it): keep one, the authority.
      if (host === undefined) rawOwn.unshift('host', authority);
    }
    this.headers = own;
    this.rawHeaders = rawOwn;
  }

  get complete(): boolean {
    return this.stream.readableEnded;
  }

  pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    return this.stream.pipe(destination, options);
  }

  unpipe(destination?: NodeJS.WritableStream): this {
    this.stream.unpipe(destination);
    return this;
  }

  resume(): this {
    this.stream.resume();
    return this;
  }
}
