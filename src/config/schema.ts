/**
 * The one schema of sidecar.yaml. Types, defaults, validation messages and the
 * JSON Schema for editors all come from here, so a key documented here is a key
 * that works. Every object is strict: an unknown key is an error, because a typo
 * must never be silently ignored.
 */
import { Resolver } from 'node:dns';
import { z } from 'zod';
import { DURATION_PATTERN, parseDuration, parseListen, parseSize, unitless } from './units.ts';
import { parseProxyEntry } from '../net/trusted-proxies.ts';
import { DEFAULT_TYPES, ZSTD_SUPPORTED } from '../policy/compression.ts';

/** "250ms", "2s", "1m", "1h" (or 0) -> milliseconds. Numbers are let in only to say what to write instead. */
export const duration = z
  .union([z.string(), z.number()])
  .transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === undefined) {
      const bare = unitless(value);
      const message = bare === undefined
        ? `not a duration: ${JSON.stringify(value)} (write e.g. 250ms, 2s, 1m, 1h)`
        : `a duration needs a unit: write ${bare}s or ${bare}ms`;
      ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    }
    return ms;
  })
  .meta({ description: 'A duration such as 250ms, 2s, 1m, 1h (a number needs a unit; 0 may stand alone).' });

/** "64KiB", "1MiB", "10MB" or a number of bytes -> bytes. */
export const size = z
  .union([z.string(), z.number()])
  .transform((value, ctx) => {
    const bytes = parseSize(value);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a size: ${JSON.stringify(value)} (write e.g. 512, 64KiB, 1MiB)` });
      return z.NEVER;
    }
    return bytes;
  })
  .meta({ description: 'A size such as 512, 64KiB, 1MiB, 10MB (a bare number is bytes).' });

/** "host:port" as a listener address. */
export const listenAddress = z
  .string()
  .refine((value) => parseListen(value) !== undefined, {
    message: 'not a listen address (write host:port, e.g. 127.0.0.1:8080 or [::1]:8080)',
  })
  .meta({ description: 'host:port to listen on, e.g. 127.0.0.1:8080.' });

const httpUrl = z
  .string()
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.pathname === '/' && !url.search && !url.username;
    } catch {
      return false;
    }
  }, { message: 'not an endpoint URL (write http://host:port or https://host:port, without a path)' });

const HTTP_METHOD = /^[A-Z][A-Z-]*$/;
const method = z.string().regex(HTTP_METHOD, { message: 'not an HTTP method (upper case, e.g. GET)' });

const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { message: 'not a valid header name' });

const regexSource = z.string().refine((value) => {
  try {
    new RegExp(value);
    return true;
  } catch {
    return false;
  }
}, { message: 'not a valid regular expression' });

const hostPattern = z
  .string()
  .regex(/^(\*|\*\.[a-zA-Z0-9.-]+|[a-zA-Z0-9.-]+|\[[0-9a-fA-F:.]+\]|[0-9a-fA-F:]+)$/, {
    message: 'not a host pattern (write an exact name, *.suffix or *)',
  });

/** What a route matches on; every given key must match. */
export const matchSchema = z.strictObject({
  host: hostPattern.optional().meta({ description: 'Host (without port): exact, *.suffix or *.' }),
  ports: z.array(z.number().int().min(1).max(65535)).min(1).optional().meta({ description: 'Destination ports (egress) or Host ports.' }),
  path: z.string().startsWith('/', { message: 'must start with /' }).optional().meta({ description: 'Path prefix.' }),
  pathRegex: regexSource.optional().meta({ description: 'Regular expression the path must match.' }),
  methods: z.array(method).min(1).optional(),
  headers: z
    .record(headerName, z.union([z.string(), z.strictObject({ regex: regexSource })]))
    .optional()
    .meta({ description: 'Header name -> exact value, or { regex }.' }),
});

/**
 * What node:http and undici accept in a header value (tab, visible ASCII,
 * obs-text): a CR, LF or NUL would otherwise fail every request of the route
 * at run time (a 502), after the config was accepted.
 */
const headerValue = z.string().regex(/^[\t\x20-\x7e\x80-\xff]*$/, {
  message: 'not a valid header value (CR, LF, NUL and other control characters are not allowed)',
});

const headerRules = z.strictObject({
  add: z.record(headerName, headerValue).optional().meta({ description: 'Headers set (replacing any value of that name).' }),
  remove: z.array(headerName).optional().meta({ description: 'Headers removed.' }),
});

const headersPolicy = z.strictObject({
  request: headerRules.optional(),
  response: headerRules.optional(),
});

const retryOn = z.union([
  z.enum(['connect-failure', 'reset', 'timeout']),
  z.number().int().min(500).max(599),
  // gRPC status codes by name (h2/grpc.ts), retried when a trailers-only answer carries them (Envoy's retry_on names).
  z.enum(['cancelled', 'deadline-exceeded', 'resource-exhausted', 'internal', 'unavailable']),
]);

/** Retries; by default a route does not retry (SPEC "Precise semantics"). */
export const retrySchema = z.strictObject({
  attempts: z.number().int().min(1).max(10).meta({ description: 'Total tries, the first included.' }),
  on: z.array(retryOn).min(1).default(['connect-failure', 'reset', 502, 503, 504]),
  perTryTimeout: duration.optional().meta({ description: 'Per try; clamped to the route timeout.' }),
  methods: z.array(method).min(1).optional().meta({ description: 'Methods that may be retried (default: the idempotent ones).' }),
  backoff: z
    .strictObject({ base: duration.default(25), max: duration.default(250) })
    .default({ base: 25, max: 250 }),
  budget: z
    .strictObject({
      ratio: z.number().min(0).max(10).default(0.2),
      minPerSecond: z.number().min(0).default(10),
    })
    .default({ ratio: 0.2, minPerSecond: 10 }),
  bufferBody: size.default(64 * 1024),
});

const staticSchema = z.strictObject({
  root: z.string().min(1).meta({ description: 'Folder served (relative to the config file).' }),
  maxAge: duration.default(0).meta({ description: 'Cache-Control max-age; 0 = no-cache revalidation.' }),
  immutable: z.boolean().default(false),
  precompressed: z.boolean().default(false).meta({ description: 'Serve file.br / file.gz when accepted.' }),
  index: z.union([z.string(), z.literal(false)]).default('index.html'),
  fallthrough: z.boolean().default(false).meta({ description: 'A miss goes on to the next matching route.' }),
  dotfiles: z.enum(['deny', 'allow']).default('deny'),
  cache: z
    .strictObject({
      maxBytes: size.default(16 * 1024 * 1024),
      maxFileSize: size.default(1024 * 1024),
      revalidate: duration
        .default(250)
        .meta({ description: 'How long a path lookup (realpath + stat) is trusted before the file is looked at again; 0 = every request.' }),
    })
    .default({ maxBytes: 16 * 1024 * 1024, maxFileSize: 1024 * 1024, revalidate: 250 })
    .meta({ description: 'In-memory cache of small hot files and of path lookups.' }),
});

/** Response compression (policy/compress.ts); on a listener, the default of its routes. */
export const compressSchema = z.strictObject({
  algorithms: z
    .array(z.enum(['br', 'gzip', 'zstd']))
    .min(1)
    .default(['br', 'gzip'])
    .refine((list) => ZSTD_SUPPORTED || !list.includes('zstd'), { message: 'zstd needs a Node.js with zlib.createZstdCompress (Node 24)' })
    .meta({ description: 'Codings offered; the client\'s Accept-Encoding q-values choose, this order breaks ties. zstd is experimental in Node.' }),
  levels: z
    .strictObject({ gzip: z.number().int().min(1).max(9).default(5), br: z.number().int().min(0).max(11).default(4), zstd: z.number().int().min(1).max(19).default(3) })
    .default({ gzip: 5, br: 4, zstd: 3 })
    .meta({ description: 'On-the-fly levels (never brotli 11 per request: about 100 times slower).' }),
  minLength: size.default(1024).meta({ description: 'Smaller bodies (by Content-Length) go out as they are.' }),
  types: z
    .array(z.string().regex(/^(\*|[a-z0-9.+-]+\/(\*|[a-z0-9.+-]*\*?[a-z0-9.+-]*))$/i, { message: 'not a media type pattern (write e.g. text/*, application/json, application/*+json)' }))
    .min(1)
    .default([...DEFAULT_TYPES])
    .meta({ description: 'Media types compressed: type/subtype, type/*, type/*+suffix.' }),
});

/** A token bucket per key (policy/rate-limit.ts). */
export const rateLimitSchema = z.strictObject({
  requests: z.number().int().min(1).meta({ description: 'Requests earned per `per`.' }),
  per: duration.refine((ms) => ms > 0, { message: 'must be longer than 0' }).default(1_000),
  burst: z.number().int().min(1).optional().meta({ description: 'Most requests at once after a quiet time (default: requests).' }),
  key: z
    .string()
    .regex(/^(route|client-ip|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/, { message: 'write route, client-ip or header:NAME' })
    .default('route')
    .meta({ description: 'One bucket for the route, one per client address, or one per value of a request header.' }),
  maxKeys: z.number().int().min(1).default(10_000).meta({ description: 'Buckets kept (least recently used go first).' }),
  mode: z.enum(['enforce', 'shadow']).default('enforce').meta({ description: 'shadow: count what would be limited, let it through.' }),
  headers: z.boolean().default(false).meta({ description: 'RateLimit-Policy / RateLimit on every answer, not only on 429s.' }),
});

/** Policy keys shared by ingress and egress routes. */
const routePolicy = {
  name: z.string().min(1).optional().meta({ description: 'Name in logs and metrics (default: ingress-N or egress-N, N counting routes from 0).' }),
  upstream: z.string().optional().meta({ description: 'Name of an entry of upstreams.' }),
  rewrite: z.strictObject({ stripPrefix: z.string().startsWith('/').optional() }).optional(),
  headers: headersPolicy.optional(),
  timeout: duration.optional().meta({ description: 'Until the response head arrives, all tries together (default 30s).' }),
  idleTimeout: duration.optional().meta({ description: 'Longest pause inside a response body (default 5m).' }),
  retry: retrySchema.optional(),
  maxBody: size.optional().meta({ description: 'Largest request body (0 = no limit); 413 beyond.' }),
  compress: z.union([z.literal(false), compressSchema]).optional().meta({ description: "Compress answers (default: the listener's compress); false: never on this route." }),
  rateLimit: rateLimitSchema.optional(),
};

export const ingressRouteSchema = z.strictObject({
  match: matchSchema.default({}),
  ...routePolicy,
  static: staticSchema.optional(),
  websocket: z.boolean().default(false).meta({ description: 'Let WebSocket upgrades through (to the upstream of the route, under its breaker and TLS settings).' }),
});

export const egressRouteSchema = z.strictObject({
  match: matchSchema.default({}),
  ...routePolicy,
  connectTimeout: duration.optional().meta({ description: 'Connect timeout for pass-through destinations.' }),
  // Squid's to_localhost: by default a pass-through route that does not name its host exactly reaches nothing on this host.
  allowLoopback: z
    .boolean()
    .default(false)
    .meta({
      description:
        "Pass-through: loopback, the unspecified address and this host's own addresses are reachable (default: only through a route that names the host exactly; the sidecar's own listeners never are).",
    }),
  allowPrivate: z
    .boolean()
    .default(false)
    .meta({ description: 'Pass-through: link-local and cloud metadata addresses (169.254.169.254 and the like) are reachable (default: never metadata; link-local only through a route that names the host exactly).' }),
});

/** Limits of a listening server (Node's http.Server options). */
const listenerLimits = {
  headersTimeout: duration.default(10_000).meta({ description: '408 when the request head takes longer (slowloris guard).' }),
  requestTimeout: duration.default(300_000).meta({ description: 'The whole request, body included.' }),
  keepAliveTimeout: duration.default(65_000).meta({ description: 'Idle client connections.' }),
  maxConnections: z.number().int().min(1).default(10_000),
  maxHeaderSize: size.default(16 * 1024).meta({ description: '431 beyond.' }),
  maxBody: size.default(0).meta({ description: '0 = no limit; 413 beyond, without buffering.' }),
};

/** How request paths are normalised before routing (src/net/normalize-path.ts). */
const pathsSchema = z
  .strictObject({
    normalize: z
      .boolean()
      .default(true)
      .meta({ description: 'Decode unreserved %XX, upper-case other escapes, remove dot segments (a path above the root is 400). Off = the raw path is routed.' }),
    mergeSlashes: z.boolean().default(true).meta({ description: 'Merge repeated slashes (// -> /).' }),
    rejectEncodedSlashes: z
      .boolean()
      .default(false)
      .meta({ description: 'Answer 400 to %2F, %5C or a raw backslash in the path instead of passing them on encoded.' }),
  })
  .default({ normalize: true, mergeSlashes: true, rejectEncodedSlashes: false });

const proxyEntry = z.string().refine((value) => parseProxyEntry(value) !== undefined, {
  message: 'not an IP address or CIDR block (write e.g. 10.0.0.0/8, 192.168.1.7 or fd00::/8)',
});

/** What a listener believes of what clients say about themselves. */
const listenerTrust = {
  paths: pathsSchema,
  trustedProxies: z
    .array(proxyEntry)
    .default([])
    .meta({ description: 'Peers whose X-Forwarded-For/-Proto/-Host are kept; from anyone else they are replaced. Default: none.' }),
};

const tlsVersion = z.enum(['TLSv1.2', 'TLSv1.3']);

/** A server name a certificate is chosen for: exact, or `*.` and one label (RFC 6125: `*.example.com` is not `a.b.example.com`). */
const serverName = z
  .string()
  .regex(/^(\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/, {
    message: 'not a server name (write an exact name such as api.example.com, or *.example.com)',
  });

const pemFile = (what: string) => z.string().min(1).meta({ description: `${what} (PEM file, relative to the config file; watched and reloaded when it changes).` });

/** HTTPS on the listener (src/tls/): the listener then speaks TLS only. */
const listenerTlsSchema = z.strictObject({
  cert: pemFile('The certificate, followed by its chain'),
  key: pemFile('The private key of `cert` (unencrypted)'),
  minVersion: tlsVersion.default('TLSv1.2').meta({ description: 'Oldest TLS version accepted (TLSv1.2 as in Mozilla\'s "intermediate" profile).' }),
  // ALPN offers with no protocol in common are refused, as NGINX does.
  alpn: z
    .array(z.enum(['h2', 'http/1.1']))
    .min(1)
    .default(['h2', 'http/1.1'])
    .meta({ description: 'ALPN protocols offered, in order of preference: h2 goes to the HTTP/2 server (src/h2/), http/1.1 to the HTTP/1.1 one.' }),
  ciphers: z.string().min(1).optional().meta({ description: "OpenSSL cipher list for TLS 1.2 (default: Node's)." }),
  sni: z
    .array(
      z.strictObject({
        serverNames: z.array(serverName).min(1).meta({ description: 'Names this certificate is chosen for: exact, or *.example.com (one label).' }),
        cert: pemFile('The certificate for these names, followed by its chain'),
        key: pemFile('Its private key'),
      }),
    )
    .default([])
    .meta({ description: 'Certificates chosen by the name the client asks for (SNI); an exact name wins over a wildcard, and no match gets `cert`.' }),
  clientAuth: z
    .enum(['none', 'request', 'require'])
    .default('none')
    .meta({ description: 'Client certificates: none; request (verified when sent); require (a connection without a valid one is closed). request and require need `ca`.' }),
  ca: pemFile('The CA(s) client certificates must chain to').optional(),
  forwardClientCert: headerName
    .optional()
    .meta({ description: "Header set upstream to the verified client certificate's subject and SANs; a client's own header of that name is always removed." }),
  allowExpired: z.boolean().default(false).meta({ description: 'Start and reload with an expired certificate (default: refused; `check` only warns).' }),
});

/**
 * HTTP/2 limits of a listener (src/h2/sessions.ts). Node's own defaults are
 * looser (maxConcurrentStreams is effectively unlimited); these follow
 * NGINX's http2_max_concurrent_streams and Envoy's defenses against the
 * 2023 rapid-reset attack and control-frame floods.
 */
const http2Schema = z
  .strictObject({
    maxConcurrentStreams: z.number().int().min(1).max(10_000).default(100).meta({ description: 'Streams a client may have open on one connection (SETTINGS_MAX_CONCURRENT_STREAMS).' }),
    initialWindowSize: size
      .default(1024 * 1024)
      .refine((value) => value >= 65_535 && value <= 2 ** 31 - 1, { message: 'must be between 64KiB - 1 and 2GiB - 1 (RFC 9113 6.9.2)' })
      .meta({ description: 'Flow-control window of each stream (and 4x that for the connection): what a client may send ahead unread.' }),
    maxResets: z
      .number()
      .int()
      .min(1)
      .default(100)
      .meta({ description: 'Streams a client may reset before their answer ended, once they are more than half of its streams: then GOAWAY (rapid reset, CVE-2023-44487).' }),
    maxControlFrames: z
      .number()
      .int()
      .min(1)
      .default(100)
      .meta({ description: 'SETTINGS and PING frames a client may send in any 10 s: beyond, GOAWAY (control-frame flood).' }),
  })
  .default({ maxConcurrentStreams: 100, initialWindowSize: 1024 * 1024, maxResets: 100, maxControlFrames: 100 });

export const ingressSchema = z.strictObject({
  listen: listenAddress.default('0.0.0.0:8080'),
  ...listenerLimits,
  ...listenerTrust,
  tls: listenerTlsSchema.optional(),
  h2c: z
    .boolean()
    .default(false)
    .meta({ description: 'Cleartext HTTP/2 with prior knowledge on a plain listener, beside HTTP/1.1 on the same port (told apart by the connection preface). A change needs a restart.' }),
  http2: http2Schema.meta({ description: 'HTTP/2 limits (h2 by ALPN on TLS, h2c).' }),
  compress: compressSchema.optional().meta({ description: 'The compress of routes that set none.' }),
  routes: z.array(ingressRouteSchema).default([]),
});

export const egressSchema = z.strictObject({
  listen: listenAddress.default('127.0.0.1:15001'),
  ...listenerLimits,
  ...listenerTrust,
  compress: compressSchema.optional().meta({ description: 'The compress of routes that set none.' }),
  auth: z.strictObject({ user: z.string().min(1), password: z.string().min(1) }).optional(),
  tunnelIdleTimeout: duration.default(300_000).meta({ description: 'A CONNECT tunnel idle this long is closed.' }),
  routes: z.array(egressRouteSchema).default([]),
});

/** A DNS server for `discovery.dns.servers`: an address with an optional port, as node:dns setServers takes it. */
const dnsServer = z
  .string()
  .refine((value) => {
    try {
      new Resolver().setServers([value]);
      return true;
    } catch {
      return false;
    }
  }, { message: 'not a DNS server address (write an IP address, optionally with a port: 10.0.0.10, 127.0.0.1:5353, [::1]:53)' });

/**
 * Endpoints from DNS, re-resolved every `every` (Envoy's STRICT_DNS cluster;
 * what a Kubernetes headless Service gives): each A/AAAA record of `name` is
 * an endpoint `scheme://address:port`.
 */
export const dnsDiscoverySchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/, { message: 'not a DNS name' })
    .meta({ description: 'The name whose A and AAAA records are the endpoints, e.g. payments.default.svc.cluster.local.' }),
  port: z.number().int().min(1).max(65535).meta({ description: 'The port of every endpoint.' }),
  scheme: z.enum(['http', 'https']).default('http'),
  every: duration.default(5_000).meta({ description: 'How often the name is resolved again.' }),
  servers: z
    .array(dnsServer)
    .default([])
    .meta({ description: "DNS servers to ask instead of the system's (/etc/resolv.conf), e.g. [127.0.0.1:5353]." }),
});

export const upstreamSchema = z.strictObject({
  endpoints: z.array(httpUrl).min(1).optional().meta({ description: 'Fixed endpoints; or `discovery` instead.' }),
  discovery: z
    .strictObject({ dns: dnsDiscoverySchema })
    .optional()
    .meta({ description: 'Endpoints discovered through DNS instead of a fixed `endpoints` list.' }),
  balance: z.enum(['round-robin', 'least-request', 'random']).default('round-robin'),
  connections: z.number().int().min(1).default(128).meta({ description: 'Max connections per endpoint.' }),
  connectTimeout: duration.default(2_000),
  protocol: z
    .enum(['http1', 'h2', 'h2c', 'auto'])
    .default('http1')
    .meta({
      description:
        'HTTP version to the endpoints: http1; h2 (https:// endpoints, ALPN must choose h2); h2c (cleartext HTTP/2 with prior knowledge, http:// endpoints); auto (ALPN on https://, HTTP/1.1 on http://). gRPC needs h2 or h2c.',
    }),
  idleTimeout: duration
    .default(4_000)
    .meta({ description: "Keep-alive idle; stays below the endpoint's own keep-alive timeout (Node's default: 5s)." }),
  breaker: z
    .strictObject({
      errorRate: z.number().gt(0).max(1).default(0.5),
      minRequests: z.number().int().min(1).default(20),
      window: duration.default(10_000),
      openFor: duration.default(30_000),
      maxConcurrent: z.number().int().min(1).default(1024),
    })
    .optional(),
  healthCheck: z
    .strictObject({
      path: z.string().startsWith('/').default('/healthz'),
      interval: duration.default(5_000),
      timeout: duration.default(1_000),
      unhealthyAfter: z.number().int().min(1).default(3),
      healthyAfter: z.number().int().min(1).default(2),
    })
    .optional(),
  outlier: z
    .strictObject({
      consecutiveErrors: z.number().int().min(1).default(5),
      ejectFor: duration.default(30_000),
      maxEjectedPercent: z.number().min(0).max(100).default(50),
    })
    .optional(),
  tls: z
    .strictObject({
      serverName: z.string().optional(),
      ca: pemFile('The CA(s) to trust instead of the system ones').optional(),
      cert: pemFile('Client certificate presented to the endpoints (mTLS), followed by its chain').optional(),
      key: pemFile('The private key of `cert`').optional(),
      minVersion: tlsVersion.default('TLSv1.2').meta({ description: 'Oldest TLS version offered to the endpoints.' }),
      insecureSkipVerify: z.boolean().default(false),
      allowExpired: z.boolean().default(false).meta({ description: 'Start and reload with an expired client certificate (default: refused; `check` only warns).' }),
    })
    .optional(),
}).superRefine((upstream, ctx) => {
  const schemes = upstream.endpoints?.map((url) => url.slice(0, url.indexOf(':'))) ?? [upstream.discovery?.dns.scheme ?? 'http'];
  if (upstream.protocol === 'h2' && schemes.some((scheme) => scheme !== 'https')) {
    ctx.addIssue({ code: 'custom', path: ['protocol'], message: 'h2 is negotiated by TLS: every endpoint must be https:// (use h2c for cleartext HTTP/2)' });
  } else if (upstream.protocol === 'h2c' && schemes.some((scheme) => scheme !== 'http')) {
    ctx.addIssue({ code: 'custom', path: ['protocol'], message: 'h2c is cleartext HTTP/2: every endpoint must be http:// (use h2 for https://)' });
  }
  if (upstream.endpoints === undefined && upstream.discovery === undefined) {
    // The same issue zod gives a missing required key (config/issues.ts words it, salvage.ts takes the block out).
    ctx.addIssue({ code: 'invalid_type', expected: 'array', input: undefined, path: ['endpoints'], message: 'required key is missing' });
  } else if (upstream.endpoints !== undefined && upstream.discovery !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['discovery'], message: 'give either endpoints or discovery (exactly one of the two)' });
  }
});

export const appSchema = z.strictObject({
  command: z.array(z.string()).min(1),
  cwd: z.string().default('.'),
  env: z.record(z.string(), z.string()).default({}),
  proxyEnv: z.boolean().optional().meta({ description: 'Inject HTTP_PROXY & co. (default: true when egress is configured).' }),
  ready: z.strictObject({ url: z.string().url(), timeout: duration.default(30_000), interval: duration.default(200) }).optional(),
  restart: z.enum(['never', 'on-failure', 'always']).default('never'),
  stopTimeout: duration.default(10_000),
});

/**
 * OpenTelemetry traces; off unless this block is present or the standard
 * OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set
 * (tracing/settings.ts). A key given here wins over its OTEL_* variable.
 */
export const tracingSchema = z.strictObject({
  enabled: z.boolean().default(true).meta({ description: 'false turns tracing off even when OTEL_* variables are set.' }),
  endpoint: z
    .string()
    .url()
    .optional()
    .meta({ description: 'OTLP/HTTP traces URL (default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, or http://localhost:4318/v1/traces).' }),
  serviceName: z.string().min(1).optional().meta({ description: 'service.name of the spans (default: OTEL_SERVICE_NAME, or sidecar).' }),
  sampleRatio: z
    .number()
    .min(0)
    .max(1)
    .optional()
    .meta({ description: 'Share of new traces sampled; a request with a traceparent follows its sampled flag (default: OTEL_TRACES_SAMPLER_ARG, or 1).' }),
  upstreamSpans: z.boolean().default(false).meta({ description: 'A CLIENT span per upstream try, so retries show as tries.' }),
  headers: z.record(headerName, z.string()).optional().meta({ description: 'Headers sent to the collector (default: OTEL_EXPORTER_OTLP_HEADERS); values are secret.' }),
  maxQueue: z.number().int().min(1).max(1_000_000).default(2048).meta({ description: 'Spans waiting for export; beyond this new spans are dropped and counted.' }),
  maxBatch: z.number().int().min(1).max(100_000).default(512).meta({ description: 'Spans per export request.' }),
  flushInterval: duration.default(1_000).meta({ description: 'Longest wait before a partial batch is sent.' }),
  exportTimeout: duration.default(10_000).meta({ description: 'An export request taking longer is abandoned (its spans count as dropped).' }),
});

export const configSchema = z
  .strictObject({
    admin: z
      .strictObject({
        listen: listenAddress.default('127.0.0.1:9901'),
        token: z
          .string()
          .min(1)
          .optional()
          .meta({
            description:
              'Bearer token (typically ${ADMIN_TOKEN}) that POST /reload, GET /config, GET /upstreams and GET /certs then require; /healthz, /readyz and /metrics stay open for probes and scrapers.',
          }),
      })
      .default({ listen: '127.0.0.1:9901' }),
    log: z
      .strictObject({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
        access: z.boolean().default(true),
      })
      .default({ level: 'info', access: true }),
    workers: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(1)
      .meta({ description: 'Processes serving ingress and egress (node:cluster, SO_REUSEPORT); 1 = the sidecar process itself.' }),
    // 10 s: what most clients wait for an answer, and well inside Kubernetes' 30 s grace period.
    drainTimeout: duration
      .default(10_000)
      .meta({ description: 'At shutdown: how long in-flight requests, tunnels and open connections may take before they are cut.' }),
    app: appSchema.optional(),
    upstreams: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, { message: 'upstream names use letters, digits, _ . -' }), upstreamSchema).default({}),
    ingress: ingressSchema.optional(),
    egress: egressSchema.optional(),
    tracing: tracingSchema.optional(),
  })
  .meta({ title: 'sidecar configuration', description: 'See docs/configuration.md.' });

/** The validated config, defaults filled in, durations in ms and sizes in bytes. */
export type Config = z.output<typeof configSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;
export type DnsDiscoveryConfig = z.output<typeof dnsDiscoverySchema>;
export type IngressRouteConfig = z.output<typeof ingressRouteSchema>;
export type EgressRouteConfig = z.output<typeof egressRouteSchema>;
export type MatchConfig = z.output<typeof matchSchema>;
export type RetryConfig = z.output<typeof retrySchema>;
export type StaticConfig = z.output<typeof staticSchema>;
export type CompressConfig = z.output<typeof compressSchema>;
export type RateLimitConfig = z.output<typeof rateLimitSchema>;
export type AppConfig = z.output<typeof appSchema>;
export type TracingConfig = z.output<typeof tracingSchema>;
export type ListenerConfig = z.output<typeof ingressSchema> | z.output<typeof egressSchema>;
export type ListenerTlsConfig = z.output<typeof listenerTlsSchema>;
export type Http2Config = z.output<typeof http2Schema>;
export type UpstreamTlsConfig = NonNullable<UpstreamConfig['tls']>;

/** JSON Schema (draft 2020-12) of what may be written in the YAML file. */
export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, {
    io: 'input',
    unrepresentable: 'any',
    override: ({ zodSchema, jsonSchema }) => {
      // The input type says "string or number" so that a bare number gets a helpful error; an editor should ask for a unit.
      if (zodSchema === duration) {
        delete jsonSchema.type;
        jsonSchema.anyOf = [{ type: 'string', pattern: DURATION_PATTERN }, { const: 0 }];
      }
    },
  });
}
