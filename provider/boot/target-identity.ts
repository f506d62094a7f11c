/**
 * A boot target's identity: where the boot partition physically is, apart from how it is
 * reached. The identity is the target's kind, its host and its normalised location: the real
 * path of a directory or disk image (a trailing slash or a symlink changes nothing), and for a
 * disk image the byte offset of its FAT filesystem, so "partition auto-detected" and "the same
 * partition named explicitly" are one identity. How it is reached (ssh user, port, private key,
 * known hosts, ssh config, host key checking) is the connection, not the identity.
 *
 * The one identity function: diffs (a replacement or a connection-only update), the
 * delete policy's "written this run" and the leases held in a process all key on it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fatOffsetOf } from "./mbr";
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
export function targetIdentity(spec: TargetSpec): string {
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

/** True when both specs name the same physical partition, however each is reached. */
export function sameTarget(a: TargetSpec | undefined, b: TargetSpec | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.kind === b.kind && targetIdentity(a) === targetIdentity(b);
}
