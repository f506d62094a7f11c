import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { StagingRoot } from "./staging-root";
import { readTar, type TarReadType } from "./tar-reader";

/** One path of the built tree, with the ownership and mode the image must give it. */
export interface ManifestEntry {
  /** Relative to the root, no leading or trailing "/" ("usr/bin/busybox"). */
  path: string;
  type: TarReadType;
  /** Permission bits including setuid/setgid/sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Symlink target, or for hard links the path (relative to the root) of the file linked to. */
  target?: string;
  /** hex SHA-1 of the content (files, hard links) or of the target (symlinks). */
  sha1?: string;
  size: number;
  /** The entry's mtime in the package (apk gives installed files their package mtime). */
  mtime?: number;
  devmajor?: number;
  devminor?: number;
  /** The package that installed it. */
  package: string;
}

/** path -> entry, for every path packages installed. */
export type FileManifest = Map<string, ManifestEntry>;

export interface Acl {
  uid: number;
  gid: number;
  mode: number;
}

/** A file a package owns, as the installed db lists it under its directory. */
export interface InstalledFile {
  /** Base name. */
  name: string;
  acl: Acl;
  /** hex SHA-1 (apk's Z:), when apk records one (files, hard links, symlinks). */
  sha1?: string;
}

/** A directory a package owns (F:) with its files (R:), in the order apk meets them. */
export interface InstalledDir {
  /** Relative path, "" for the root. */
  name: string;
  acl: Acl;
  files: InstalledFile[];
}

export interface ExpandOptions {
  /** The staging root. */
  root: string;
  /** Manifest of everything installed so far; updated in place. */
  manifest: FileManifest;
  packageName: string;
  /** Names the package in errors. */
  source: string;
  /** Whether this package may overwrite a file another package installed (apk: replaces / same origin). */
  mayOverwrite?: (owner: string) => boolean;
  /**
   * Told about a file another package owns that this one may not overwrite; the file is then
   * skipped and the rest installed, as apk does (it flags the package). Without it, such a
   * file is an error.
   */
  onRefusedOverwrite?: (path: string, owner: string) => void;
}

export const DEFAULT_DIR_ACL: Acl = { uid: 0, gid: 0, mode: 0o755 };
export const DEFAULT_FILE_ACL: Acl = { uid: 0, gid: 0, mode: 0o644 };

/** name -> id from the root's /etc/passwd or /etc/group, as apk's id cache resolves owners. */
function readIds(root: StagingRoot, file: string, idField: number): Map<string, number> {
  const ids = new Map<string, number>();
  let text: string;
  try {
    text = root.readFile(`etc/${file}`)?.toString("utf8") ?? "";
  } catch {
    return ids;
  }
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    const id = Number(fields[idField]);
    if (fields[0] && Number.isInteger(id) && !ids.has(fields[0])) ids.set(fields[0], id);
  }
  return ids;
}

/**
 * Normalises a tar entry name to a relative path, refusing what could leave the root:
 * absolute paths and ".." components. Returns "" for the root itself ("./").
 */
export function safeEntryPath(name: string, source: string): string {
  if (name.includes("\0")) throw new Error(`${source}: entry ${JSON.stringify(name)} contains a NUL byte; refused`);
  if (name.startsWith("/"))
    throw new Error(
      `${source}: entry ${JSON.stringify(name)} is an absolute path; package entries must be relative, refused`,
    );
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes(".."))
    throw new Error(`${source}: entry ${JSON.stringify(name)} contains "..", which could leave the root; refused`);
  return parts.join("/");
}

/**
 * The host path of `rel` inside `root`, its directories' symlinks followed inside the root (the
 * last component not followed); see StagingRoot.resolve. A ".." that climbs out is refused.
 */
export function resolveInRoot(root: string, rel: string, source: string): string {
  return new StagingRoot(root, source).resolve(rel);
}

function sha1(data: Buffer | string): string {
  return createHash("sha1").update(data).digest("hex");
}

/**
 * Unpacks a package's data tar into the staging root without needing root: content, modes
 * (permission bits; setuid and ownership are recorded, not applied), symlinks and hard links
 * land on disk, and every path goes into `manifest` with the uid/gid/mode the image needs.
 * Owners are resolved by name through the root's /etc/passwd and /etc/group (as apk does, so
 * users a pre-install script made are honoured), falling back to the numeric ids in the tar.
 * Each file's PAX APK-TOOLS.checksum.SHA1 is checked against its content. Refuses absolute
 * paths, "..", writes through symlinks that leave the root, and overwriting another package's
 * file unless `mayOverwrite` allows it. Returns the directories and files for the installed db.
 */
export function expandDataTar(dataTar: Buffer, opts: ExpandOptions): InstalledDir[] {
  const { root, manifest, source } = opts;
  const entries = readTar(dataTar, `${source} (data member)`);
  const staging = new StagingRoot(root, source);
  const users = readIds(staging, "passwd", 2);
  const groups = readIds(staging, "group", 2);
  const dirs: InstalledDir[] = [];
  const dirIndex = new Map<string, InstalledDir>();
  const dirFor = (name: string): InstalledDir => {
    let dir = dirIndex.get(name);
    if (!dir) {
      dir = { name, acl: DEFAULT_DIR_ACL, files: [] };
      dirIndex.set(name, dir);
      dirs.push(dir);
    }
    return dir;
  };

  for (const entry of entries) {
    const rel = safeEntryPath(entry.name, source);
    if (rel === "") continue;
    const uid = (entry.uname ? users.get(entry.uname) : undefined) ?? entry.uid;
    const gid = (entry.gname ? groups.get(entry.gname) : undefined) ?? entry.gid;
    const acl: Acl = { uid, gid, mode: entry.mode & 0o7777 };
    const existing = manifest.get(rel);
    if (
      existing &&
      existing.package !== opts.packageName &&
      (existing.type !== "directory" || entry.type !== "directory")
    ) {
      if (!(opts.mayOverwrite?.(existing.package) ?? false)) {
        if (opts.onRefusedOverwrite) {
          opts.onRefusedOverwrite(rel, existing.package);
          continue;
        }
        throw new Error(
          `${source}: trying to overwrite ${rel} owned by ${existing.package}; the package must list it in replaces`,
        );
      }
    }
    const slash = rel.lastIndexOf("/");
    const parent = slash < 0 ? "" : rel.slice(0, slash);
    const base = slash < 0 ? rel : rel.slice(slash + 1);
    staging.mkdirp(parent);
    const current = staging.lstat(rel);

    if (entry.type === "directory") {
      const dir = dirFor(rel);
      dir.acl = acl;
      if (current?.isSymbolicLink() && staging.stat(rel)?.stat.isDirectory()) {
        // A symlink to a directory stands where the package has a directory (usr-merge style):
        // the link stays, files go through it (inside the root), as apk's mkdir() finding it leaves it.
        continue;
      }
      staging.directory(rel, (acl.mode & 0o777) | 0o700);
      manifest.set(rel, {
        path: rel,
        type: "directory",
        mode: acl.mode,
        uid,
        gid,
        size: 0,
        mtime: entry.mtime,
        package: opts.packageName,
      });
      continue;
    }

    if (current?.isDirectory())
      throw new Error(`${source}: ${rel} is a directory on disk but a ${entry.type} in the package; refused`);
    const record: ManifestEntry = {
      path: rel,
      type: entry.type,
      mode: acl.mode,
      uid,
      gid,
      size: 0,
      mtime: entry.mtime,
      package: opts.packageName,
    };
    switch (entry.type) {
      case "file": {
        const digest = sha1(entry.content);
        const claimed = entry.pax["APK-TOOLS.checksum.SHA1"];
        if (claimed !== undefined && claimed.toLowerCase() !== digest) {
          throw new Error(
            `${source}: ${rel} has SHA-1 ${digest} but its PAX header says ${claimed}; the package is corrupt`,
          );
        }
        staging.writeFile(rel, entry.content, (acl.mode & 0o777) | 0o200);
        record.sha1 = digest;
        record.size = entry.content.length;
        break;
      }
      case "symlink": {
        const target = entry.linkTarget ?? "";
        staging.symlink(rel, target);
        record.target = target;
        record.sha1 = sha1(target);
        break;
      }
      case "hardlink": {
        const targetRel = safeEntryPath(entry.linkTarget ?? "", source);
        const linked = manifest.get(targetRel);
        if (!linked || linked.type !== "file")
          throw new Error(
            `${source}: hard link ${rel} points to ${JSON.stringify(entry.linkTarget)}, which is no file installed before it; refused`,
          );
        staging.link(targetRel, rel);
        record.target = targetRel;
        record.sha1 = linked.sha1;
        record.size = linked.size;
        break;
      }
      default:
        // Device nodes and FIFOs are recorded for the image (cpio can carry them); creating
        // them would need root, so nothing is made on disk; whatever stood there goes.
        if (current) staging.remove(rel);
        record.devmajor = entry.devmajor;
        record.devminor = entry.devminor;
        break;
    }
    manifest.set(rel, record);
    dirFor(parent).files.push({ name: base, acl, sha1: record.sha1 });
  }
  return dirs;
}
