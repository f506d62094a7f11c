/**
 * Which FAT volume a mounted boot directory is on, found by one POSIX shell script that runs the
 * same on this machine (a `local` target) and on the machine at the other end of an `ssh`
 * target (one remote command): the directory's real path, the mount holding it (the longest
 * mount point above it in /proc/self/mountinfo, the one on top), that mount's device
 * (/sys/dev/block/<major:minor>) and the device's first sector, which `fatVolumeIdOf` parses.
 * Where the device cannot be read (not root), udev's /dev/disk/by-uuid and by-label links give
 * the same serial and label. A directory on a filesystem that is not FAT has no volume: its
 * identity is then its location (target-identity.ts).
 */
import * as path from "node:path";
import { fatVolumeIdFromProbe, fatVolumeIdOf, type FatVolumeId, type PartitionVolume } from "./fat-volume-id";
import { shellQuote } from "./shell-quote";

/** Exit code of the script when the directory does not exist. */
const NO_DIRECTORY = 3;

/**
 * The script (busybox or coreutils sh). Output: `mount <major:minor> <fstype>`, the mount's root
 * inside its filesystem, the mount point and the directory's real path, one a line; for a FAT
 * mount then `device <dev>` and either `sector` followed by the device's first 512 bytes, or
 * `uuid <name>` / `label <name>` lines from /dev/disk when the device cannot be read.
 */
export function volumeProbeScript(dir: string): string {
  return [
    "set -f",
    `d=$(cd -- ${shellQuote(dir)} 2>/dev/null && pwd -P) || exit ${NO_DIRECTORY}`,
    "best=; mm=; root=; fstype=",
    "while IFS= read -r line; do",
    "  set -- $line",
    // mountinfo escapes a space as \040, which printf's %b reads as the octal \0nnn.
    '  m=$(printf "%b" "$5")',
    '  case "$d/" in "${m%/}"/*) ;; *) continue ;; esac',
    "  [ ${#m} -ge ${#best} ] || continue",
    '  best=$m; mm=$3; root=$(printf "%b" "$4")',
    '  shift 6; while [ $# -gt 0 ] && [ "$1" != "-" ]; do shift; done; fstype=${2:-}',
    "done < /proc/self/mountinfo",
    `printf 'mount %s %s\\n%s\\n%s\\n%s\\n' "$mm" "$fstype" "$root" "$best" "$d"`,
    'case "$fstype" in vfat|msdos|fat) ;; *) exit 0 ;; esac',
    'n=$(readlink -f "/sys/dev/block/$mm") || exit 0',
    'dev="/dev/${n##*/}"',
    '[ -b "$dev" ] || exit 0',
    "printf 'device %s\\n' \"$dev\"",
    'if head -c 512 -- "$dev" >/dev/null 2>&1; then printf \'sector\\n\'; exec head -c 512 -- "$dev"; fi',
    "for kind in uuid label; do for l in /dev/disk/by-$kind/*; do",
    '  [ -e "$l" ] && [ "$(readlink -f "$l")" = "$dev" ] && printf \'%s %s\\n\' "$kind" "${l##*/}"',
    "done; done; exit 0",
  ].join("\n");
}

/** udev escapes bytes of a link name as \xNN (a space in a label is \x20). */
function udevUnescape(name: string): string {
  return name.replace(/\\x([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** What `volumeProbeScript` printed, read: the volume and the directory's place in it, or undefined. */
export function parseVolumeProbe(exitCode: number, stdout: Buffer): PartitionVolume | undefined {
  if (exitCode !== 0) return undefined;
  const lines: string[] = [];
  let at = 0;
  let sector: Buffer | undefined;
  while (at < stdout.length) {
    const end = stdout.indexOf(0x0a, at);
    const line = stdout.toString("utf8", at, end < 0 ? stdout.length : end);
    at = end < 0 ? stdout.length : end + 1;
    if (line === "sector" && lines.length >= 4) {
      sector = stdout.subarray(at, at + 512);
      break;
    }
    lines.push(line);
  }
  const [mount, root, mountPoint, realDir] = lines;
  const fsType = /^mount \S* (\S+)$/.exec(mount ?? "")?.[1];
  if (fsType === undefined || root === undefined || mountPoint === undefined || realDir === undefined) return undefined;
  let id: FatVolumeId | undefined;
  if (sector?.length === 512) id = fatVolumeIdOf(sector);
  else {
    const uuids = lines.filter((l) => l.startsWith("uuid ")).map((l) => l.slice(5));
    const labels = lines.filter((l) => l.startsWith("label ")).map((l) => udevUnescape(l.slice(6)));
    if (uuids.length === 1) id = fatVolumeIdFromProbe(uuids[0]!, labels.length === 1 ? labels[0] : undefined);
  }
  if (!id) return undefined;
  const below = path.posix.relative(mountPoint, realDir);
  return { ...id, dir: path.posix.join(root, below).replace(/^\/+|\/+$/g, "") };
}
