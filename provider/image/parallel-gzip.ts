/**
 * gzip on every core, with output that does not depend on how many cores there are.
 *
 * The way pigz does it: the input is cut into fixed 128 KiB blocks; each block is deflated on
 * its own (on libuv's thread pool, several at once) with the 32 KiB of input before it as the
 * preset dictionary, and ends with a sync flush so the pieces join into one deflate stream;
 * the last block finishes the stream. The gzip header carries no name and a zero mtime, the
 * trailer the CRC-32 and length of the whole input. Any gunzip, the kernel's included, reads
 * it as one member. Written by hand because no maintained npm package does deterministic
 * parallel gzip on Node's zlib (pigz itself needs a process and is not deterministic across
 * its own versions' block handling); it is a few dozen lines over zlib.
 */
import * as os from "node:os";
import * as zlib from "node:zlib";
import { Transform, type TransformCallback } from "node:stream";

const BLOCK = 128 * 1024;
const WINDOW = 32 * 1024;

function deflateBlock(block: Buffer, dictionary: Buffer | undefined, level: number, last: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    zlib.deflateRaw(
      block,
      {
        level,
        memLevel: 9,
        ...(dictionary && dictionary.length > 0 ? { dictionary } : {}),
        finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
      },
      (err, out) => (err ? reject(err) : resolve(out)),
    ),
  );
}

export class ParallelGzip extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** the last WINDOW bytes of input handed to a block so far */
  private window: Buffer = Buffer.alloc(0);
  private crc = 0;
  private size = 0;
  private readonly inFlight: Promise<Buffer>[] = [];
  private readonly maxInFlight: number;
  private headerSent = false;

  constructor(
    private readonly level = 9,
    parallelism = os.availableParallelism(),
  ) {
    super();
    // libuv runs 4 pool threads by default; more queued blocks only cost memory.
    this.maxInFlight = Math.max(2, parallelism * 2);
  }

  private header(): Buffer {
    // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL (2: best compression, 4: fastest) OS=3 (Unix)
    return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, this.level >= 9 ? 2 : this.level <= 1 ? 4 : 0, 3]);
  }

  private startBlock(block: Buffer, last: boolean): void {
    this.crc = zlib.crc32(block, this.crc);
    this.size = (this.size + block.length) >>> 0;
    const dictionary = this.window;
    this.window =
      block.length >= WINDOW
        ? block.subarray(block.length - WINDOW)
        : Buffer.concat([this.window, block]).subarray(-WINDOW);
    this.inFlight.push(deflateBlock(block, dictionary, this.level, last));
  }

  /** Emits finished blocks in order; waits for the oldest while too many are running. */
  private async drain(all: boolean): Promise<void> {
    if (!this.headerSent) {
      this.push(this.header());
      this.headerSent = true;
    }
    while (this.inFlight.length > 0 && (all || this.inFlight.length >= this.maxInFlight)) {
      this.push(await this.inFlight.shift()!);
    }
  }

  /**
   * The next `n` pending bytes: a view of one chunk when they lie in one (no copy), else copied
   * together. A chunk written to the stream is not changed afterwards (the newc writer and file
   * streams hand over a new buffer each time).
   */
  private nextBlock(n: number): Buffer {
    const first = this.pending[0]!;
    this.pendingBytes -= n;
    if (first.length >= n) {
      if (first.length === n) this.pending.shift();
      else this.pending[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const block = Buffer.allocUnsafe(n);
    for (let at = 0; at < n;) {
      const piece = this.pending[0]!;
      const k = piece.copy(block, at, 0, Math.min(piece.length, n - at));
      if (k === piece.length) this.pending.shift();
      else this.pending[0] = piece.subarray(k);
      at += k;
    }
    return block;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // Keep one full block back: only at the end is it known which block is the last.
    while (this.pendingBytes > BLOCK) this.startBlock(this.nextBlock(BLOCK), false);
    this.drain(false).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.startBlock(Buffer.concat(this.pending), true);
    this.pending = [];
    this.drain(true).then(() => {
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.crc >>> 0, 0);
      trailer.writeUInt32LE(this.size, 4);
      this.push(trailer);
      callback();
    }, callback);
  }
}
