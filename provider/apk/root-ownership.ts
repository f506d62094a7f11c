/**
 * Owners, modes and mtimes on disk, as apk leaves them. apk (running as root) gives every path
 * a package installs the uid/gid (names resolved through the root's passwd/group), the full
 * mode including setuid/setgid/sticky, and (files) the mtime its data tar says; install scripts
 * then change what they change (`chown app f; chmod 0600 f`), and that is what the machine has.
 *
 * The staging tree can only hold owners when ramroot runs as root; otherwise the manifest
 * carries the package's ownership into the image and scripts' chown/chmod cannot be seen.
 */
import * as fs from "node:fs";
import type { FileManifest } from "./expand";
import { fromHostId } from "./sandbox-ids";
import { StagingRoot } from "./staging-root";

/** Whether this process can give files their owners (lchown needs root). */
export function canApplyOwnership(): boolean {
  return process.getuid?.() === 0;
}

/**
 * After every script ran: the owners and modes on disk read back into the manifest, so the
 * image carries what scripts changed. Only meaningful when the unpack applied them (as root);
 * paths a script removed are left as they are (the image is made from what is on disk).
 */
export function readBackOwnership(root: string, manifest: FileManifest): void {
  if (!canApplyOwnership()) return;
  // Nothing changes the tree while it is read back: each directory is resolved inside the root once.
  const staging = new StagingRoot(root);
  const dirs = new Map<string, string>();
  for (const e of manifest.values()) {
    if (e.type === "char" || e.type === "block" || e.type === "fifo") continue;
    let st: fs.Stats;
    try {
      const slash = e.path.lastIndexOf("/");
      const parent = slash < 0 ? "" : e.path.slice(0, slash);
      let dir = dirs.get(parent);
      if (dir === undefined) {
        dir = staging.resolve(parent, { follow: true });
        dirs.set(parent, dir);
      }
      // `dir` is a resolved host path and the name one clean component (a manifest path's last):
      // joined as is (path.join re-normalised every path, ~1 KiB of garbage each).
      st = fs.lstatSync(`${dir}/${e.path.slice(slash + 1)}`);
    } catch {
      continue;
    }
    e.uid = fromHostId(st.uid);
    e.gid = fromHostId(st.gid);
    if (e.type !== "symlink") e.mode = st.mode & 0o7777;
  }
}
