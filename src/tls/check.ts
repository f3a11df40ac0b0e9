/**
 * The config checks of the TLS keys (run by config/semantic.ts with every
 * other semantic check, so `check` and a start report them with file, line,
 * column and key path): files that are missing or do not parse, keys that
 * are not their certificate's, expired certificates, and combinations that
 * cannot work (client certificates without a CA to check them against).
 */
import { createSecureContext } from 'node:tls';
import type { Config, ListenerTlsConfig, UpstreamConfig } from '../config/schema.ts';
import type { ConfigError, PathSegment, Problem } from '../config/errors.ts';
import { tlsReloadsTotal } from '../observe/metrics.ts';
import { readCa, readKeyPair, type ReadResult } from './pem.ts';
import { normalName } from './sni.ts';

/**
 * Headers the sidecar writes itself (proxy/headers.ts) or that frame the
 * message: a client certificate header of one of these names would be
 * overwritten, or would break the request.
 */
const RESERVED_HEADERS = new Set([
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'via',
  'x-request-id',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'traceparent',
]);

/**
 * A reload refused for errors in `tls` blocks counts as a failed TLS reload
 * too (once per listener or upstream), as a refused rotation does.
 */
export function countTlsReloadFailures(errors: readonly ConfigError[]): void {
  const owners = new Map(
    errors.flatMap((error) => {
      const owner = tlsOwnerOf(error.path);
      return owner ? [[JSON.stringify(owner), owner] as const] : [];
    }),
  );
  for (const owner of owners.values()) tlsReloadsTotal.inc({ ...owner, result: 'failure' });
}

/**
 * Whose TLS files a config error is about, from its key path: the listener
 * (`ingress.tls...`) or the upstream (`upstreams.NAME.tls...`); undefined for
 * any other error.
 */
export function tlsOwnerOf(path: string): { listener: string; upstream: string } | undefined {
  if (/^ingress\.tls(?:$|[.[])/.test(path)) return { listener: 'ingress', upstream: '' };
  const upstream = /^upstreams(?:\.([A-Za-z_][A-Za-z0-9_-]*)|\[("(?:[^"\\]|\\.)*")\])\.tls(?:$|[.[])/.exec(path);
  if (!upstream) return undefined;
  return { listener: '', upstream: upstream[1] ?? (JSON.parse(upstream[2]) as string) };
}

/** Every problem of the `tls` blocks of a validated config whose paths are absolute. */
export function tlsProblems(config: Config, now: number = Date.now()): Problem[] {
  const problems: Problem[] = [];
  const tls = config.ingress?.tls;
  if (tls) problems.push(...listenerProblems(['ingress', 'tls'], tls, now));
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    if (upstream.tls) problems.push(...upstreamProblems(['upstreams', name, 'tls'], upstream, now));
  }
  return problems;
}

function listenerProblems(at: readonly PathSegment[], tls: ListenerTlsConfig, now: number): Problem[] {
  const problems = pairProblems(at, tls.cert, tls.key, tls.allowExpired, now);
  const seen = new Map<string, number>();
  tls.sni.forEach((entry, index) => {
    const entryAt = [...at, 'sni', index];
    problems.push(...pairProblems(entryAt, entry.cert, entry.key, tls.allowExpired, now));
    entry.serverNames.forEach((name, nameIndex) => {
      const key = normalName(name);
      const first = seen.get(key);
      if (first === undefined) seen.set(key, index);
      else problems.push({ path: [...entryAt, 'serverNames', nameIndex], message: `server name "${name}" is also in ${formatSni(first)}` });
    });
  });
  if (tls.ca !== undefined) problems.push(...caProblems(at, tls.ca));
  if (tls.clientAuth !== 'none' && tls.ca === undefined) {
    problems.push({ path: [...at, 'clientAuth'], message: `clientAuth: ${tls.clientAuth} needs ca (the CA file client certificates must chain to)` });
  }
  if (tls.ciphers !== undefined) {
    try {
      createSecureContext({ ciphers: tls.ciphers });
    } catch {
      problems.push({ path: [...at, 'ciphers'], message: `OpenSSL knows no cipher in "${tls.ciphers}" (see \`openssl ciphers -v\`)` });
    }
  }
  const header = tls.forwardClientCert?.toLowerCase();
  if (header !== undefined) {
    if (tls.clientAuth === 'none') {
      problems.push({ path: [...at, 'forwardClientCert'], message: 'forwardClientCert needs clientAuth: request or require (no client certificate is asked for)' });
    } else if (RESERVED_HEADERS.has(header)) {
      problems.push({ path: [...at, 'forwardClientCert'], message: `${header} is a header the sidecar sets itself: name another (e.g. x-client-cert)` });
    }
  }
  return problems;
}

function upstreamProblems(at: readonly PathSegment[], upstream: UpstreamConfig, now: number): Problem[] {
  const tls = upstream.tls!;
  const problems: Problem[] = [];
  if (tls.ca !== undefined) problems.push(...caProblems(at, tls.ca));
  if (tls.cert !== undefined && tls.key !== undefined) {
    problems.push(...pairProblems(at, tls.cert, tls.key, tls.allowExpired, now));
  } else if (tls.cert !== undefined || tls.key !== undefined) {
    const [given, missing] = tls.cert !== undefined ? ['cert', 'key'] : ['key', 'cert'];
    problems.push({ path: [...at, given], message: `a client certificate needs both cert and key: ${missing} is missing` });
  }
  const plain = upstream.discovery ? upstream.discovery.dns.scheme === 'http' : (upstream.endpoints ?? []).every((url) => url.startsWith('http:'));
  if (tls.cert !== undefined && plain) {
    problems.push({ path: [...at, 'cert'], message: 'a client certificate is presented on https:// endpoints only, and these are http://' });
  }
  return problems;
}

/**
 * The problems of one certificate and key. An expired certificate refuses a
 * start or reload (`running`) unless `allowExpired`; `check` warns either way.
 */
function pairProblems(at: readonly PathSegment[], cert: string, key: string, allowExpired: boolean, now: number): Problem[] {
  return problemsOf(at, readKeyPair(cert, key, { allowExpired: false, now }), allowExpired ? 'warning' : 'running');
}

/** The problems of a CA file at `at`.ca. */
function caProblems(at: readonly PathSegment[], file: string): Problem[] {
  return problemsOf(at, readCa(file), 'error');
}

/** Each problem at `at` plus the key of the file it is about. */
function problemsOf(at: readonly PathSegment[], result: ReadResult<unknown>, expiredSeverity: Problem['severity']): Problem[] {
  if (result.ok) return [];
  return result.problems.map((problem) => ({
    path: [...at, problem.field],
    message: problem.message,
    ...(problem.expired ? { severity: expiredSeverity } : {}),
  }));
}

function formatSni(index: number): string {
  return `ingress.tls.sni[${index}]`;
}
