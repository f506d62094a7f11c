/**
 * A FAT filesystem's own name for itself: the volume serial and label its boot sector carries
 * (mkfs.fat writes them, `ramroot disk create --volume-id/--label` chooses them). They travel
 * with the partition's bytes: the disk image, the stick it is written to and the machine that
 * mounts that stick all show the same two values, so they name the partition whatever reaches
 * it (target-identity.ts). Every transport hands its first sector to `fatVolumeIdOf`.
 */
import { looksLikeFatBootSector } from "./mbr";

export interface FatVolumeId {
  /** the serial as blkid and /dev/disk/by-uuid show it: 8 upper-case hex digits, high word first ("5241-4D52") */
  serial: string;
  /** the boot sector's label, trailing spaces dropped; "" when it has none ("NO NAME") */
  label: string;
}

/** Where a boot target's root lies: a FAT volume, and the directory inside it ("" = its root). */
export interface PartitionVolume extends FatVolumeId {
  dir: string;
}

/** Extended boot signatures: 0x29 carries serial, label and type; 0x28 the serial only. */
const WITH_LABEL = 0x29;
const SERIAL_ONLY = 0x28;

function formatSerial(serial: number): string {
  const hex = serial.toString(16).toUpperCase().padStart(8, "0");
  return `${hex.slice(0, 4)}-${hex.slice(4)}`;
}

function normalLabel(raw: string): string {
  const label = raw.replace(/[ \0]+$/, "");
  return label === "NO NAME" ? "" : label;
}

/**
 * The serial and label in a FAT12/16/32 boot sector (the first 512 bytes of the filesystem),
 * or undefined when the sector is no FAT boot sector or carries no serial. FAT32 is told by its
 * 16-bit sectors-per-FAT field being 0; its extended boot record then starts at byte 64, else
 * at byte 36 (Microsoft's FAT specification).
 */
export function fatVolumeIdOf(sector: Buffer): FatVolumeId | undefined {
  if (!looksLikeFatBootSector(sector)) return undefined;
  const ebr = sector.readUInt16LE(22) === 0 ? 64 : 36;
  const signature = sector[ebr + 2];
  if (signature !== WITH_LABEL && signature !== SERIAL_ONLY) return undefined;
  return {
    serial: formatSerial(sector.readUInt32LE(ebr + 3)),
    label: signature === WITH_LABEL ? normalLabel(sector.toString("latin1", ebr + 7, ebr + 18)) : "",
  };
}

/**
 * The same two values from what blkid or /dev/disk/by-uuid report (UUID "5241-4D52", LABEL),
 * for a machine where the partition's device cannot be read by the ssh user: blkid shows the
 * FAT serial as the UUID and the label mkfs.fat writes beside the boot sector's.
 */
export function fatVolumeIdFromProbe(uuid: string, label: string | undefined): FatVolumeId | undefined {
  const match = /^([0-9A-Fa-f]{4})-?([0-9A-Fa-f]{4})$/.exec(uuid.trim());
  if (!match) return undefined;
  return { serial: `${match[1]!.toUpperCase()}-${match[2]!.toUpperCase()}`, label: normalLabel(label ?? "") };
}
