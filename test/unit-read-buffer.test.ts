import { describe, expect, it } from 'vitest';
import { releaseAfterWrite, WrittenChunks } from '../src/net/read-buffer.ts';

/** A fresh ArrayBuffer of `size` bytes, as one socket read gives. */
const read = (size: number) => Buffer.from(new ArrayBuffer(size));

describe('releaseAfterWrite (freeing a relayed socket read once written)', () => {
  it('frees a big chunk that runs to the end of its read, head bytes before it included', () => {
    const memory = read(70_000);
    const body = memory.subarray(200); // a head of 200 bytes, then the body to the end
    const release = releaseAfterWrite(body);
    expect(release).toBeTypeOf('function');
    release?.();
    expect([body.length, memory.length, body.buffer.byteLength]).toEqual([0, 0, 0]);
    expect(() => release?.()).not.toThrow(); // a second call finds it detached already
  });

  it('leaves alone a chunk that other bytes of the read follow', () => {
    const memory = read(70_000);
    expect(releaseAfterWrite(memory.subarray(0, 40_000))).toBeUndefined();
    expect(releaseAfterWrite(memory.subarray(100, 69_999))).toBeUndefined();
  });

  it('leaves small chunks to the collector', () => {
    expect(releaseAfterWrite(read(16 * 1024))).toBeUndefined();
    expect(releaseAfterWrite(read(16 * 1024 + 1))).toBeTypeOf('function');
  });

  it('leaves alone memory that cannot be detached', () => {
    const shared = Buffer.from(new SharedArrayBuffer(70_000));
    expect(releaseAfterWrite(shared)).toBeUndefined();
  });
});

describe('WrittenChunks (freeing upload chunks once the upstream socket wrote them)', () => {
  const chunk = () => Buffer.from(new ArrayBuffer(20_000));

  it('frees the chunks undici took once the socket has nothing pending, not the ones still waiting', () => {
    const socket = { writableLength: 0 };
    const written = new WrittenChunks();
    written.useSocket(socket);
    const [a, b, c] = [chunk(), chunk(), chunk()];
    for (const x of [a, b, c]) written.add(x);
    written.freeWritten(20_000); // c still waits in the stream
    expect([a.length, b.length, c.length]).toEqual([0, 0, 20_000]);
    written.freeWritten(0);
    expect(c.length).toBe(0);
  });

  it('frees nothing while the socket has a write queued or in flight', () => {
    const socket = { writableLength: 5 };
    const written = new WrittenChunks();
    written.useSocket(socket);
    const a = chunk();
    written.add(a);
    written.freeWritten(0);
    expect(a.length).toBe(20_000);
    socket.writableLength = 0;
    written.freeWritten(0);
    expect(a.length).toBe(0);
  });

  it('never frees chunks handed before the socket was known, or to another socket', () => {
    const written = new WrittenChunks();
    const early = chunk();
    written.add(early);
    written.useSocket({ writableLength: 0 });
    const first = chunk();
    written.add(first);
    written.useSocket({ writableLength: 0 }); // undici moved to another connection
    written.freeWritten(0);
    expect([early.length, first.length]).toEqual([20_000, 20_000]);
  });

  it('keeps track of a bounded number of chunks while the socket stays busy', () => {
    const socket = { writableLength: 1 };
    const written = new WrittenChunks();
    written.useSocket(socket);
    const chunks = Array.from({ length: 300 }, chunk);
    for (const x of chunks) written.add(x);
    socket.writableLength = 0;
    written.freeWritten(0);
    expect(chunks.filter((x) => x.length === 0).length).toBe(256);
    expect(chunks[0].length).toBe(20_000); // the oldest were forgotten, not freed
  });
});
