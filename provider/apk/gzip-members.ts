import * as zlib from "node:zlib";

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
    throw new Error(`${source}: gzip member at byte ${offset}: ${why}`);
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

/**
 * Splits a buffer of concatenated gzip members, as APK files are, into its members; together
 * they may expand to at most `maxOutput` bytes.
 */
export function splitGzipMembers(data: Buffer, source: string, maxOutput: number = MAX_MEMBER_OUTPUT): GzipMember[] {
  if (data.length === 0) throw new Error(`${source}: empty file, expected concatenated gzip members`);
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
