/**
 * Constant-rate client of the latency scenarios, run as its own process:
 * `rate` GET requests a second spread evenly over time (one every 1/rate s,
 * round-robin over `connections` keep-alive connections), each timed from
 * the moment it is written to the last byte of its answer, with the
 * microsecond clock. hey (`-q`) paces each of its workers with its own ticker,
 * all started together: its 20 connections send in bursts of 20 every 1/q s,
 * and a burst queues in a proxy that spends tens of microseconds per request.
 * Here a worker thread, sleeping with Atomics.wait (sub-millisecond), ticks the
 * main thread at the right times instead, so requests arrive one by one.
 * A connection still busy at its tick takes the request when it is free (it
 * counts as `late`). Answers must carry Content-Length (every peer's "hello"
 * does). Prints one JSON line: requests, rps, errors, late, p50/p99/p99.9 ms.
 * Usage: `node bench/clients/paced.ts '{"port":P,"path":"/","connections":20,"rate":2000,"seconds":10}'`.
 */
import net from 'node:net';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

interface Options {
  port: number;
  path: string;
  connections: number;
  rate: number;
  seconds: number;
}

if (!isMainThread) {
  // The pacer: one message per tick, at start + i / rate, for `seconds`.
  const { rate, seconds } = workerData as { rate: number; seconds: number };
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const interval = 1e9 / rate;
  const start = process.hrtime.bigint();
  const total = Math.floor(rate * seconds);
  for (let i = 0; i < total; i++) {
    const due = Number(start) + i * interval;
    const wait = (due - Number(process.hrtime.bigint())) / 1e6;
    if (wait > 0) Atomics.wait(cell, 0, 0, wait);
    parentPort?.postMessage(i);
  }
  parentPort?.postMessage(-1);
} else {
  const options = JSON.parse(process.argv[2] ?? '{}') as Options;
  const request = Buffer.from(`GET ${options.path} HTTP/1.1\r\nHost: 127.0.0.1:${options.port}\r\nUser-Agent: bench-paced\r\n\r\n`);
  const latencies: number[] = [];
  let errors = 0;
  let late = 0;

  interface Conn {
    socket: net.Socket;
    busySince?: bigint;
    queued: number;
    buffer: Buffer;
  }

  const finishAnswer = (conn: Conn): boolean => {
    // One complete answer at the front of conn.buffer? Then time it and drop it.
    const end = conn.buffer.indexOf('\r\n\r\n');
    if (end < 0) return false;
    const head = conn.buffer.toString('latin1', 0, end);
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (!length) {
      errors++;
      conn.socket.destroy();
      return false;
    }
    const total = end + 4 + Number(length[1]);
    if (conn.buffer.length < total) return false;
    if (!head.startsWith('HTTP/1.1 200')) errors++;
    else latencies.push(Number(process.hrtime.bigint() - (conn.busySince as bigint)) / 1e6);
    conn.buffer = conn.buffer.subarray(total);
    conn.busySince = undefined;
    return true;
  };

  const send = (conn: Conn) => {
    conn.busySince = process.hrtime.bigint();
    conn.socket.write(request);
  };

  const connect = () =>
    new Promise<Conn>((resolve, reject) => {
      const socket = net.connect(options.port, '127.0.0.1');
      socket.setNoDelay(true);
      const conn: Conn = { socket, queued: 0, buffer: Buffer.alloc(0) };
      socket.once('connect', () => resolve(conn));
      socket.once('error', reject);
      socket.on('data', (chunk: Buffer) => {
        conn.buffer = conn.buffer.length ? Buffer.concat([conn.buffer, chunk]) : chunk;
        while (conn.busySince !== undefined && finishAnswer(conn)) {
          if (conn.queued > 0) {
            conn.queued--;
            send(conn);
          }
        }
      });
      socket.on('error', () => errors++);
    });

  const conns = await Promise.all(Array.from({ length: options.connections }, connect));
  // Timed from the first tick (the pacer thread takes a moment to start).
  let startedAt = process.hrtime.bigint();
  let endedAt = startedAt;
  const pacer = new Worker(new URL(import.meta.url), { workerData: { rate: options.rate, seconds: options.seconds } });
  await new Promise<void>((resolve) => {
    pacer.on('message', (i: number) => {
      if (i < 0) {
        endedAt = process.hrtime.bigint();
        resolve();
        return;
      }
      if (i === 0) startedAt = process.hrtime.bigint();
      const conn = conns[i % conns.length];
      if (conn.socket.destroyed) errors++;
      else if (conn.busySince !== undefined) {
        late++;
        conn.queued++;
      } else send(conn);
    });
    pacer.on('error', (err) => {
      process.stderr.write(`pacer: ${err.message}\n`);
      resolve();
    });
  });
  // Let the last answers come in (bounded), then report.
  const deadline = Date.now() + 2000;
  while (conns.some((c) => c.busySince !== undefined && !c.socket.destroyed) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  for (const conn of conns) conn.socket.destroy();
  const seconds = Number(endedAt - startedAt) / 1e9;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)] : undefined);
  process.stdout.write(`${JSON.stringify({
    requests: latencies.length,
    rps: latencies.length / Math.max(seconds, 0.001),
    errors,
    late,
    p50ms: at(0.5),
    p99ms: at(0.99),
    p999ms: at(0.999),
  })}\n`);
  process.exit(0);
}
