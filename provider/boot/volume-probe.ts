/**
 * Which FAT volume a mounted boot directory is on, found the same way on this machine (a
 * `local` target) and on the machine at the other end of an `ssh` target: the directory's real
 * path, the mount holding it (/proc/self/mountinfo), the device of that mount
 * (/sys/dev/block/<major:minor>), and that device's first sector, parsed by `fatVolumeIdOf`.
 * Where the device cannot be read (not root), udev's /dev/disk/by-uuid and by-label links give
 * the same serial and label. A directory on a filesystem that is not FAT has no volume: its
 * identity is then its location (target-identity.ts).
 */
import { fatVolumeIdFromProbe, fatVolumeIdOf, type FatVolumeId, type PartitionVolume } from "./fat-volume-id";
import { FAT_FS_TYPES, mountHolding, parseMountInfo } from "./mountinfo";

/** What a transport can tell about the machine the directory is on. */
export interface VolumeProbeHost {
  /** The directory's real path and the text of /proc/self/mountinfo; undefined when the directory does not exist. */
  mountInfo(dir: string): Promise<{ realDir: string; mountInfo: string } | undefined>;
  /**
   * The first 512 bytes of the block device numbered `majorMinor`, or where it cannot be read,
   * the names of the /dev/disk/by-uuid and by-label links that point at it; undefined when there
   * is no such device.
   */
  deviceStart(majorMinor: string): Promise<{ sector: Buffer } | { uuids: string[]; labels: string[] } | undefined>;
}

/** udev escapes bytes of a link name as \xNN (a space in a label is \x20). */
function udevUnescape(name: string): string {
  return name.replace(/\\x([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

export async function probeVolume(host: VolumeProbeHost, dir: string): Promise<PartitionVolume | undefined> {
  const info = await host.mountInfo(dir);
  if (!info) return undefined;
  const held = mountHolding(parseMountInfo(info.mountInfo), info.realDir);
  if (!held || !FAT_FS_TYPES.has(held.mount.fsType)) return undefined;
  const start = await host.deviceStart(held.mount.device);
  if (!start) return undefined;
  let id: FatVolumeId | undefined;
  if ("sector" in start) id = fatVolumeIdOf(start.sector);
  else if (start.uuids.length === 1)
    id = fatVolumeIdFromProbe(start.uuids[0]!, start.labels.length === 1 ? udevUnescape(start.labels[0]!) : undefined);
  return id ? { ...id, dir: held.dir } : undefined;
}

/**
 * The shell side of `deviceStart` (POSIX sh, busybox or coreutils): the sector on stdout with
 * exit 0; exit 4 and lines "uuid <name>" / "label <name>" when the device cannot be read; exit 3
 * when there is no such device.
 */
export function deviceStartScript(majorMinor: string): string {
  if (!/^\d+:\d+$/.test(majorMinor)) throw new Error(`device number: got ${JSON.stringify(majorMinor)}`);
  return [
    `n=$(readlink -f /sys/dev/block/${majorMinor}) || exit 3`,
    `dev="/dev/\${n##*/}"`,
    `[ -b "$dev" ] || exit 3`,
    `if head -c 512 -- "$dev" 2>/dev/null; then exit 0; fi`,
    `for kind in uuid label; do for l in /dev/disk/by-$kind/*; do [ -e "$l" ] || continue;`,
    `  [ "$(readlink -f "$l")" = "$dev" ] && printf '%s %s\\n' "$kind" "\${l##*/}"; done; done`,
    "exit 4",
  ].join("\n");
}

/** Parses what deviceStartScript printed, by its exit code. */
export function parseDeviceStart(
  exitCode: number,
  stdout: Buffer,
): { sector: Buffer } | { uuids: string[]; labels: string[] } | undefined {
  if (exitCode === 0) return stdout.length >= 512 ? { sector: stdout.subarray(0, 512) } : undefined;
  if (exitCode !== 4) return undefined;
  const uuids: string[] = [];
  const labels: string[] = [];
  for (const line of stdout.toString("utf8").split("\n")) {
    const m = /^(uuid|label) (.+)$/.exec(line);
    if (m) (m[1] === "uuid" ? uuids : labels).push(m[2]!);
  }
  return { uuids, labels };
}
