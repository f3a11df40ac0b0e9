/**
 * A stand-in OpenTelemetry collector for the tracing scenarios: accepts
 * OTLP/HTTP export requests on /v1/traces, reads them and answers 200 `{}`,
 * keeping nothing. Runs on the load CPU, so what the sidecar's CPU per
 * request shows is its own side of tracing. Usage:
 * `node bench/servers/otlp-sink.ts PORT`.
 */
import http from 'node:http';

const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 });
    res.end('{}');
  });
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
