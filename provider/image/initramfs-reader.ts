/**
 * Reads an initramfs back: what the kernel would unpack, path by path. The newc parsing is done
 * by the `cpio-stream` package, an implementation independent of ramroot's writer
 * (cpio-writer.ts), so reading an image back checks the writer rather than agreeing with it.
 *
 * An initramfs is a sequence of members, as the kernel's unpack_to_rootfs takes them: gzip
 * members, zstd frames and plain cpio archives, with zero padding allowed between them; each
 * decompressed member holds one or more cpio archives, each ending in TRAILER!!!. A later
 * archive's entry replaces an earlier one at the same path, as the kernel's unpacking does
 * (including its two surprises: a directory with children is not replaced, and a file written
 * over an earlier hard link rewrites every name of that inode).
 * cpio-stream reads one archive and ignores what follows its trailer, so the sequence is
 * handled here: each archive goes to a fresh extractor, and the archive's end is found from
 * the last entry it reported plus the trailer's own header.
 */
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import * as cpio from "cpio-stream";
import type { CpioEntryType } from "./cpio-writer";
import { EXPANSION_LIMITS, readGzipMember } from "../apk/gzip-members";
import { HostError, TargetError } from "../ramroot-error";

export type ImageCompression = "gzip" | "zstd" | "none";

/** One path of an image as the kernel would leave it. */
export interface ImageEntry {
  /** without a leading "/", e.g. "etc/hostname" */
  path: string;
  type: CpioEntryType;
  /** permission bits including setuid/setgid/sticky */
  mode: number;
  uid: number;
  gid: number;
  /** bytes of content (regular files), link target length (symlinks), else 0 */
  size: number;
  /** sha256 (hex) of a regular file's content */
  sha256?: string;
  linkTarget?: string;
  rdevMajor?: number;
  rdevMinor?: number;
  /** 1-based number of the archive (layer) the entry came from */
  layer: number;
}

export interface ImageLayer {
  /** 1-based, in the order the kernel unpacks them */
  layer: number;
  compression: ImageCompression;
  /** offset of the member in the image file */
  offset: number;
  entries: number;
  /** bytes of the uncompressed archive */
  bytes: number;
}

export interface ImageContents {
  /** the final tree, by path, in the order paths first appeared */
  entries: Map<string, ImageEntry>;
  layers: ImageLayer[];
}

export interface ReadImageOptions {
  /** called with every regular file's content (the last writer of a path wins in `entries`) */
  onFile?: (entry: ImageEntry, content: Buffer) => void;
  /** paths whose content is kept in the result's `contents` (e.g. "lib/apk/db/installed") */
  keep?: string[];
}

const TYPE_OF: Record<string, CpioEntryType> = {
  file: "file",
  directory: "dir",
  symlink: "symlink",
  "character-device": "char",
  "block-device": "block",
  fifo: "fifo",
  socket: "socket",
};

const pad4 = (n: number) => (n + 3) & ~3;
const NEWC_HEADER = 110;
const TRAILER = "TRAILER!!!";

interface RawEntry {
  header: cpio.Header;
  /** where the extractor says the entry's data (or, for symlinks, the next header) is */
  offset: number;
  content: Buffer;
}

/** Feeds one archive (starting at `start` of `buf`) through cpio-stream; resolves to its entries. */
function extractArchive(buf: Buffer, start: number, source: string): Promise<RawEntry[]> {
  return new Promise((resolve, reject) => {
    const entries: RawEntry[] = [];
    const extract = cpio.extract();
    extract.on("entry", (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        entries.push({ header, offset: stream.offset, content: Buffer.concat(chunks) });
        next();
      });
      stream.on("error", reject);
    });
    extract.on("error", (err: Error) =>
      reject(new Error(`${source}: cpio archive at byte ${start} of its member: ${err.message}`)),
    );
    extract.on("finish", () => resolve(entries));
    extract.end(buf.subarray(start));
  });
}

/** Where the archive's TRAILER!!! entry ends, from the last entry cpio-stream reported. */
function archiveEnd(buf: Buffer, start: number, entries: RawEntry[], source: string): number {
  const last = entries[entries.length - 1];
  let trailerAt = start;
  if (last) {
    // cpio-stream's offset is the data's start for files and empty entries, and already past
    // the data for symlinks (it reads the target itself).
    const dataSize = last.header.type === "symlink" ? 0 : last.header.size;
    trailerAt = start + last.offset + pad4(dataSize);
  }
  const magic = buf.toString("latin1", trailerAt, trailerAt + 6);
  const nameSize = Number.parseInt(buf.toString("latin1", trailerAt + 94, trailerAt + 102), 16);
  const name = buf.toString("latin1", trailerAt + NEWC_HEADER, trailerAt + NEWC_HEADER + nameSize - 1);
  if ((magic !== "070701" && magic !== "070702") || name !== TRAILER) {
    throw new TargetError(
      `${source}: the cpio archive at byte ${start} of its member does not end in ${TRAILER} (truncated or not newc)`,
    );
  }
  return pad4(trailerAt + NEWC_HEADER + nameSize);
}

function skipZeros(buf: Buffer, pos: number): number {
  while (pos < buf.length && buf[pos] === 0) pos++;
  return pos;
}

/** The end of the zstd frame (or skippable frame) at `pos`, from its block headers. */
function zstdFrameEnd(buf: Buffer, pos: number, source: string): number {
  const fail = (why: string): never => {
    throw new TargetError(`${source}: zstd frame at byte ${pos}: ${why}`);
  };
  const magic = buf.readUInt32LE(pos);
  if ((magic & 0xfffffff0) === 0x184d2a50) return pos + 8 + buf.readUInt32LE(pos + 4);
  const fhd = buf[pos + 4] ?? fail("truncated");
  const singleSegment = (fhd >> 5) & 1;
  const fcsSize = [singleSegment ? 1 : 0, 2, 4, 8][fhd >> 6]!;
  const dictSize = [0, 1, 2, 4][fhd & 3]!;
  let p = pos + 5 + (singleSegment ? 0 : 1) + dictSize + fcsSize;
  for (;;) {
    if (p + 3 > buf.length) fail("truncated in its blocks");
    const h = buf.readUIntLE(p, 3);
    const type = (h >> 1) & 3;
    const size = h >> 3;
    if (type === 3) fail(`reserved block type at byte ${p}`);
    p += 3 + (type === 1 ? 1 : size);
    if (h & 1) break;
  }
  if ((fhd >> 2) & 1) p += 4;
  if (p > buf.length) fail("truncated");
  return p;
}

/**
 * What a compressed member of `compressed` bytes may expand to: an initramfs compresses a few
 * times (zero-filled files much more), a bomb thousands of times; past this it is refused before
 * more is inflated, so a crafted image costs bounded memory and time.
 */
function memberLimit(compressed: number): number {
  return Math.min(EXPANSION_LIMITS.dataMax, Math.max(EXPANSION_LIMITS.dataFloor, 64 * compressed));
}

/** One zstd frame through the zstd program (as compress.ts does; Node's zstd is not in every Node the provider may run under). */
function zstdDecompress(frame: Buffer, what: string): Buffer {
  const limit = memberLimit(frame.length);
  const result = spawnSync("zstd", ["-d", "-c", "-q"], { input: frame, maxBuffer: limit });
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === "ENOBUFS")
    throw new TargetError(
      `${what}: expands beyond ${limit} bytes (from ${frame.length} compressed); refused as a decompression bomb`,
    );
  if (result.error) throw new HostError(`${what}: cannot run zstd: ${result.error.message} (install Debian's zstd)`);
  if (result.status !== 0)
    throw new HostError(`${what}: zstd -d exited with ${result.status}: ${result.stderr.toString("utf8").trim()}`);
  return result.stdout;
}

interface Member {
  compression: ImageCompression;
  offset: number;
  /** the uncompressed bytes, holding one or more cpio archives */
  content: Buffer;
  /** for plain cpio: where it starts in content (the image itself) */
  start: number;
}

function isCpioMagic(buf: Buffer, pos: number): boolean {
  return buf.toString("latin1", pos, pos + 5) === "07070";
}

/**
 * Reads an image: every member decompressed, every archive through cpio-stream, the final tree
 * assembled as the kernel would (a later archive's entry replaces an earlier one).
 */
export async function readImage(
  image: Buffer,
  source: string,
  opts: ReadImageOptions = {},
): Promise<ImageContents & { contents: Map<string, Buffer> }> {
  const entries = new Map<string, ImageEntry>();
  const layers: ImageLayer[] = [];
  const contents = new Map<string, Buffer>();
  const keep = new Set(opts.keep ?? []);

  const readArchives = async (member: Member, from: number, untilCompressed: boolean): Promise<number> => {
    let pos = from;
    for (;;) {
      pos = skipZeros(member.content, pos);
      if (pos >= member.content.length) return pos;
      if (!isCpioMagic(member.content, pos)) {
        if (untilCompressed) return pos;
        throw new TargetError(
          `${source}: ${member.compression} member at byte ${member.offset} holds something other than a cpio archive at byte ${pos}`,
        );
      }
      const raw = await extractArchive(member.content, pos, source);
      const end = archiveEnd(member.content, pos, raw, source);
      const layer = layers.length + 1;
      layers.push({
        layer,
        compression: member.compression,
        offset: member.compression === "none" ? pos : member.offset,
        entries: raw.length,
        bytes: end - pos,
      });
      addArchive(raw, layer);
      pos = end;
    }
  };

  // Hard-link groups ("layer:ino" -> paths) and each path's group, for the kernel's O_TRUNC rule.
  const groups = new Map<string, Set<string>>();
  const groupOf = new Map<string, string>();
  // Every directory some placed path lies under (paths are never taken out, only replaced).
  const parents = new Set<string>();
  const hasChildren = (dir: string): boolean => parents.has(dir);
  const leaveGroup = (path: string): void => {
    const g = groupOf.get(path);
    if (g !== undefined) groups.get(g)?.delete(path);
    groupOf.delete(path);
  };
  const place = (entry: ImageEntry, content: Buffer): void => {
    entries.delete(entry.path);
    entries.set(entry.path, entry);
    for (let at = entry.path.lastIndexOf("/"); at > 0; at = entry.path.lastIndexOf("/", at - 1)) {
      const dir = entry.path.slice(0, at);
      if (parents.has(dir)) break;
      parents.add(dir);
    }
    if (entry.type === "file") {
      opts.onFile?.(entry, content);
      if (keep.has(entry.path)) contents.set(entry.path, content);
    }
  };

  const addArchive = (raw: RawEntry[], layer: number): void => {
    // Hard links: the data travels on one member of the inode group (GNU cpio: the last).
    const inodeData = new Map<number, Buffer>();
    for (const r of raw)
      if (r.header.type === "file" && r.header.nlink > 1 && r.content.length > 0)
        inodeData.set(r.header.ino, r.content);
    for (const r of raw) {
      const type = TYPE_OF[String(r.header.type)];
      if (type === undefined)
        throw new TargetError(
          `${source}: "${r.header.name}" has an unknown file type (mode 0${r.header.mode.toString(8)})`,
        );
      const path = r.header.name.replace(/^\.?\/+/, "");
      if (path === "" || path === ".") continue;
      const content =
        type === "file" && r.header.nlink > 1 && r.content.length === 0
          ? (inodeData.get(r.header.ino) ?? r.content)
          : r.content;
      const entry: ImageEntry = {
        path,
        type,
        mode: r.header.mode & 0o7777,
        uid: r.header.uid,
        gid: r.header.gid,
        size: type === "file" ? content.length : type === "symlink" ? Buffer.byteLength(r.header.linkname ?? "") : 0,
        layer,
        ...(type === "file" ? { sha256: createHash("sha256").update(content).digest("hex") } : {}),
        ...(type === "symlink" ? { linkTarget: r.header.linkname ?? "" } : {}),
        ...(type === "char" || type === "block"
          ? { rdevMajor: r.header.rdevmajor, rdevMinor: r.header.rdevminor }
          : {}),
      };
      const existing = entries.get(path);
      // The kernel cannot remove a directory that has children (rmdir fails), so what would
      // replace it is not made.
      if (existing?.type === "dir" && type !== "dir" && hasChildren(path)) continue;
      // A regular file over an earlier archive's hard-linked file is opened with O_TRUNC: the
      // shared inode is rewritten, so every name of it gets the new content, mode and owner.
      const group = groupOf.get(path);
      if (existing?.type === "file" && type === "file" && group !== undefined && !group.startsWith(`${layer}:`)) {
        for (const member of groups.get(group) ?? []) place({ ...entry, path: member }, content);
        continue;
      }
      leaveGroup(path);
      if (type === "file" && r.header.nlink > 1) {
        const key = `${layer}:${r.header.ino}`;
        groups.set(key, (groups.get(key) ?? new Set()).add(path));
        groupOf.set(path, key);
      }
      place(entry, content);
    }
  };

  let pos = 0;
  for (;;) {
    pos = skipZeros(image, pos);
    if (pos >= image.length) break;
    if (image[pos] === 0x1f && image[pos + 1] === 0x8b) {
      const member = readGzipMember(image, pos, source, memberLimit(image.length - pos));
      await readArchives({ compression: "gzip", offset: pos, content: member.content, start: 0 }, 0, false);
      pos += member.raw.length;
    } else if (
      pos + 4 <= image.length &&
      (image.readUInt32LE(pos) === 0xfd2fb528 || (image.readUInt32LE(pos) & 0xfffffff0) === 0x184d2a50)
    ) {
      const end = zstdFrameEnd(image, pos, source);
      if (image.readUInt32LE(pos) === 0xfd2fb528) {
        const content = zstdDecompress(image.subarray(pos, end), `${source}: zstd frame at byte ${pos}`);
        await readArchives({ compression: "zstd", offset: pos, content, start: 0 }, 0, false);
      }
      pos = end;
    } else if (isCpioMagic(image, pos)) {
      pos = await readArchives({ compression: "none", offset: pos, content: image, start: pos }, pos, true);
    } else {
      throw new TargetError(
        `${source}: byte ${pos} starts neither a cpio archive nor a gzip or zstd member (0x${image.subarray(pos, pos + 4).toString("hex")})`,
      );
    }
  }
  if (layers.length === 0) throw new TargetError(`${source}: no cpio archive in it`);
  return { entries, layers, contents };
}
