/**
 * A deterministic newc ("070701") cpio writer, the format the kernel unpacks as initramfs.
 *
 * Written by hand rather than taken from `cpio-stream`: that package packs newc but takes
 * inode numbers, link counts and mtimes from its caller one entry at a time and has no notion
 * of hard-link groups, so every rule that makes the archive reproducible (parents first,
 * sorted names, inode numbers in order, one clamped mtime, hard links sharing an inode with
 * the data on the last member) would have to be built around it anyway; what remains is a
 * 110-byte header. The writer streams file contents with backpressure, so an image is never
 * held in memory.
 */
import * as fs from "node:fs";
import { once } from "node:events";
import type { Writable } from "node:stream";
import { InternalError, RamrootError } from "../ramroot-error";

export type CpioEntryType = "file" | "dir" | "symlink" | "char" | "block" | "fifo" | "socket";

export interface CpioEntry {
  /** path inside the archive, without a leading "/" (e.g. "etc/hostname") */
  path: string;
  type: CpioEntryType;
  /** permission bits including setuid/setgid/sticky (0o7777 mask) */
  mode: number;
  uid: number;
  gid: number;
  /** for files: where the content is (a host file) or the content itself */
  source?: string | Buffer;
  /** for symlinks: the target */
  linkTarget?: string;
  /** for char/block devices */
  rdevMajor?: number;
  rdevMinor?: number;
  /** files with the same non-empty key are hard links of one inode */
  hardLinkKey?: string;
}

const TYPE_BITS: Record<CpioEntryType, number> = {
  socket: 0o140000,
  symlink: 0o120000,
  file: 0o100000,
  block: 0o060000,
  dir: 0o040000,
  char: 0o020000,
  fifo: 0o010000,
};

export interface WriteCpioOptions {
  /** every entry's mtime (seconds since the epoch) */
  epoch: number;
  /** called as bytes are written */
  onProgress?: (bytesWritten: number) => void;
  /** shown every chunk before it is handed to the stream (e.g. to hash the archive) */
  onChunk?: (chunk: Buffer) => void;
  /**
   * Fill a chunk again once the stream's write callback for it ran. Only for a stream that is
   * done with a chunk then (a file stream); not for one that passes chunks on or keeps views of
   * them (a transform, the parallel gzip).
   */
  reuseChunks?: boolean;
}

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
    throw new InternalError(`cpio: value ${n} does not fit a newc header field`);
  return n.toString(16).padStart(8, "0");
}

function header(fields: {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  size: number;
  rdevMajor: number;
  rdevMinor: number;
  nameSize: number;
}): string {
  return (
    "070701" +
    hex8(fields.ino) +
    hex8(fields.mode) +
    hex8(fields.uid) +
    hex8(fields.gid) +
    hex8(fields.nlink) +
    hex8(fields.mtime) +
    hex8(fields.size) +
    hex8(0) +
    hex8(0) +
    hex8(fields.rdevMajor) +
    hex8(fields.rdevMinor) +
    hex8(fields.nameSize) +
    hex8(0)
  );
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;
const ZEROS = Buffer.alloc(4);

/**
 * The order the archive uses: parents before children, siblings by byte order of their
 * names. Sorting full paths with "/" mapped below every other byte gives exactly that.
 */
export function archiveOrder(entries: CpioEntry[]): CpioEntry[] {
  // Each key made once, not twice per comparison (~150,000 buffers for a kernel's module tree).
  const keyed = entries.map((entry) => ({ entry, key: Buffer.from(entry.path.replace(/\//g, "\u0000"), "utf8") }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  return keyed.map((k) => k.entry);
}

function checkPath(p: string): void {
  if (p === "" || p.startsWith("/") || p.split("/").some((part) => part === ".." || part === "." || part === "")) {
    throw new InternalError(`cpio: entry path "${p}" must be relative, without "." or ".." parts or empty parts`);
  }
}

/** Bytes per chunk handed to the stream. */
const CHUNK = 1 << 20;

/**
 * Packs the archive into 1 MiB chunks, each handed to the stream when full: headers are written
 * into it and file contents read straight into it, so a chunk is the only copy of its bytes on
 * this side. Writing each header, name and file piece as its own small buffer (several thousand
 * allocations of every size for a kernel's module tree, each awaited) kept the main thread
 * collecting garbage: ~4 full collections a second while packing 384 MiB, against ~1 for
 * compressing one file of the same bytes (bench/analysis.md, "Rebuild"). With `reuseChunks` a
 * chunk the stream is done with is filled again instead of a new one allocated.
 */
class Output {
  written = 0;
  private chunk: Buffer = Buffer.allocUnsafe(CHUNK);
  private used = 0;
  /** Chunks the stream is done with, to fill again (reuseChunks). */
  private readonly spare: Buffer[] = [];
  constructor(
    private readonly out: Writable,
    private readonly opts: Omit<WriteCpioOptions, "epoch">,
  ) {}

  /** Hands the chunk to the stream (waiting while it is full) and starts the next. */
  async flush(): Promise<void> {
    if (this.used === 0) return;
    const chunk = this.chunk;
    const full = this.used === chunk.length ? chunk : chunk.subarray(0, this.used);
    this.chunk = this.spare.pop() ?? Buffer.allocUnsafe(CHUNK);
    this.used = 0;
    this.opts.onChunk?.(full);
    const room = this.opts.reuseChunks
      ? this.out.write(full, (err) => {
          if (!err) this.spare.push(chunk);
        })
      : this.out.write(full);
    // `once` rejects when the stream fails instead of waiting for a drain that never comes.
    if (!room) await once(this.out, "drain");
    this.opts.onProgress?.(this.written);
  }

  async write(data: Buffer | string): Promise<void> {
    if (typeof data === "string" && data.length <= this.chunk.length - this.used) {
      this.used += this.chunk.write(data, this.used, "latin1");
      this.written += data.length;
      return;
    }
    const buf = typeof data === "string" ? Buffer.from(data, "latin1") : data;
    for (let at = 0; at < buf.length;) {
      if (this.used === this.chunk.length) await this.flush();
      const n = buf.copy(this.chunk, this.used, at);
      this.used += n;
      this.written += n;
      at += n;
    }
  }

  /** Reads `size` bytes of the open file into the chunks. */
  async fromFile(fd: number, size: number, name: string): Promise<void> {
    for (let at = 0; at < size;) {
      if (this.used === this.chunk.length) await this.flush();
      const n = fs.readSync(fd, this.chunk, this.used, Math.min(size - at, this.chunk.length - this.used), at);
      if (n === 0) throw new RamrootError("input", `cpio: ${name} shrank while it was being archived`);
      this.used += n;
      this.written += n;
      at += n;
    }
  }
}

/**
 * A file's content to archive: its size (from the open descriptor, as the header needs it first)
 * and a writer of its bytes. Synchronous on purpose (bench/RESULTS.md, "newc writer"): an async
 * stat or read is a thread-pool round trip that the writer waits for, behind the compressor's
 * blocks on the same pool, while a page-cache read is short; the writes downstream still run in
 * the background. 1.9 s -> 1.4 s for 400 MB.
 */
function openContent(source: string | Buffer | undefined): {
  size: number;
  write: (out: Output) => Promise<void>;
  close: () => void;
} {
  if (source === undefined) return { size: 0, write: async () => {}, close: () => {} };
  if (Buffer.isBuffer(source)) return { size: source.length, write: (out) => out.write(source), close: () => {} };
  const fd = fs.openSync(source, "r");
  let size: number;
  try {
    size = fs.fstatSync(fd).size;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return { size, write: (out) => out.fromFile(fd, size, source), close: () => fs.closeSync(fd) };
}

/**
 * Writes the entries as a newc archive ending in TRAILER!!!. Entries are put in archive order
 * first; the caller's order does not matter. Resolves to the number of bytes written.
 */
export async function writeCpio(entries: CpioEntry[], stream: Writable, opts: WriteCpioOptions): Promise<number> {
  const ordered = archiveOrder(entries);
  const seen = new Set<string>();
  for (const e of ordered) {
    checkPath(e.path);
    if (seen.has(e.path)) throw new InternalError(`cpio: "${e.path}" appears twice`);
    seen.add(e.path);
  }
  // Hard-link groups: one inode, nlink = members, data on the last member (as GNU cpio does;
  // the kernel links later members to the first and writes the data it finds).
  const groups = new Map<string, CpioEntry[]>();
  for (const e of ordered) {
    if (e.type === "file" && e.hardLinkKey) groups.set(e.hardLinkKey, [...(groups.get(e.hardLinkKey) ?? []), e]);
  }
  const inodeOfGroup = new Map<string, number>();
  const out = new Output(stream, opts);
  let nextIno = 1;
  for (const e of ordered) {
    const group = e.type === "file" && e.hardLinkKey ? groups.get(e.hardLinkKey) : undefined;
    let ino: number;
    if (group && group.length > 1) {
      ino = inodeOfGroup.get(e.hardLinkKey!) ?? nextIno++;
      inodeOfGroup.set(e.hardLinkKey!, ino);
    } else {
      ino = nextIno++;
    }
    const carriesData = !group || group.length === 1 || group[group.length - 1] === e;
    let body: Buffer | string | undefined;
    if (e.type === "symlink") {
      if (!e.linkTarget) throw new InternalError(`cpio: symlink "${e.path}" has no target`);
      body = Buffer.from(e.linkTarget, "utf8");
    } else if (e.type === "file" && carriesData) {
      body = e.source;
    }
    const content = openContent(body);
    const size = content.size;
    const name = Buffer.from(e.path + "\0", "utf8");
    try {
      await out.write(
        header({
          ino,
          mode: TYPE_BITS[e.type] | (e.mode & 0o7777),
          uid: e.uid,
          gid: e.gid,
          nlink: e.type === "dir" ? 2 : group ? group.length : 1,
          mtime: opts.epoch,
          size,
          rdevMajor: e.rdevMajor ?? 0,
          rdevMinor: e.rdevMinor ?? 0,
          nameSize: name.length,
        }),
      );
      await out.write(name);
      await out.write(ZEROS.subarray(0, pad4(110 + name.length)));
      await content.write(out);
    } finally {
      content.close();
    }
    await out.write(ZEROS.subarray(0, pad4(size)));
  }
  const trailer = Buffer.from("TRAILER!!!\0", "latin1");
  await out.write(
    header({
      ino: 0,
      mode: 0,
      uid: 0,
      gid: 0,
      nlink: 1,
      mtime: 0,
      size: 0,
      rdevMajor: 0,
      rdevMinor: 0,
      nameSize: trailer.length,
    }),
  );
  await out.write(trailer);
  await out.write(ZEROS.subarray(0, pad4(110 + trailer.length)));
  await out.flush();
  return out.written;
}
