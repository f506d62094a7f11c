import { FieldError, InternalError } from "../ramroot-error";
/**
 * The classic MBR partition table: four 16-byte entries at byte 446, 0x55AA at 510. Written by
 * hand: it is 64 bytes of fixed layout, and no npm package does it without pulling in a disk
 * toolkit.
 */

export interface MbrPartition {
  /** 1-based slot in the table */
  number: number;
  active: boolean;
  type: number;
  /** first sector (512-byte LBA) */
  start: number;
  /** length in sectors */
  sectors: number;
}

const SECTOR = 512;
/** Partition types that hold FAT: FAT12, FAT16 <32M, FAT16, FAT32 CHS, FAT32 LBA, FAT16 LBA, EFI system. */
export const FAT_PARTITION_TYPES = new Set([0x01, 0x04, 0x06, 0x0b, 0x0c, 0x0e, 0xef]);

/** True when sector 0 is a FAT boot sector (a superfloppy: the filesystem starts at byte 0). */
export function looksLikeFatBootSector(sector: Buffer): boolean {
  if (sector.length < SECTOR || sector.readUInt16LE(510) !== 0xaa55) return false;
  const jump = sector[0] === 0xeb ? sector[2] === 0x90 : sector[0] === 0xe9;
  const bytesPerSector = sector.readUInt16LE(11);
  const sectorsPerCluster = sector[13] ?? 0;
  const fatCount = sector[16] ?? 0;
  return (
    jump &&
    [512, 1024, 2048, 4096].includes(bytesPerSector) &&
    sectorsPerCluster > 0 &&
    (sectorsPerCluster & (sectorsPerCluster - 1)) === 0 &&
    fatCount >= 1 &&
    fatCount <= 4
  );
}

/** The non-empty partitions of an MBR in sector 0, or [] when there is no MBR signature. */
export function readMbrPartitions(sector: Buffer): MbrPartition[] {
  if (sector.length < SECTOR || sector.readUInt16LE(510) !== 0xaa55) return [];
  const parts: MbrPartition[] = [];
  for (let i = 0; i < 4; i++) {
    const at = 446 + i * 16;
    const type = sector[at + 4] ?? 0;
    const sectors = sector.readUInt32LE(at + 12);
    if (type === 0 || sectors === 0) continue;
    parts.push({ number: i + 1, active: sector[at] === 0x80, type, start: sector.readUInt32LE(at + 8), sectors });
  }
  return parts;
}

/** CHS address of an LBA for the usual 255-head, 63-sector geometry; past cylinder 1023 the "use LBA" marker. */
function chs(lba: number): [number, number, number] {
  const cylinder = Math.floor(lba / (255 * 63));
  if (cylinder > 1023) return [0xfe, 0xff, 0xff];
  const head = Math.floor(lba / 63) % 255;
  const sector = (lba % 63) + 1;
  return [head, ((cylinder >> 2) & 0xc0) | sector, cylinder & 0xff];
}

/**
 * Writes boot code (up to 440 bytes, e.g. syslinux's mbr.bin), a disk signature and one
 * partition entry into `sector` (512 bytes), and the 0x55AA signature.
 */
export function writeMbr(
  sector: Buffer,
  bootCode: Buffer,
  diskSignature: number,
  partition: Omit<MbrPartition, "number">,
): void {
  if (bootCode.length > 440)
    throw new InternalError(`MBR boot code is ${bootCode.length} bytes; at most 440 fit before the disk signature`);
  sector.fill(0, 0, SECTOR);
  bootCode.copy(sector, 0);
  sector.writeUInt32LE(diskSignature >>> 0, 440);
  const at = 446;
  sector[at] = partition.active ? 0x80 : 0x00;
  const first = chs(partition.start);
  const last = chs(partition.start + partition.sectors - 1);
  sector.set(first, at + 1);
  sector[at + 4] = partition.type;
  sector.set(last, at + 5);
  sector.writeUInt32LE(partition.start, at + 8);
  sector.writeUInt32LE(partition.sectors, at + 12);
  sector.writeUInt16LE(0xaa55, 510);
}

/**
 * Where the FAT filesystem of an image starts, in bytes. `partition` picks an MBR partition
 * (1-based); without it a superfloppy is used as is, and an MBR disk gives its first FAT partition.
 */
export function fatOffsetOf(sector0: Buffer, partition: number | undefined, what: string): number {
  if (partition === undefined && looksLikeFatBootSector(sector0)) return 0;
  const parts = readMbrPartitions(sector0);
  if (partition !== undefined) {
    const found = parts.find((p) => p.number === partition);
    if (!found) {
      throw new FieldError(
        "partition",
        `got ${partition}; ${what} has ${parts.length === 0 ? "no MBR partitions" : `partitions ${parts.map((p) => p.number).join(", ")}`}`,
      );
    }
    return found.start * SECTOR;
  }
  const fat = parts.find((p) => FAT_PARTITION_TYPES.has(p.type));
  if (!fat)
    throw new FieldError(
      what,
      `neither a FAT superfloppy nor an MBR disk with a FAT partition; expected a disk made by \`ramroot disk create\` or a FAT image`,
    );
  return fat.start * SECTOR;
}
