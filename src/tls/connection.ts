/**
 * What a TLS connection was, noted once when its handshake is done, for each
 * request on it to read without asking OpenSSL again: the access log's `tls`
 * and client certificate fields, and the `forwardClientCert` header.
 */

export interface TlsConnectionInfo {
  /** The negotiated version, e.g. "TLSv1.3". */
  readonly protocol: string;
  /** The verified client certificate's subject (RFC 4514); absent without a verified one. */
  readonly clientSubject?: string;
  /** The `forwardClientCert` header value (x509.ts clientCertHeader); absent without a verified certificate or the option. */
  readonly clientCertHeader?: string;
}

/** Keyed by the socket HTTP is spoken on; gone with it. */
const connections = new WeakMap<object, TlsConnectionInfo>();

export function noteTlsConnection(socket: object, info: TlsConnectionInfo): void {
  connections.set(socket, info);
}

/** The TLS facts of the connection `socket` (a request's `req.socket`); undefined for a plain connection. */
export function tlsInfoOf(socket: object): TlsConnectionInfo | undefined {
  return connections.get(socket);
}
