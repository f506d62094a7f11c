import * as fs from "node:fs";

/**
 * Random access to a package's bytes, held in memory or read from a file descriptor as they are
 * needed: what lets a package be verified and unpacked without holding the whole .apk.
 */
export interface ByteSource {
  readonly size: number;
  /**
   * `length` bytes from `position` (fewer only at the end); read into `into` (and a view of it
   * returned) when it is given and large enough, so a caller going through a file reuses one buffer.
   */
  read(position: number, length: number, into?: Buffer): Buffer;
}

export function bufferSource(data: Buffer): ByteSource {
  return { size: data.length, read: (position, length) => data.subarray(position, position + length) };
}

/**
 * The file behind `fd`, its size taken now. Reads are synchronous: from the page cache they are
 * short, and a round trip through the thread pool per chunk costs more than it saves.
 */
export function fdSource(fd: number): ByteSource {
  const size = fs.fstatSync(fd).size;
  return {
    size,
    read: (position, length, into) => {
      const want = Math.max(0, Math.min(length, size - position));
      const out = into && into.length >= want ? into.subarray(0, want) : Buffer.allocUnsafe(want);
      let at = 0;
      while (at < out.length) {
        const n = fs.readSync(fd, out, at, out.length - at, position + at);
        if (n === 0) break;
        at += n;
      }
      return at === out.length ? out : out.subarray(0, at);
    },
  };
}
