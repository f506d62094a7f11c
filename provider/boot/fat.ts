import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { TargetError } from "../ramroot-error";

/**
 * A reader of FAT12/16/32 inside a disk image: the image target's listings, reads and hashes
 * (each read by mtools would be a process, ~15-30 ms), and where a file's bytes lie, so a few
 * sectors can be patched in place (syslinux's ADV at the end of ldlinux.sys: mtools can only
 * replace whole files, which would move ldlinux.sys away from the sectors its boot sector
 * records). Names follow what mdir shows (long names, checksums, case flags). Writes stay with
 * mtools. No maintained npm package reads FAT without a block-device layer, hence this reader.
 */
export interface FatVolume {
  /** byte offset of the filesystem inside the image */
  offset: number;
  bits: 12 | 16 | 32;
  bytesPerSector: number;
  clusterBytes: number;
  /** byte offset (in the image) of the first FAT */
  fatStart: number;
  /** FAT12/16: byte offset of the fixed root directory and its size */
  rootDirStart: number;
  rootDirBytes: number;
  /** FAT32: the root directory's first cluster */
  rootCluster: number;
  /** byte offset of cluster 2 */
  dataStart: number;
  clusterCount: number;
}

export interface FatFile {
  size: number;
  clusters: number[];
  attributes: number;
}

/**
 * What the volume says cannot be (a size beyond the volume, a chain that leaves it or loops, a
 * volume larger than the image) or is refused (a file larger than its reader takes). Read again
 * it says the same, so it is reported, not retried another way.
 */
export class FatDamagedError extends TargetError {
  constructor(message: string) {
    super(message, "check the volume (fsck.vfat -n from dosfstools), or make the disk anew with `ramroot disk create`");
  }
}

async function pread(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, offset);
  if (bytesRead !== length)
    throw new TargetError(`FAT image ends at byte ${offset + bytesRead}; expected ${length} bytes at ${offset}`);
  return buf;
}

export async function readFatVolume(fh: FileHandle, offset: number): Promise<FatVolume> {
  const bs = await pread(fh, offset, 512);
  const bytesPerSector = bs.readUInt16LE(11);
  const sectorsPerCluster = bs[13] ?? 0;
  const reserved = bs.readUInt16LE(14);
  const fats = bs[16] ?? 0;
  const rootEntries = bs.readUInt16LE(17);
  const total = bs.readUInt16LE(19) || bs.readUInt32LE(32);
  const fatSectors = bs.readUInt16LE(22) || bs.readUInt32LE(36);
  if (
    bs.readUInt16LE(510) !== 0xaa55 ||
    ![512, 1024, 2048, 4096].includes(bytesPerSector) ||
    sectorsPerCluster === 0 ||
    fats === 0
  ) {
    throw new TargetError(`no FAT boot sector at byte ${offset} of the image`);
  }
  const rootDirSectors = Math.ceil((rootEntries * 32) / bytesPerSector);
  const dataSector = reserved + fats * fatSectors + rootDirSectors;
  const clusterCount = Math.floor((total - dataSector) / sectorsPerCluster);
  if (clusterCount < 1) throw new FatDamagedError(`the FAT boot sector at byte ${offset} declares no data clusters`);
  // Microsoft's rule: the type follows from the cluster count alone.
  const bits = clusterCount < 4085 ? 12 : clusterCount < 65525 ? 16 : 32;
  if (fatSectors * bytesPerSector * 8 < (clusterCount + 2) * bits)
    throw new FatDamagedError(
      `the FAT boot sector at byte ${offset} declares ${clusterCount} clusters but a FAT of ${fatSectors} sectors, too small for them`,
    );
  // Everything read later (a file's size, a cluster chain, the FAT itself) is bounded by the
  // volume, so the volume must be in the image: its last byte is read now (block devices too).
  const end = offset + total * bytesPerSector;
  const { bytesRead } = await fh.read(Buffer.alloc(1), 0, 1, end - 1);
  if (bytesRead !== 1)
    throw new FatDamagedError(
      `the FAT volume at byte ${offset} declares ${total} sectors (${end - offset} bytes), more than the image holds`,
    );
  return {
    offset,
    bits,
    bytesPerSector,
    clusterBytes: bytesPerSector * sectorsPerCluster,
    fatStart: offset + reserved * bytesPerSector,
    rootDirStart: offset + (reserved + fats * fatSectors) * bytesPerSector,
    rootDirBytes: rootDirSectors * bytesPerSector,
    rootCluster: bits === 32 ? bs.readUInt32LE(44) : 0,
    dataStart: offset + dataSector * bytesPerSector,
    clusterCount,
  };
}

async function nextCluster(fh: FileHandle, vol: FatVolume, cluster: number): Promise<number> {
  if (vol.bits === 12) {
    const at = vol.fatStart + Math.floor(cluster * 1.5);
    const v = (await pread(fh, at, 2)).readUInt16LE(0);
    return cluster & 1 ? v >> 4 : v & 0xfff;
  }
  if (vol.bits === 16) return (await pread(fh, vol.fatStart + cluster * 2, 2)).readUInt16LE(0);
  return (await pread(fh, vol.fatStart + cluster * 4, 4)).readUInt32LE(0) & 0x0fffffff;
}

/**
 * Adds cluster `c` to `chain`, refusing what no FAT may hold: a cluster outside the volume, or
 * one the chain has already (a loop). `seen` holds the chain's clusters.
 */
function extendChain(vol: FatVolume, chain: number[], seen: Set<number>, c: number, what: string): void {
  if (c < 2 || c >= vol.clusterCount + 2)
    throw new FatDamagedError(`FAT cluster chain of ${what} is broken at cluster ${c} (${chain.length} clusters read)`);
  if (seen.has(c))
    throw new FatDamagedError(`FAT cluster chain of ${what} loops back to cluster ${c} after ${chain.length} clusters`);
  seen.add(c);
  chain.push(c);
}

/** The cluster chain starting at `first` (`what` names it in errors). */
export async function clusterChain(
  fh: FileHandle,
  vol: FatVolume,
  first: number,
  what = `cluster ${first}`,
): Promise<number[]> {
  const end = vol.bits === 12 ? 0xff8 : vol.bits === 16 ? 0xfff8 : 0x0ffffff8;
  const chain: number[] = [];
  const seen = new Set<number>();
  for (let c = first; c < end; c = await nextCluster(fh, vol, c)) {
    if (c < 2 && chain.length === 0) break; // an empty file or directory
    extendChain(vol, chain, seen, c, what);
  }
  return chain;
}

/** Refuses a file whose directory entry claims more bytes than the volume holds. */
function checkSize(vol: FatVolume, entry: { size: number }, path: string): void {
  if (entry.size > vol.clusterCount * vol.clusterBytes)
    throw new FatDamagedError(
      `FAT file ${path} claims ${entry.size} bytes, more than the volume's ${vol.clusterCount * vol.clusterBytes}`,
    );
}

/** Byte offset in the image of `fileOffset` within a file laid out on `clusters`. */
export function imageOffsetOf(vol: FatVolume, clusters: number[], fileOffset: number): number {
  const cluster = clusters[Math.floor(fileOffset / vol.clusterBytes)];
  if (cluster === undefined)
    throw new TargetError(`byte ${fileOffset} lies past the file's ${clusters.length} clusters`);
  return vol.dataStart + (cluster - 2) * vol.clusterBytes + (fileOffset % vol.clusterBytes);
}

interface DirEntry {
  longName?: string;
  shortName: string;
  /** byte 12: 0x08 the base, 0x10 the extension of the short name is shown in lower case */
  caseFlags: number;
  attributes: number;
  firstCluster: number;
  size: number;
}

function shortNameOf(raw: Buffer): string {
  const base = raw.toString("latin1", 0, 8).trimEnd();
  const ext = raw.toString("latin1", 8, 11).trimEnd();
  return ext === "" ? base : `${base}.${ext}`;
}

/**
 * The checksum each long-name entry carries of the 11-byte short name it belongs to (the FAT
 * specification's ChkSum). A long name whose checksum does not match the short entry after it is
 * an orphan (the short entry was renamed or replaced by a tool that knows no long names): it is
 * dropped, as mtools and the kernel drop it.
 */
function shortNameChecksum(raw: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + (raw[i] ?? 0)) & 0xff;
  return sum;
}

function parseDirectory(data: Buffer, bits: FatVolume["bits"]): DirEntry[] {
  const entries: DirEntry[] = [];
  let lfn: string[] = [];
  let lfnChecksum = -1;
  for (let at = 0; at + 32 <= data.length; at += 32) {
    const first = data[at] ?? 0;
    if (first === 0x00) break;
    const attributes = data[at + 11] ?? 0;
    if (first === 0xe5) {
      lfn = [];
      continue;
    }
    if (attributes === 0x0f) {
      const part = Buffer.concat([
        data.subarray(at + 1, at + 11),
        data.subarray(at + 14, at + 26),
        data.subarray(at + 28, at + 32),
      ]);
      const text = part.toString("utf16le").split("\u0000")[0] ?? "";
      const checksum = data[at + 13] ?? 0;
      if (first & 0x40) lfn = [];
      else if (checksum !== lfnChecksum) lfn = [];
      lfnChecksum = checksum;
      lfn.unshift(text);
      continue;
    }
    if (attributes & 0x08) {
      lfn = [];
      continue; // volume label
    }
    const hi = bits === 32 ? data.readUInt16LE(at + 20) : 0;
    const raw = data.subarray(at, at + 11);
    entries.push({
      longName: lfn.length > 0 && lfnChecksum === shortNameChecksum(raw) ? lfn.join("") : undefined,
      shortName: shortNameOf(raw),
      caseFlags: data[at + 12] ?? 0,
      attributes,
      firstCluster: (hi << 16) | data.readUInt16LE(at + 26),
      size: data.readUInt32LE(at + 28),
    });
    lfn = [];
  }
  return entries;
}

async function readDirectory(fh: FileHandle, vol: FatVolume, firstCluster: number | "root"): Promise<DirEntry[]> {
  if (firstCluster === "root" && vol.bits !== 32)
    return parseDirectory(await pread(fh, vol.rootDirStart, vol.rootDirBytes), vol.bits);
  const first = firstCluster === "root" ? vol.rootCluster : firstCluster;
  const chain = await clusterChain(fh, vol, first, `the directory at cluster ${first}`);
  const parts = await Promise.all(
    chain.map((c) => pread(fh, vol.dataStart + (c - 2) * vol.clusterBytes, vol.clusterBytes)),
  );
  return parseDirectory(Buffer.concat(parts), vol.bits);
}

/** The directory entry of a file at `path`, names matched case-insensitively, long or short. */
async function findFileEntry(fh: FileHandle, vol: FatVolume, path: string): Promise<DirEntry | undefined> {
  const parts = path.split("/").filter((p) => p !== "");
  let dir: number | "root" = "root";
  for (let i = 0; i < parts.length; i++) {
    const want = (parts[i] ?? "").toLowerCase();
    const entry: DirEntry | undefined = (await readDirectory(fh, vol, dir)).find(
      (e) => e.shortName.toLowerCase() === want || e.longName?.toLowerCase() === want,
    );
    if (!entry) return undefined;
    const isDir = (entry.attributes & 0x10) !== 0;
    if (i === parts.length - 1) return isDir ? undefined : entry;
    if (!isDir) return undefined;
    dir = entry.firstCluster === 0 ? "root" : entry.firstCluster;
  }
  return undefined;
}

/** Finds a file by path ("ldlinux.sys", "boot/syslinux/ldlinux.sys"), names matched case-insensitively, long or short. */
export async function findFatFile(fh: FileHandle, vol: FatVolume, path: string): Promise<FatFile | undefined> {
  const entry = await findFileEntry(fh, vol, path);
  if (!entry) return undefined;
  checkSize(vol, entry, path);
  const clusters = entry.size === 0 ? [] : await clusterChain(fh, vol, entry.firstCluster, path);
  if (clusters.length * vol.clusterBytes < entry.size)
    throw new FatDamagedError(
      `FAT file ${path} claims ${entry.size} bytes but its chain holds ${clusters.length} clusters`,
    );
  return { size: entry.size, clusters, attributes: entry.attributes };
}

/**
 * Where a file's bytes lie in the image, found as `findFatFile` finds it: its size and the runs
 * of adjacent clusters, as (image offset, length) in file order, the last cut to the size; with
 * `maxBytes`, only the first maxBytes + 1 bytes (so a caller sees that the file is larger). The
 * FAT is read once, so a kernel costs a handful of reads, not one per cluster.
 */
async function fileRuns(
  fh: FileHandle,
  vol: FatVolume,
  path: string,
  maxBytes?: number,
): Promise<{ size: number; runs: { at: number; length: number }[] } | undefined> {
  const entry = await findFileEntry(fh, vol, path);
  if (!entry) return undefined;
  if (entry.size === 0) return { size: 0, runs: [] };
  checkSize(vol, entry, path);
  const size = maxBytes === undefined ? entry.size : Math.min(entry.size, maxBytes + 1);
  const fat = await pread(fh, vol.fatStart, Math.ceil(((vol.clusterCount + 2) * vol.bits) / 8) + 1);
  const next = (c: number): number => {
    if (vol.bits === 12) {
      const v = fat.readUInt16LE(Math.floor(c * 1.5));
      return c & 1 ? v >> 4 : v & 0xfff;
    }
    return vol.bits === 16 ? fat.readUInt16LE(c * 2) : fat.readUInt32LE(c * 4) & 0x0fffffff;
  };
  const clusters = Math.ceil(size / vol.clusterBytes);
  const chain: number[] = [];
  const seen = new Set<number>();
  for (let c = entry.firstCluster; chain.length < clusters; c = next(c)) extendChain(vol, chain, seen, c, path);
  const runs: { at: number; length: number }[] = [];
  for (let i = 0; i < chain.length;) {
    let j = i + 1;
    while (j < chain.length && chain[j] === (chain[j - 1] ?? 0) + 1) j++;
    const length = Math.min((j - i) * vol.clusterBytes, size - i * vol.clusterBytes);
    runs.push({ at: vol.dataStart + ((chain[i] ?? 0) - 2) * vol.clusterBytes, length });
    i = j;
  }
  return { size, runs };
}

/** A file's bytes (see fileRuns: at most maxBytes + 1 of them); undefined when there is no such file. */
export async function readFatFile(
  fh: FileHandle,
  vol: FatVolume,
  path: string,
  maxBytes?: number,
): Promise<Buffer | undefined> {
  const file = await fileRuns(fh, vol, path, maxBytes);
  if (!file) return undefined;
  const out = Buffer.alloc(file.size);
  let done = 0;
  for (const run of file.runs) {
    const { bytesRead } = await fh.read(out, done, run.length, run.at);
    if (bytesRead !== run.length) throw new TargetError(`FAT image ends inside ${path}`);
    done += run.length;
  }
  return out;
}

/** Bytes read per turn when a file is hashed: one buffer, reused, so its pages are touched once. */
const HASH_CHUNK = 4 << 20;

/**
 * The sha256 (hex) of a file (see fileRuns), read in chunks through one buffer: a 100 MiB layer
 * read whole into a new buffer spent most of its time faulting in the buffer's pages.
 * Undefined when there is no such file.
 */
export async function hashFatFile(fh: FileHandle, vol: FatVolume, path: string): Promise<string | undefined> {
  const file = await fileRuns(fh, vol, path);
  if (!file) return undefined;
  const hash = createHash("sha256");
  const chunk = Buffer.allocUnsafe(Math.min(HASH_CHUNK, Math.max(file.size, 1)));
  for (const run of file.runs) {
    for (let done = 0; done < run.length;) {
      const length = Math.min(chunk.length, run.length - done);
      const { bytesRead } = await fh.read(chunk, 0, length, run.at + done);
      if (bytesRead !== length) throw new TargetError(`FAT image ends inside ${path}`);
      hash.update(chunk.subarray(0, length));
      done += length;
    }
  }
  return hash.digest("hex");
}

/**
 * The names in a directory as `mdir -b` shows them with MTOOLS_LOWER_CASE set (mtools.ts): the
 * long name, else the short name with its case bits applied, all in lower case when it has no
 * lower-case letter; "." and ".." left out. None when `path` does not exist (mdir: not found);
 * undefined when a part of it is a file.
 */
export async function listFatDirectory(
  fh: FileHandle,
  vol: FatVolume,
  path: string,
): Promise<{ name: string; isDir: boolean }[] | undefined> {
  const parts = path.split("/").filter((p) => p !== "");
  let dir: number | "root" = "root";
  for (const part of parts) {
    const want = part.toLowerCase();
    const entry: DirEntry | undefined = (await readDirectory(fh, vol, dir)).find(
      (e) => e.shortName.toLowerCase() === want || e.longName?.toLowerCase() === want,
    );
    if (!entry) return [];
    if ((entry.attributes & 0x10) === 0) return undefined;
    dir = entry.firstCluster === 0 ? "root" : entry.firstCluster;
  }
  return (await readDirectory(fh, vol, dir))
    .filter((e) => e.shortName !== "." && e.shortName !== "..")
    .map((e) => ({ name: e.longName ?? shownShortName(e), isDir: (e.attributes & 0x10) !== 0 }));
}

function shownShortName(e: DirEntry): string {
  const [base = "", ext] = e.shortName.split(".");
  const cased = `${e.caseFlags & 0x08 ? base.toLowerCase() : base}${
    ext === undefined ? "" : `.${e.caseFlags & 0x10 ? ext.toLowerCase() : ext}`
  }`;
  return cased === cased.toUpperCase() ? cased.toLowerCase() : cased;
}
