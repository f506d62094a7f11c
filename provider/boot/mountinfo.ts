/**
 * /proc/self/mountinfo, read the way the kernel writes it (Documentation/filesystems/proc.rst):
 * which filesystem (device number, type, source) is mounted where, and which directory of it
 * (`root`, for bind mounts). The block-device checks read what is mounted from it, and which
 * disk holds this system's `/` and `/boot`.
 */
import * as path from "node:path";

export interface MountEntry {
  /** "major:minor" of the filesystem's device (0:N for filesystems without one) */
  device: string;
  /** the directory of the filesystem mounted here ("/" unless a bind mount) */
  root: string;
  mountPoint: string;
  fsType: string;
  /** what was mounted, e.g. /dev/sdb1 */
  source: string;
}

/** mountinfo escapes space, tab, newline and backslash as \040, \011, \012, \134. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-", 6);
    if (fields.length < 10 || dash < 0) continue;
    entries.push({
      device: fields[2]!,
      root: unescape(fields[3]!),
      mountPoint: unescape(fields[4]!),
      fsType: fields[dash + 1]!,
      source: unescape(fields[dash + 2]!),
    });
  }
  return entries;
}

/**
 * The mount that holds the (real, absolute) directory `dir`: the longest mount point at or above
 * it, the later one where several are mounted on the same point (the one on top). `dir` is the
 * directory's path inside that filesystem ("" for its root).
 */
export function mountHolding(
  entries: readonly MountEntry[],
  dir: string,
): { mount: MountEntry; dir: string } | undefined {
  let best: MountEntry | undefined;
  for (const entry of entries) {
    const mp = entry.mountPoint;
    const inside = mp === "/" || dir === mp || dir.startsWith(`${mp}/`);
    if (inside && (best === undefined || mp.length >= best.mountPoint.length)) best = entry;
  }
  if (!best) return undefined;
  const below = path.posix.relative(best.mountPoint, dir);
  const inFs = path.posix.join(best.root, below);
  return { mount: best, dir: inFs.replace(/^\/+|\/+$/g, "") };
}
