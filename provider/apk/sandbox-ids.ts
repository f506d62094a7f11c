/**
 * The host ids a staging tree's owners are kept as, and install scripts run under, when ramroot
 * runs as root: systemd's "foreign" UID/GID range 2147352576-2147418111 (0x7FFE0000-0x7FFEFFFF,
 * https://systemd.io/UIDS-GIDS/: ids for the files of OS images that are not in use, owned by no
 * user and run by no process of the host). Ids 0-65535 of an image are these host ids: uid n of a
 * package is host id 2147352576 + n on disk, the script sandbox's user namespace maps its ids
 * 0-65535 onto the same range (so a script's `chown 1234 f` lands as 2147353810 and is packed as
 * 1234), and a script's root is host id 2147352576, which can do nothing to the host that any
 * unprivileged user could not. Ids from 65536 up are kept as they are: no script can give them
 * (the sandbox does not map them). A tree ramroot hands back as a root (`ramroot apk install`)
 * has its owners translated back.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export const SANDBOX_ID_BASE = 0x7ffe0000;
export const SANDBOX_ID_COUNT = 0x10000;

/** The host id a staging tree holds for an image's id `id`. */
export function toHostId(id: number): number {
  return id >= 0 && id < SANDBOX_ID_COUNT ? SANDBOX_ID_BASE + id : id;
}

/** The image's id for a host id read from a staging tree. */
export function fromHostId(host: number): number {
  return host >= SANDBOX_ID_BASE && host < SANDBOX_ID_BASE + SANDBOX_ID_COUNT ? host - SANDBOX_ID_BASE : host;
}

/**
 * Gives every entry under `root` (the root itself too, symlinks not followed) the owner `map`
 * makes of its owner: toHostId before scripts run in a root that holds an image's ids,
 * fromHostId to hand a staging tree back as a root. Never leaves `root`: directories are
 * entered by their real path, a symlink is only lchown'd. `depth: 0` does the root alone.
 */
export function translateOwners(root: string, map: (id: number) => number, opts: { depth?: number } = {}): void {
  const visit = (host: string, st: fs.Stats, depth: number) => {
    const uid = map(st.uid);
    const gid = map(st.gid);
    if (uid !== st.uid || gid !== st.gid) {
      fs.lchownSync(host, uid, gid);
      // chown clears setuid/setgid on files; the mode stays what it was
      if (!st.isSymbolicLink() && (st.mode & 0o6000) !== 0) fs.chmodSync(host, st.mode & 0o7777);
    }
    if (!st.isDirectory() || depth === opts.depth) return;
    for (const name of fs.readdirSync(host)) {
      const child = path.join(host, name);
      visit(child, fs.lstatSync(child), depth + 1);
    }
  };
  visit(root, fs.lstatSync(root), 0);
}
