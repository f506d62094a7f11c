/**
 * A boot target's identity: which boot partition it is, apart from how it is reached.
 *
 * The partition is its FAT volume: the serial and label in the filesystem's boot sector
 * (fat-volume-id.ts), the same bytes on a disk image, on the stick it was written to and on the
 * machine that mounts that stick, so `image: disk.img`, `image: /dev/sdb` and `ssh: nas:/media/boot`
 * are one partition when they show one volume. Every transport reads it (BootTarget.bootVolume);
 * `samePartition` decides with it, and the resources keep what they read in their state.
 *
 * Where no volume can be read (a plain directory standing in for a partition, an old state made
 * before volumes were recorded and whose place is gone), the identity is the location: the
 * target's kind, its host and its normalised path (the real path of a directory or disk image,
 * so a trailing slash or a symlink changes nothing; for a disk image the byte offset of its FAT
 * filesystem, so "partition auto-detected" and "the same partition named" are one). How a target
 * is reached (ssh user, port, private key, known hosts, ssh config, host key checking) is the
 * connection, never the identity. The location also keys what one process holds per target
 * (leases, the delete policy's "written this run").
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { PartitionVolume } from "./fat-volume-id";
import { fatOffsetOf } from "./mbr";
import { withTarget } from "./target";
import type { TargetSpec } from "./target-spec";

function realPath(p: string): string {
  const resolved = path.resolve(p);
  try {
    return fs.realpathSync(resolved);
  } catch {
    return resolved;
  }
}

/** The FAT filesystem's byte offset in a disk image, or undefined when the image cannot be read. */
function fatOffset(image: string, partition: number | undefined): number | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(image, "r");
    const sector0 = Buffer.alloc(512);
    fs.readSync(fd, sector0, 0, 512, 0);
    return fatOffsetOf(sector0, partition, `disk image ${image}`);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * A string naming where the boot partition is, e.g. `image:/srv/disk.img@1048576`,
 * `local:/mnt/boot`, `ssh:nas:/media/mmcblk0p1`. Two specs with the same identity are the same
 * physical partition (as far as can be known from here: two host names for one machine are not
 * recognised as one).
 */
export function targetLocation(spec: TargetSpec): string {
  switch (spec.kind) {
    case "local":
      return `local:${realPath(spec.path)}`;
    case "image": {
      const image = realPath(spec.path);
      const offset = fatOffset(image, spec.partition);
      return `image:${image}@${offset ?? `partition ${spec.partition ?? "auto"}`}`;
    }
    case "ssh": {
      const dir = path.posix.normalize(spec.path).replace(/(.)\/+$/, "$1");
      return `ssh:${spec.host.toLowerCase()}:${dir}`;
    }
  }
}

/** True when both specs name the same place (kind, host, normalised path), however each is reached. */
export function sameTarget(a: TargetSpec | undefined, b: TargetSpec | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.kind === b.kind && targetLocation(a) === targetLocation(b);
}

/** "fat:5241-4D52:RAMROOT" (":/dir" when the target is a directory inside the volume). */
export function volumeIdentity(v: PartitionVolume): string {
  return `fat:${v.serial}:${v.label}${v.dir !== "" ? `:/${v.dir}` : ""}`;
}

/** The volume a target is on now, or undefined when it cannot be reached or is on no FAT. */
export async function readTargetVolume(spec: TargetSpec): Promise<PartitionVolume | undefined> {
  try {
    return await withTarget(spec, (target) => target.bootVolume());
  } catch {
    return undefined;
  }
}

/**
 * Whether `news` names the partition a resource's state names (`old.target`, and `old.volume`
 * as the state recorded it, null for "on no FAT"): the same place, or the same FAT volume
 * wherever it is reached now. A state without a volume (written before they were recorded) is
 * looked at where it was: when that place still shows a volume, it counts. When either volume cannot be read, only the
 * same place is the same partition.
 */
export async function samePartition(
  old: { target: TargetSpec; volume?: PartitionVolume | null | undefined },
  news: TargetSpec,
): Promise<boolean> {
  if (sameTarget(old.target, news)) return true;
  const [before, after] = await Promise.all([
    old.volume === undefined ? readTargetVolume(old.target) : (old.volume ?? undefined),
    readTargetVolume(news),
  ]);
  return before !== undefined && after !== undefined && volumeIdentity(before) === volumeIdentity(after);
}
