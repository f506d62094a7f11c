/**
 * The writer checked by an independent reader: an archive ramroot packed is read back through
 * cpio-stream (initramfs-reader.ts) and compared, path by path, with the entries it was packed
 * from, while the staging tree those entries name still exists: type, mode, owner, size, the
 * sha256 of every file's content, link targets and device numbers.
 *
 * Off by default (it reads every archive a second time); `RAMROOT_CHECK_ARCHIVES=1` turns it on
 * for every build in the process and its children (the test suite sets it, so every image the
 * tests build, in process, through `ramroot build` or through the provider, is checked). A
 * mismatch fails the build, naming the paths.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import type { CpioEntry } from "./cpio-writer";
import type { ImageEntry } from "./initramfs-reader";
import type { OnPacked } from "./layers";
import { InternalError } from "../ramroot-error";

/** What the check turns on; set to "1" in the environment. */
export const CHECK_ARCHIVES_ENV = "RAMROOT_CHECK_ARCHIVES";

export function archiveCheckEnabled(): boolean {
  return process.env[CHECK_ARCHIVES_ENV] === "1";
}

/** One path as both sides can say it (what was packed, what the reader found): a read entry without its archive number. */
export type PathRecord = Omit<ImageEntry, "layer">;

/** sha256 and size of a host file, read in 1 MiB chunks (kernel modules and firmware are large). */
function hashFile(file: string): { sha256: string; size: number } {
  const hash = createHash("sha256");
  const chunk = Buffer.alloc(1 << 20);
  const fd = fs.openSync(file, "r");
  let size = 0;
  try {
    for (let n; (n = fs.readSync(fd, chunk, 0, chunk.length, null)) > 0; size += n) hash.update(chunk.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return { sha256: hash.digest("hex"), size };
}

/** A packed entry as the reader should find it (its file source hashed now). */
export function packedRecord(e: CpioEntry): PathRecord {
  const content =
    e.type !== "file"
      ? undefined
      : Buffer.isBuffer(e.source)
        ? { sha256: createHash("sha256").update(e.source).digest("hex"), size: e.source.length }
        : e.source !== undefined
          ? hashFile(e.source)
          : { sha256: createHash("sha256").digest("hex"), size: 0 };
  return {
    path: e.path,
    type: e.type,
    mode: e.mode & 0o7777,
    uid: e.uid,
    gid: e.gid,
    size: content ? content.size : e.type === "symlink" ? Buffer.byteLength(e.linkTarget ?? "") : 0,
    ...(content ? { sha256: content.sha256 } : {}),
    ...(e.type === "symlink" ? { linkTarget: e.linkTarget ?? "" } : {}),
    ...(e.type === "char" || e.type === "block" ? { rdevMajor: e.rdevMajor ?? 0, rdevMinor: e.rdevMinor ?? 0 } : {}),
  };
}

/** A read entry without the archive number it came from. */
export function readRecord(e: ImageEntry): PathRecord {
  const { layer: _layer, ...record } = e;
  return record;
}

const FIELDS = ["type", "mode", "uid", "gid", "size", "sha256", "linkTarget", "rdevMajor", "rdevMinor"] as const;

function describe(field: (typeof FIELDS)[number], value: unknown): string {
  return field === "mode" && typeof value === "number" ? `0${value.toString(8)}` : String(value);
}

export interface ArchiveComparison {
  /** entries the reader found */
  entries: number;
  /** archives (layers) the file holds */
  archives: number;
  /** one line per difference, e.g. "etc/hostname: sha256 ab12... packed, cd34... read"; empty when they agree */
  mismatches: string[];
}

/**
 * Reads `file` back and compares it with `layers` (one entry list per archive, later ones
 * replacing earlier ones at the same path, as the kernel unpacks them). Call while the
 * entries' source files still exist.
 */
export async function compareArchive(file: string, ...layers: CpioEntry[][]): Promise<ArchiveComparison> {
  // Loaded when a check runs (off by default): the reader's cpio-stream costs every build ~25 ms to load.
  const { readImage } = require("./initramfs-reader") as typeof import("./initramfs-reader");
  const read = await readImage(fs.readFileSync(file), file);
  const want = new Map<string, PathRecord>();
  for (const layer of layers) for (const e of layer) want.set(e.path, packedRecord(e));
  const mismatches: string[] = [];
  if (read.layers.length !== layers.length)
    mismatches.push(`${read.layers.length} archives read, ${layers.length} packed`);
  for (const [p, w] of want) {
    const got = read.entries.get(p);
    if (!got) {
      mismatches.push(`${p}: packed, not read back`);
      continue;
    }
    const g = readRecord(got);
    for (const f of FIELDS)
      if (g[f] !== w[f]) mismatches.push(`${p}: ${f} ${describe(f, w[f])} packed, ${describe(f, g[f])} read`);
  }
  for (const p of read.entries.keys()) if (!want.has(p)) mismatches.push(`${p}: read back, never packed`);
  return { entries: read.entries.size, archives: read.layers.length, mismatches };
}

/** Throws when the archive does not read back as packed; resolves to the entries checked. */
export async function checkArchive(file: string, entries: CpioEntry[]): Promise<number> {
  const result = await compareArchive(file, entries);
  if (result.mismatches.length > 0) {
    const shown = result.mismatches.slice(0, 10);
    const more = result.mismatches.length - shown.length;
    throw new InternalError(
      `${file} does not read back (cpio-stream) as it was packed: ${shown.join("; ")}${more > 0 ? `; and ${more} more` : ""}`,
    );
  }
  return result.entries;
}

/**
 * `onPacked` with the check in front when it is on (`enabled`, default RAMROOT_CHECK_ARCHIVES=1):
 * every archive is compared before anything else sees it, and a progress line says so.
 */
export function withArchiveCheck(
  onPacked: OnPacked | undefined,
  progress: (message: string) => void,
  enabled = archiveCheckEnabled(),
): OnPacked | undefined {
  if (!enabled) return onPacked;
  return async (archive) => {
    const checked = await checkArchive(archive.file, archive.entries);
    progress(`read back through cpio-stream: ${checked} paths, as packed`);
    await onPacked?.(archive);
  };
}
