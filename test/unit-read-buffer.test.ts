import { describe, expect, it } from 'vitest';
import { releaseAfterWrite } from '../src/net/read-buffer.ts';

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
