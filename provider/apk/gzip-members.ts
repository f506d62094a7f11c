import * as zlib from "node:zlib";
import type { ByteSource } from "./byte-source";
import { TrustError } from "../ramroot-error";

/**
 * One gzip member of a concatenated stream: the raw bytes it occupies in the file (what APK
 * signatures and checksums cover) and where they start.
 */
export interface GzipMember {
  /** Offset of the member's first byte in the whole buffer. */
  offset: number;
  /** The member's raw compressed bytes: header, deflate stream and trailer. */
  raw: Buffer;
  /** The member's inflated content. */
  content: Buffer;
}

/**
 * Expansion limits. Nothing is inflated before the bytes it comes from are verified, except
 * what must be inflated to find where a member ends (a signature member, a package's control
 * member), which is bounded here; an index or a data member is inflated only after its
 * signature or hash checked out, and still within limits.
 */
export const EXPANSION_LIMITS = {
  /** a signature member: a tar of one or a few RSA signatures */
  signatureMember: 64 << 10,
  /** a package's control member: .PKGINFO and scripts */
  controlMember: 16 << 20,
  /** an APKINDEX archive (Alpine's largest, community, is ~10 MiB) */
  index: 128 << 20,
  /** a package's data member: at least this much ... */
  dataFloor: 64 << 20,
  /** ... or this many times its compressed size */
  dataRatio: 200,
  /** and never more than this */
  dataMax: 2 ** 31,
} as const;

/** Default for a member when the caller names no limit. */
const MAX_MEMBER_OUTPUT = EXPANSION_LIMITS.index;

/** A member that would expand beyond its limit. */
export class GzipLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GzipLimitError";
  }
}

const FTEXT = 1;
const FHCRC = 2;
const FEXTRA = 4;
const FNAME = 8;
const FCOMMENT = 16;

/**
 * Where the deflate stream of the gzip member at `offset` starts: its header parsed and checked
 * (magic, method, flags, optional fields). Errors name the member by `reportAt` (its offset in
 * the whole file when `data` is a piece of it).
 */
export function gzipBodyOffset(data: Buffer, offset: number, source: string, reportAt: number = offset): number {
  const fail = (why: string): never => {
    throw new TrustError(`${source}: gzip member at byte ${reportAt}: ${why}`, undefined, "repositories");
  };
  if (data.length - offset < 18)
    fail(`truncated (${data.length - offset} bytes left, a gzip member needs at least 18)`);
  if (data[offset] !== 0x1f || data[offset + 1] !== 0x8b) {
    fail(`not gzip (starts with 0x${data.subarray(offset, offset + 2).toString("hex")}, expected 0x1f8b)`);
  }
  if (data[offset + 2] !== 8) fail(`unsupported compression method ${data[offset + 2]} (only deflate, 8, exists)`);
  const flags = data[offset + 3]!;
  if (flags & ~(FTEXT | FHCRC | FEXTRA | FNAME | FCOMMENT)) fail(`reserved header flags set (0x${flags.toString(16)})`);
  let pos = offset + 10;
  if (flags & FEXTRA) {
    if (pos + 2 > data.length) fail("truncated in the extra field");
    pos += 2 + data.readUInt16LE(pos);
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if (flags & flag) {
      const end = data.indexOf(0, pos);
      if (end < 0) fail("truncated in the header's name or comment");
      pos = end + 1;
    }
  }
  if (flags & FHCRC) pos += 2;
  if (pos >= data.length) fail("truncated after the header");
  return pos;
}

/**
 * Reads one gzip member starting at `offset`, returning its raw bytes and inflated content.
 * Node's gunzip joins members silently, so the header and trailer are parsed here and only the
 * raw deflate stream is handed to zlib, whose `bytesWritten` tells how much of the input the
 * stream consumed; that is where the member ends. CRC-32 and length in the trailer are checked.
 */
export function readGzipMember(
  data: Buffer,
  offset: number,
  source: string,
  maxOutput: number = MAX_MEMBER_OUTPUT,
): GzipMember {
  const fail = (why: string): never => {
    throw new TrustError(`${source}: gzip member at byte ${offset}: ${why}`, undefined, "repositories");
  };
  const pos = gzipBodyOffset(data, offset, source);
  let inflated: { buffer: Buffer; engine: zlib.InflateRaw };
  try {
    // maxOutputLength stops zlib as soon as the member would expand beyond the limit: a gzip
    // bomb costs at most `maxOutput` bytes of memory, never what it would expand to.
    inflated = zlib.inflateRawSync(data.subarray(pos), { info: true, maxOutputLength: maxOutput }) as unknown as {
      buffer: Buffer;
      engine: zlib.InflateRaw;
    };
  } catch (err) {
    if (err instanceof RangeError || (err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw new GzipLimitError(
        `${source}: gzip member at byte ${offset} expands beyond ${maxOutput} bytes (from ${data.length - offset} compressed); refused as a decompression bomb`,
      );
    }
    return fail(`corrupt or truncated deflate data (${(err as Error).message})`);
  }
  const end = pos + inflated.engine.bytesWritten;
  if (end + 8 > data.length) fail("truncated: the 8-byte trailer (CRC-32, length) is missing");
  const crc = data.readUInt32LE(end);
  const size = data.readUInt32LE(end + 4);
  const content = inflated.buffer;
  if (zlib.crc32(content) !== crc) fail("CRC-32 of the content does not match the trailer (corrupt)");
  if (content.length >>> 0 !== size) fail(`length ${content.length} does not match the trailer's ${size} (corrupt)`);
  return { offset, raw: data.subarray(offset, end + 8), content };
}

/** Raw bytes read at a time when a member is streamed (into one buffer, reused). */
const RAW_CHUNK = 128 << 10;
/** zlib's output chunk. */
const INFLATE_CHUNK = 128 << 10;
/**
 * The content is handed to the sink in pieces of this size (one buffer, reused). The expander
 * hands each piece on to the file writer, which writes it at once.
 */
const PIECE = 256 << 10;
/** A gzip header longer than this (a name or comment field) is refused when streaming. */
const MAX_STREAMED_HEADER = 64 << 10;

export interface StreamedMember {
  /** Inflated bytes handed to the sink. */
  contentLength: number;
  /** Bytes after the member's trailer, up to the end of the source (another member, or garbage). */
  trailing: number;
}

/** Writes `chunk` to the stream; resolves once the stream is done with it (zlib consumed all of it). */
function writeConsumed(stream: zlib.InflateRaw, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => stream.write(chunk, (err) => (err ? reject(err) : resolve())));
}

/**
 * Gives back the memory of a chunk zlib is done with. zlib's stream inflates into a new 128 KiB
 * buffer each time the last one is full, and V8 frees those only once their total outgrows its
 * 64 MiB external-memory trigger: inflating a 400 MB kernel package kept ~60 MiB of them around
 * (bench/analysis.md, "Install memory"). A chunk that ends where its buffer ends is the last of
 * that buffer (zlib has moved to a new one), and its bytes, like those of the chunks before it,
 * were copied out: detaching the buffer (ES2024 `transfer`) frees it now.
 */
function release(chunk: Buffer): void {
  const buffer = chunk.buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };
  if (buffer.byteLength === INFLATE_CHUNK && chunk.byteOffset + chunk.length === INFLATE_CHUNK) buffer.transfer?.(0);
}

/**
 * Inflates the gzip member that starts at `offset` of `src` as a stream: raw bytes are read a
 * chunk at a time into one buffer (each shown to `onRaw` during the call, up to the end of the
 * source, e.g. to hash them), inflated on zlib's thread pool, and the content handed to `sink`
 * in pieces of up to 256 KiB, each awaited. A piece is valid only until its sink call settles (the
 * memory is reused for the next): a sink copies what it keeps. So memory stays at a few buffers
 * however large the member. Stops with GzipLimitError once the content passes `maxOutput`; the
 * trailer's CRC-32 and length are checked at the end.
 */
export async function streamGzipMember(
  src: ByteSource,
  offset: number,
  opts: {
    source: string;
    maxOutput: number;
    onRaw?: (raw: Buffer) => void;
    sink: (piece: Buffer) => void | Promise<void>;
  },
): Promise<StreamedMember> {
  const { source, maxOutput } = opts;
  const fail = (why: string): never => {
    throw new TrustError(`${source}: gzip member at byte ${offset}: ${why}`, undefined, "repositories");
  };
  const head = src.read(offset, Math.min(src.size - offset, MAX_STREAMED_HEADER));
  const bodyStart = offset + gzipBodyOffset(head, 0, source, offset);
  const inflate = zlib.createInflateRaw({ chunkSize: INFLATE_CHUNK });
  const piece = Buffer.allocUnsafe(PIECE);
  let used = 0;
  let produced = 0;
  let crc = 0;
  const deliver = async () => {
    if (used === 0) return;
    const content = piece.subarray(0, used);
    crc = zlib.crc32(content, crc);
    await opts.sink(content);
    used = 0;
  };
  const output = async () => {
    for await (const chunk of inflate as AsyncIterable<Buffer>) {
      produced += chunk.length;
      if (produced > maxOutput)
        throw new GzipLimitError(
          `${source}: gzip member at byte ${offset} expands beyond ${maxOutput} bytes (from ${src.size - offset} compressed); refused as a decompression bomb`,
        );
      for (let at = 0; at < chunk.length;) {
        const n = chunk.copy(piece, used, at);
        used += n;
        at += n;
        if (used === piece.length) await deliver();
      }
      release(chunk);
    }
    await deliver();
  };
  const input = async () => {
    const raw = Buffer.allocUnsafe(Math.max(1, Math.min(RAW_CHUNK, src.size - offset)));
    let fed = 0;
    let ended = false;
    for (let pos = offset; pos < src.size;) {
      const chunk = src.read(pos, Math.min(RAW_CHUNK, src.size - pos), raw);
      if (chunk.length === 0) break;
      opts.onRaw?.(chunk);
      const from = Math.max(0, bodyStart - pos);
      pos += chunk.length;
      if (ended || from >= chunk.length) continue;
      fed += chunk.length - from;
      await writeConsumed(inflate, chunk.subarray(from));
      // zlib took less than it was given: the deflate stream ended; the rest is only hashed.
      ended = inflate.bytesWritten < fed;
    }
    inflate.end();
  };
  // The first failure is the one reported: zlib's own error (corrupt data), the limit, or the sink's.
  let failure: unknown;
  inflate.on("error", (err) => (failure ??= err));
  const stopOnFailure = (side: Promise<void>) =>
    side.catch((err: unknown) => {
      failure ??= err;
      inflate.destroy(err as Error);
      throw err;
    });
  try {
    await Promise.all([stopOnFailure(input()), stopOnFailure(output())]);
  } catch (err) {
    const cause = failure ?? err;
    if (cause instanceof GzipLimitError || !(cause as { code?: string }).code?.startsWith("Z_")) throw cause;
    return fail(`corrupt or truncated deflate data (${(cause as Error).message})`);
  }
  const end = bodyStart + inflate.bytesWritten;
  if (end + 8 > src.size) fail("truncated: the 8-byte trailer (CRC-32, length) is missing");
  const trailer = src.read(end, 8);
  if (trailer.readUInt32LE(0) !== crc) fail("CRC-32 of the content does not match the trailer (corrupt)");
  if (produced >>> 0 !== trailer.readUInt32LE(4))
    fail(`length ${produced} does not match the trailer's ${trailer.readUInt32LE(4)} (corrupt)`);
  return { contentLength: produced, trailing: src.size - end - 8 };
}

/**
 * Splits a buffer of concatenated gzip members, as APK files are, into its members; together
 * they may expand to at most `maxOutput` bytes.
 */
export function splitGzipMembers(data: Buffer, source: string, maxOutput: number = MAX_MEMBER_OUTPUT): GzipMember[] {
  if (data.length === 0)
    throw new TrustError(`${source}: empty file, expected concatenated gzip members`, undefined, "repositories");
  const members: GzipMember[] = [];
  let offset = 0;
  let total = 0;
  while (offset < data.length) {
    const member = readGzipMember(data, offset, source, maxOutput - total);
    members.push(member);
    total += member.content.length;
    offset += member.raw.length;
  }
  return members;
}

/**
 * Gzip with a fixed header (no name, mtime 0, OS byte 3 = Unix whatever platform zlib was built
 * for), so the same content gives the same bytes on any machine. Level 9, as abuild uses.
 */
export function gzipDeterministic(content: Buffer): Buffer {
  const out = zlib.gzipSync(content, { level: 9 });
  out[9] = 3;
  return out;
}
