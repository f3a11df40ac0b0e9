/**
 * The way into a TLS listener (STYLE 14: one front door, several protocols).
 * Each accepted connection is looked at first: a first byte of 0x16 (a TLS
 * handshake record) goes to the tls.Server of the current generation; any
 * other is plain HTTP on an HTTPS port, answered 400 "use https" and closed,
 * as NGINX does. A finished handshake is judged against `clientAuth` (a
 * refused client certificate is logged and counted, never answered: there is
 * no HTTP yet), noted (protocol, client certificate) and handed to the
 * listener by its ALPN protocol: http/1.1 goes to node:http, h2 to the
 * node:http2 server (src/h2/sessions.ts).
 */
import type { Socket } from 'node:net';
import { createServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { refuseConnection } from '../net/raw-answer.ts';
import { log } from '../observe/log.ts';
import { tlsHandshakeErrorsTotal } from '../observe/metrics.ts';
import { ProxyError } from '../core/errors.ts';
import { noteTlsConnection, type TlsConnectionInfo } from './connection.ts';
import type { ListenerTls, TlsGeneration } from './listener-tls.ts';
import { clientCertHeader, distinguishedName } from './x509.ts';

/** Where a connection goes once its handshake is done: `protocol` is what ALPN chose (http/1.1 when the client offered none). */
export type Handoff = (socket: TLSSocket, protocol: string) => void;

/** The content type byte of a TLS handshake record (RFC 8446 5.1). */
const TLS_HANDSHAKE = 0x16;

/** What a TLS socket keeps of the raw socket it took over (Node's `_parent`); its peer address is read there once the connection is gone. */
type WithParent = TLSSocket & { _parent?: Socket };

export class FrontDoor {
  readonly #tls: ListenerTls;
  readonly #handoff: Handoff;
  /** The tls.Server of the last generation seen: one per generation, so a swap is one reference and open connections keep theirs. */
  #server: TlsServer | undefined;
  #generation: TlsGeneration | undefined;

  constructor(tls: ListenerTls, handoff: Handoff) {
    this.#tls = tls;
    this.#handoff = handoff;
  }

  /** Takes a freshly accepted connection. */
  accept(raw: Socket): void {
    // Read now: Node keeps it, and it is what a failed handshake's log line needs after the socket is gone.
    void raw.remoteAddress;
    // Errors of a connection that never got further are nobody's business but its own.
    raw.on('error', ignore);
    raw.setTimeout(this.#tls.generation.handshakeTimeout, () => raw.destroy());
    const peek = (): void => {
      const chunk = raw.read() as Buffer | null;
      if (chunk === null) return void raw.once('readable', peek);
      raw.setTimeout(0);
      // Put back: the TLS socket that takes the connection over reads what is buffered first.
      raw.unshift(chunk);
      if (chunk[0] === TLS_HANDSHAKE) {
        this.#serverFor(this.#tls.generation).emit('connection', raw);
      } else {
        refuseConnection(this.#tls.listener, raw, new ProxyError('bad_request', 'this port speaks HTTPS only: use https://'), this.#tls.accessLog());
      }
    };
    raw.once('readable', peek);
  }

  #serverFor(generation: TlsGeneration): TlsServer {
    if (this.#server && this.#generation === generation) return this.#server;
    const server = createServer({
      ...generation.serverOptions,
      handshakeTimeout: generation.handshakeTimeout,
      SNICallback: (name, callback) => callback(null, generation.sni.lookup(name)),
      // No protocol in common is a failed handshake (no_application_protocol), as NGINX answers it.
      ALPNCallback: ({ protocols }) => generation.settings.alpn.find((protocol) => protocols.includes(protocol)),
    });
    server.on('secureConnection', (socket: TLSSocket) => this.#secured(socket, generation));
    server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => this.#failed(err, socket));
    this.#server = server;
    this.#generation = generation;
    return server;
  }

  #secured(socket: TLSSocket, generation: TlsGeneration): void {
    const { clientAuth, forwardClientCert } = generation.settings;
    let info: TlsConnectionInfo = { protocol: socket.getProtocol() ?? '' };
    if (clientAuth !== 'none') {
      const peer = socket.getPeerX509Certificate();
      if (!socket.authorized && (peer || clientAuth === 'require')) {
        // A certificate that does not verify is refused even when only requested (NGINX's `optional`, Envoy's default).
        return this.#refuseClient(socket, peer, String(socket.authorizationError ?? ''));
      }
      if (peer) info = { ...info, clientSubject: distinguishedName(peer.subject), ...(forwardClientCert ? { clientCertHeader: clientCertHeader(peer) } : {}) };
    }
    noteTlsConnection(socket, info);
    this.#handoff(socket, socket.alpnProtocol || 'http/1.1');
  }

  #refuseClient(socket: TLSSocket, peer: X509Certificate | undefined, why: string): void {
    const reason = peer ? 'client_certificate_invalid' : 'client_certificate_missing';
    tlsHandshakeErrorsTotal.inc({ listener: this.#tls.listener, reason });
    log.warn(
      { listener: this.#tls.listener, reason, detail: why, clientAddress: socket.remoteAddress, clientPort: socket.remotePort, subject: peer && distinguishedName(peer.subject) },
      peer ? 'client certificate refused: it does not verify against ingress.tls.ca' : 'client certificate refused: none was sent',
    );
    socket.destroy();
  }

  #failed(err: Error & { code?: string }, socket: TLSSocket): void {
    const reason = handshakeErrorReason(err.code);
    tlsHandshakeErrorsTotal.inc({ listener: this.#tls.listener, reason });
    const peer = (socket as WithParent)._parent ?? socket;
    // Debug: anyone can open a connection and send nonsense, and port scanners do.
    log.debug({ listener: this.#tls.listener, reason, code: err.code, clientAddress: peer.remoteAddress, clientPort: peer.remotePort }, `TLS handshake failed: ${err.message}`);
    socket.destroy();
  }
}

/** A failed handshake's `reason` label: a short, bounded list (OpenSSL's codes are many). */
export function handshakeErrorReason(code: string | undefined): string {
  switch (code) {
    case 'ERR_TLS_HANDSHAKE_TIMEOUT':
      return 'timeout';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset';
    case 'ERR_SSL_UNSUPPORTED_PROTOCOL':
    case 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION':
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
      return 'protocol_version';
    case 'ERR_SSL_NO_SHARED_CIPHER':
      return 'no_shared_cipher';
    case 'ERR_SSL_NO_APPLICATION_PROTOCOL':
      return 'no_application_protocol';
    case 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE':
    case 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN':
    case 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA':
    case 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED':
    case 'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR':
      // The client did not accept our certificate: worth a look after a rotation.
      return 'certificate_refused_by_client';
    default:
      return 'other';
  }
}

function ignore(): void {}
