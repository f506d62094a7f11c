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
import { resolveInRoot, type FileManifest, type InstalledDir, type ManifestEntry } from "./expand";

/** Whether this process can give files their owners (lchown needs root). */
export function canApplyOwnership(): boolean {
  return process.getuid?.() === 0;
}

/** The manifest entries a package's unpack produced (its directories and the files it now owns). */
export function packageEntries(manifest: FileManifest, dirs: InstalledDir[], packageName: string): ManifestEntry[] {
  const out: ManifestEntry[] = [];
  for (const dir of dirs) {
    const own = dir.name === "" ? undefined : manifest.get(dir.name);
    if (own?.type === "directory") out.push(own);
    for (const file of dir.files) {
      const entry = manifest.get(dir.name === "" ? file.name : `${dir.name}/${file.name}`);
      if (entry && entry.package === packageName) out.push(entry);
    }
  }
  return out;
}

/**
 * Applies the entries' owners, modes (07777) and file mtimes to the tree, as apk's extraction
 * does; run after each package is unpacked, before its post-install, so what the script changes
 * stays. Only as root: returns false (and changes nothing) otherwise.
 */
export function applyOwnership(root: string, entries: ManifestEntry[]): boolean {
  if (!canApplyOwnership()) return false;
  for (const e of entries) {
    if (e.type === "char" || e.type === "block" || e.type === "fifo") continue; // not on disk
    const host = resolveInRoot(root, e.path, e.package);
    fs.lchownSync(host, e.uid, e.gid);
    if (e.type === "symlink") continue;
    // chown clears setuid/setgid, so the mode goes after it
    fs.chmodSync(host, e.mode & 0o7777);
    if ((e.type === "file" || e.type === "hardlink") && e.mtime !== undefined) fs.utimesSync(host, e.mtime, e.mtime);
  }
  return true;
}

/**
 * After every script ran: the owners and modes on disk read back into the manifest, so the
 * image carries what scripts changed. Only meaningful when `applyOwnership` ran (as root);
 * paths a script removed are left as they are (the image is made from what is on disk).
 */
export function readBackOwnership(root: string, manifest: FileManifest): void {
  if (!canApplyOwnership()) return;
  for (const e of manifest.values()) {
    if (e.type === "char" || e.type === "block" || e.type === "fifo") continue;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(resolveInRoot(root, e.path, e.package));
    } catch {
      continue;
    }
    e.uid = st.uid;
    e.gid = st.gid;
    if (e.type !== "symlink") e.mode = st.mode & 0o7777;
  }
}
