import * as fs from "node:fs";
import * as path from "node:path";
import { serializeRecord } from "./apkindex";
import type { PackageRecord } from "./package-record";
import { DEFAULT_DIR_ACL, DEFAULT_FILE_ACL, type Acl, type FileManifest, type InstalledDir } from "./expand";
import { SCRIPT_NAMES, type ScriptName } from "./package-file";
import { writeTar, type TarEntry } from "./tar-writer";

/** One installed package as the apk database records it. */
export interface InstalledPackage {
  record: PackageRecord;
  /** Directories and files it owns, from expandDataTar. */
  dirs: InstalledDir[];
  scripts: Map<ScriptName, Buffer>;
  triggers: string[];
}

export interface ApkDatabase {
  packages: InstalledPackage[];
  /** /etc/apk/world: the dependencies asked for ("busybox", "alpine-base>=3.20"). */
  world: string[];
  arch: string;
  /** /etc/apk/repositories lines. */
  repositories: string[];
  /** /etc/apk/keys: file name -> PEM. */
  keys: Map<string, Buffer>;
  /** When given, files another package took over are listed only under their new owner. */
  manifest?: FileManifest;
}

function sameAcl(a: Acl, b: Acl): boolean {
  return a.uid === b.uid && a.gid === b.gid && a.mode === b.mode;
}

function aclLine(field: "M" | "a", acl: Acl): string {
  return `${field}:${acl.uid}:${acl.gid}:${acl.mode.toString(8)}\n`;
}

/** apk's text form of a SHA-1: "Q1" + base64. */
function q1(hexSha1: string): string {
  return "Q1" + Buffer.from(hexSha1, "hex").toString("base64");
}

/** apk-tools orders installed packages by name when it writes the database. */
function sorted(packages: InstalledPackage[]): InstalledPackage[] {
  return [...packages].sort((a, b) => (a.record.name < b.record.name ? -1 : a.record.name > b.record.name ? 1 : 0));
}

/**
 * /lib/apk/db/installed in apk's format (apk_db_fdb_write): per package its index header lines
 * (C P V A S I T U L o m t c k D p i r q), then per directory `F:` and `M:uid:gid:mode` when not
 * root:root 0755, per file `R:`, `a:uid:gid:mode` when not root:root 0644, `Z:Q1...`; a blank
 * line ends each package.
 */
export function formatInstalledDb(packages: InstalledPackage[], manifest?: FileManifest): string {
  let out = "";
  for (const pkg of sorted(packages)) {
    out += serializeRecord(pkg.record);
    for (const dir of pkg.dirs) {
      out += `F:${dir.name}\n`;
      if (!sameAcl(dir.acl, DEFAULT_DIR_ACL)) out += aclLine("M", dir.acl);
      for (const file of dir.files) {
        const rel = dir.name === "" ? file.name : `${dir.name}/${file.name}`;
        if (manifest && manifest.get(rel)?.package !== pkg.record.name) continue;
        out += `R:${file.name}\n`;
        if (!sameAcl(file.acl, DEFAULT_FILE_ACL)) out += aclLine("a", file.acl);
        if (file.sha1) out += `Z:${q1(file.sha1)}\n`;
      }
    }
    out += "\n";
  }
  return out;
}

/**
 * /lib/apk/db/scripts.tar: each package's scripts as `<name>-<version>.<hex checksum>.<action>`,
 * mode 0755, mtime = build time, in apk's script order.
 */
export function formatScriptsTar(packages: InstalledPackage[]): Buffer {
  const entries: TarEntry[] = [];
  for (const pkg of sorted(packages)) {
    const { record } = pkg;
    if (!record.checksum?.startsWith("Q1")) throw new Error(`package ${record.name}: no Q1 checksum to name its scripts with`);
    const hex = Buffer.from(record.checksum.slice(2), "base64").toString("hex");
    for (const action of SCRIPT_NAMES) {
      const body = pkg.scripts.get(action);
      if (!body) continue;
      entries.push({ name: `${record.name}-${record.version}.${hex}.${action}`, type: "file", mode: 0o755, uid: 0, gid: 0, mtime: record.buildTime ?? 0, content: body });
    }
  }
  return writeTar(entries, { endOfArchive: true });
}

/** /lib/apk/db/triggers: "<Q1 checksum> <path glob>..." per package that has triggers. */
export function formatTriggers(packages: InstalledPackage[]): string {
  return sorted(packages)
    .filter((p) => p.triggers.length > 0)
    .map((p) => `${p.record.checksum} ${p.triggers.join(" ")}\n`)
    .join("");
}

/** Writes the apk database into `root` so that `apk` on the machine sees what is installed. */
export function writeApkDatabase(root: string, db: ApkDatabase): void {
  const write = (rel: string, content: string | Buffer, mode = 0o644) => {
    const file = path.join(root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content, { mode });
    fs.chmodSync(file, mode);
  };
  write("lib/apk/db/installed", formatInstalledDb(db.packages, db.manifest));
  write("lib/apk/db/scripts.tar", formatScriptsTar(db.packages));
  write("lib/apk/db/triggers", formatTriggers(db.packages));
  write("etc/apk/world", [...new Set(db.world)].sort().map((w) => `${w}\n`).join(""));
  write("etc/apk/arch", `${db.arch}\n`);
  write("etc/apk/repositories", db.repositories.map((r) => `${r}\n`).join(""));
  fs.mkdirSync(path.join(root, "etc/apk/keys"), { recursive: true });
  for (const [name, pem] of db.keys) {
    if (name.includes("/") || name.startsWith(".")) throw new Error(`key file name ${JSON.stringify(name)} is not accepted: a plain file name`);
    write(path.join("etc/apk/keys", name), pem);
  }
}

/** The files the database itself adds to the image (all root:root). */
export const DATABASE_PATHS = ["lib/apk/db/installed", "lib/apk/db/scripts.tar", "lib/apk/db/triggers", "etc/apk/world", "etc/apk/arch", "etc/apk/repositories"];
