/**
 * The cpio entries of an installed tree: what the packer reads. Kept apart from the installer
 * (staging-tree.ts) so that packing a tree loads no installer, no script runner and no config
 * schema (bench/pack-tree.ts packs a tree with this module and the writer alone).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { FileManifest } from "../apk/expand";
import type { CpioEntry } from "./cpio-writer";
import { fromHostId } from "../apk/sandbox-ids";

/**
 * Every path of the staging tree as a cpio entry. Ownership and modes come from the package
 * metadata for files packages installed, root for the overlay, and what install scripts left
 * on disk for the rest (sandbox host ids read back as the image's: sandbox-ids.ts); nothing
 * else about the host (mtime, inode, user) reaches the archive.
 */
export function collectEntries(root: string, manifest: FileManifest, overlay: Set<string>): CpioEntry[] {
  const entries: CpioEntry[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel))) {
      const p = rel === "" ? name : `${rel}/${name}`;
      const abs = path.join(root, p);
      const st = fs.lstatSync(abs);
      const meta = overlay.has(p) ? undefined : manifest.get(p);
      const owner = overlay.has(p)
        ? { uid: 0, gid: 0 }
        : meta
          ? { uid: meta.uid, gid: meta.gid }
          : { uid: fromHostId(st.uid), gid: fromHostId(st.gid) };
      const mode = meta && !overlay.has(p) ? meta.mode : st.mode & 0o7777;
      if (meta && (meta.type === "char" || meta.type === "block" || meta.type === "fifo")) {
        entries.push({ path: p, type: meta.type, mode, ...owner, rdevMajor: meta.devmajor, rdevMinor: meta.devminor });
      } else if (st.isDirectory()) {
        entries.push({ path: p, type: "dir", mode, ...owner });
        walk(p);
      } else if (st.isSymbolicLink()) {
        entries.push({ path: p, type: "symlink", mode: 0o777, ...owner, linkTarget: fs.readlinkSync(abs) });
      } else if (st.isFile()) {
        entries.push({
          path: p,
          type: "file",
          mode,
          ...owner,
          source: abs,
          ...(st.nlink > 1 ? { hardLinkKey: String(st.ino) } : {}),
        });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const rdev = st.rdev;
        entries.push({
          path: p,
          type: st.isCharacterDevice() ? "char" : "block",
          mode,
          ...owner,
          rdevMajor: Math.floor(rdev / 256) & 0xfff,
          rdevMinor: rdev & 0xff,
        });
      } else if (st.isFIFO()) {
        entries.push({ path: p, type: "fifo", mode, ...owner });
      }
    }
  };
  walk("");
  // Device nodes and FIFOs packages ship are not made on disk (mknod needs root, and the staging
  // tree is no place for them); they come from the manifest, under a directory the tree has.
  const dirs = new Set(entries.filter((e) => e.type === "dir").map((e) => e.path));
  const present = new Set(entries.map((e) => e.path));
  for (const meta of manifest.values()) {
    if (meta.type !== "char" && meta.type !== "block" && meta.type !== "fifo") continue;
    if (present.has(meta.path) || overlay.has(meta.path)) continue;
    const slash = meta.path.lastIndexOf("/");
    if (slash >= 0 && !dirs.has(meta.path.slice(0, slash))) continue;
    entries.push({
      path: meta.path,
      type: meta.type,
      mode: meta.mode,
      uid: meta.uid,
      gid: meta.gid,
      rdevMajor: meta.devmajor,
      rdevMinor: meta.devminor,
    });
  }
  // The kernel opens /dev/console for init's stdio before init runs: it must be in the archive.
  const have = new Set(entries.map((e) => e.path));
  if (!have.has("dev")) entries.push({ path: "dev", type: "dir", mode: 0o755, uid: 0, gid: 0 });
  if (!have.has("dev/console"))
    entries.push({ path: "dev/console", type: "char", mode: 0o600, uid: 0, gid: 0, rdevMajor: 5, rdevMinor: 1 });
  if (!have.has("dev/null"))
    entries.push({ path: "dev/null", type: "char", mode: 0o666, uid: 0, gid: 0, rdevMajor: 1, rdevMinor: 3 });
  return entries;
}
