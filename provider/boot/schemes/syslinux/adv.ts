import * as fs from "node:fs";
import { findFatFile, imageOffsetOf, readFatVolume } from "../../fat";
import { fatOffsetOf } from "../../mbr";
import { InternalError, TargetError } from "../../../ramroot-error";

/**
 * syslinux's Auxiliary Data Vector: the last two 512-byte sectors of ldlinux.sys, two identical
 * copies of: magic 0x5a2d2fa5, a checksum, 500 bytes of tagged entries (tag, length, data; tag 0
 * ends the list), magic 0xdd28bf64. The checksum is 0xa3041767 minus the sum of the 32-bit
 * little-endian words at bytes 8-507, modulo 2^32. ldlinux reads boot-once (tag 1) and clears it
 * on disk before loading the kernel. Format from syslinux's libinstaller/advconst.h.
 */
export const ADV_SIZE = 512;
export const ADV_MAGIC1 = 0x5a2d2fa5;
export const ADV_MAGIC2 = 0xa3041767;
export const ADV_MAGIC3 = 0xdd28bf64;
export const ADV_TAG_BOOTONCE = 1;
const DATA_START = 8;
const DATA_END = ADV_SIZE - 4;

export interface AdvEntry {
  tag: number;
  data: Buffer;
}

function checksumOf(sector: Buffer): number {
  let sum = 0;
  for (let at = DATA_START; at < DATA_END; at += 4) sum = (sum + sector.readUInt32LE(at)) >>> 0;
  return (ADV_MAGIC2 - sum) >>> 0;
}

function isValidCopy(sector: Buffer): boolean {
  return (
    sector.readUInt32LE(0) === ADV_MAGIC1 &&
    sector.readUInt32LE(DATA_END) === ADV_MAGIC3 &&
    sector.readUInt32LE(4) === checksumOf(sector)
  );
}

/**
 * The entries of an ADV (the two 512-byte copies, 1024 bytes). Like syslinux, the first valid
 * copy wins; when neither is valid the ADV counts as empty and `valid` is false.
 */
export function parseAdv(twoSectors: Buffer): { valid: boolean; entries: AdvEntry[] } {
  if (twoSectors.length !== 2 * ADV_SIZE)
    throw new InternalError(`an ADV is ${2 * ADV_SIZE} bytes; got ${twoSectors.length}`);
  const copy = [twoSectors.subarray(0, ADV_SIZE), twoSectors.subarray(ADV_SIZE)].find(isValidCopy);
  if (!copy) return { valid: false, entries: [] };
  const entries: AdvEntry[] = [];
  for (let at = DATA_START; at + 2 <= DATA_END;) {
    const tag = copy[at] ?? 0;
    if (tag === 0) break;
    const length = copy[at + 1] ?? 0;
    if (at + 2 + length > DATA_END) break;
    entries.push({ tag, data: Buffer.from(copy.subarray(at + 2, at + 2 + length)) });
    at += 2 + length;
  }
  return { valid: true, entries };
}

/** Two identical ADV copies holding `entries` (a tag appears once; later ones replace earlier ones). */
export function renderAdv(entries: AdvEntry[]): Buffer {
  const sector = Buffer.alloc(ADV_SIZE);
  sector.writeUInt32LE(ADV_MAGIC1, 0);
  sector.writeUInt32LE(ADV_MAGIC3, DATA_END);
  let at = DATA_START;
  for (const entry of entries) {
    if (entry.tag < 1 || entry.tag > 255) throw new InternalError(`ADV tag: got ${entry.tag}; expected 1-255`);
    if (entry.data.length > 255)
      throw new InternalError(`ADV entry ${entry.tag}: ${entry.data.length} bytes; at most 255 fit`);
    if (at + 2 + entry.data.length > DATA_END)
      throw new InternalError(`ADV entries need more than the ${DATA_END - DATA_START} bytes an ADV holds`);
    sector[at] = entry.tag;
    sector[at + 1] = entry.data.length;
    entry.data.copy(sector, at + 2);
    at += 2 + entry.data.length;
  }
  sector.writeUInt32LE(checksumOf(sector), 4);
  return Buffer.concat([sector, sector]);
}

/** `entries` with `tag` set to `data`, or removed when `data` is undefined. */
export function withAdvEntry(entries: AdvEntry[], tag: number, data: Buffer | undefined): AdvEntry[] {
  const rest = entries.filter((e) => e.tag !== tag);
  return data === undefined || data.length === 0 ? rest : [...rest, { tag, data }];
}

/** The boot-once command line in an ADV, or undefined when none is set. */
export function bootOnceOf(entries: AdvEntry[]): string | undefined {
  const entry = entries.find((e) => e.tag === ADV_TAG_BOOTONCE);
  return entry && entry.data.length > 0 ? entry.data.toString("latin1") : undefined;
}

/** The ADV at the end of an ldlinux.sys file's bytes. */
export function advOfLdlinux(ldlinux: Buffer): { valid: boolean; entries: AdvEntry[] } {
  if (ldlinux.length < 2 * ADV_SIZE || ldlinux.length % ADV_SIZE !== 0) {
    throw new TargetError(
      `ldlinux.sys is ${ldlinux.length} bytes; expected a whole number of 512-byte sectors ending in the ADV`,
    );
  }
  return parseAdv(ldlinux.subarray(ldlinux.length - 2 * ADV_SIZE));
}

/** Where ldlinux.sys may live on a syslinux FAT volume, in the order they are tried. */
const LDLINUX_PATHS = ["ldlinux.sys", "boot/syslinux/ldlinux.sys", "syslinux/ldlinux.sys", "boot/ldlinux.sys"];

/**
 * Reads, changes and writes back the ADV of the ldlinux.sys inside a FAT disk image, in place:
 * the file's clusters are found through the FAT and only its last two sectors are rewritten,
 * so the sector list the boot sector records stays true. `change` gets the current entries and
 * returns the new ones (or undefined to leave the image untouched). Resolves to the entries now
 * on disk, read back.
 */
export async function updateImageAdv(
  image: string,
  partition: number | undefined,
  change?: (entries: AdvEntry[]) => AdvEntry[] | undefined,
): Promise<AdvEntry[]> {
  const fh = await fs.promises.open(image, change ? "r+" : "r");
  try {
    const sector0 = Buffer.alloc(512);
    await fh.read(sector0, 0, 512, 0);
    const vol = await readFatVolume(fh, fatOffsetOf(sector0, partition, `disk image ${image}`));
    let file;
    for (const candidate of LDLINUX_PATHS) {
      file = await findFatFile(fh, vol, candidate);
      if (file) break;
    }
    if (!file)
      throw new TargetError(
        `disk image ${image}: no ldlinux.sys (looked at ${LDLINUX_PATHS.join(", ")}); install syslinux first (\`ramroot disk create\`)`,
      );
    if (file.size < 2 * ADV_SIZE || file.size % ADV_SIZE !== 0)
      throw new TargetError(
        `disk image ${image}: ldlinux.sys is ${file.size} bytes; expected whole sectors ending in the ADV`,
      );
    const offsets = [file.size - 2 * ADV_SIZE, file.size - ADV_SIZE].map((o) => imageOffsetOf(vol, file.clusters, o));
    const readAdv = async () => {
      const both = Buffer.alloc(2 * ADV_SIZE);
      for (const [i, at] of offsets.entries()) await fh.read(both, i * ADV_SIZE, ADV_SIZE, at);
      return both;
    };
    const current = parseAdv(await readAdv());
    const next = change?.(current.entries);
    if (next === undefined) return current.entries;
    const bytes = renderAdv(next);
    for (const [i, at] of offsets.entries()) await fh.write(bytes, i * ADV_SIZE, ADV_SIZE, at);
    await fh.sync();
    const back = await readAdv();
    if (!back.equals(bytes))
      throw new TargetError(`disk image ${image}: the ADV read back differs from what was written`);
    return parseAdv(back).entries;
  } finally {
    await fh.close();
  }
}
