import { readApkindex, type SkippedRecord } from "./apkindex";
import { isPrivateKeyPem } from "./signature";
import type { PackageRecord } from "./package-record";
import { DEFAULT_DIR_ACL, DEFAULT_FILE_ACL, type Acl, type FileManifest, type InstalledDir } from "./expand";
import { StagingRoot } from "./staging-root";
import { SCRIPT_NAMES, type ScriptName } from "./package-file";
import { writeTar, type TarEntry } from "./tar-writer";
import { RamrootError, TrustError } from "../ramroot-error";

/** One installed package as the apk database records it. */
export interface InstalledPackage {
  record: PackageRecord;
  /** Directories and files it owns, from expandDataTar. */
  dirs: InstalledDir[];
  scripts: Map<ScriptName, Buffer>;
  triggers: string[];
  /** What apk flags in the db (`f:`): files it could not install (`f`), a script that failed (`s`). */
  broken?: { files?: boolean; script?: boolean };
}

export interface ApkDatabase {
  packages: InstalledPackage[];
  /** /etc/apk/world: the dependencies asked for ("busybox", "alpine-base>=3.20"), in the solver's order (by name). */
  world: string[];
  arch: string;
  /** /etc/apk/repositories lines; the file is written only when given (`apk add --initdb` writes none). */
  repositories?: string[];
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
 * A package's header in /lib/apk/db/installed, field for field as apk_pkg_write_index_header
 * writes it (T:, U: and L: always, even empty; t: and k: only when non-zero), then what only the
 * installed db holds: r: (replaces), q: (replaces_priority), f: (broken files / script).
 */
function installedHeader(pkg: InstalledPackage): string {
  const r = pkg.record;
  const lines = [`C:${r.checksum ?? ""}`, `P:${r.name}`, `V:${r.version}`];
  if (r.arch !== undefined) lines.push(`A:${r.arch}`);
  lines.push(
    `S:${r.size ?? 0}`,
    `I:${r.installedSize ?? 0}`,
    `T:${r.description ?? ""}`,
    `U:${r.url ?? ""}`,
    `L:${r.license ?? ""}`,
  );
  if (r.origin) lines.push(`o:${r.origin}`);
  if (r.maintainer) lines.push(`m:${r.maintainer}`);
  if (r.buildTime) lines.push(`t:${r.buildTime}`);
  if (r.commit) lines.push(`c:${r.commit}`);
  if (r.providerPriority) lines.push(`k:${r.providerPriority}`);
  if (r.depends.length > 0) lines.push(`D:${r.depends.join(" ")}`);
  if (r.provides.length > 0) lines.push(`p:${r.provides.join(" ")}`);
  if (r.installIf.length > 0) lines.push(`i:${r.installIf.join(" ")}`);
  if (r.replaces.length > 0) lines.push(`r:${r.replaces.join(" ")}`);
  if (r.replacesPriority) lines.push(`q:${r.replacesPriority}`);
  const flags = `${pkg.broken?.files ? "f" : ""}${pkg.broken?.script ? "s" : ""}`;
  if (flags) lines.push(`f:${flags}`);
  return lines.join("\n") + "\n";
}

/**
 * /lib/apk/db/installed in apk's format (apk_db_fdb_write): per package its header lines, then
 * per directory `F:` and `M:uid:gid:mode` when not root:root 0755, per file `R:`,
 * `a:uid:gid:mode` when not root:root 0644, `Z:Q1...`; a blank line ends each package.
 */
export function formatInstalledDb(packages: InstalledPackage[], manifest?: FileManifest): string {
  let out = "";
  for (const pkg of sorted(packages)) {
    out += installedHeader(pkg);
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
 * The name apk 2.14 gives a script in scripts.tar (apk_db_scriptdb_write):
 * `<name>-<version>.<package identity as apk prints it, "Q1" + base64 of the SHA-1>.<action>`,
 * cut to the 99 bytes of a tar name field as its strlcpy does. apk reads the identity back from
 * between the last two dots, so any other form (bare hex) attaches the script to nothing.
 */
export function scriptEntryName(
  record: { name: string; version: string; checksum?: string },
  action: ScriptName,
): string {
  if (!record.checksum?.startsWith("Q1"))
    throw new TrustError(`package ${record.name}: no Q1 checksum to name its scripts with`, undefined, "repositories");
  const name = Buffer.from(`${record.name}-${record.version}.${record.checksum}.${action}`);
  return name.subarray(0, 99).toString("utf8");
}

/**
 * /lib/apk/db/scripts.tar: every script of every installed package, in install order (apk walks
 * its installed list, which grows as packages are installed) and per package in apk's script
 * order, mode 0755, root, mtime = build time, then the end-of-archive blocks.
 */
export function formatScriptsTar(packages: InstalledPackage[]): Buffer {
  const entries: TarEntry[] = [];
  for (const pkg of packages) {
    const { record } = pkg;
    for (const action of SCRIPT_NAMES) {
      const body = pkg.scripts.get(action);
      if (!body) continue;
      entries.push({
        name: scriptEntryName(record, action),
        type: "file",
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: record.buildTime ?? 0,
        content: body,
      });
    }
  }
  return writeTar(entries, { endOfArchive: true });
}

/** /lib/apk/db/triggers: "<Q1 checksum> <path glob>..." per package that has triggers, in install order. */
export function formatTriggers(packages: InstalledPackage[]): string {
  return packages
    .filter((p) => p.triggers.length > 0)
    .map((p) => `${p.record.checksum} ${p.triggers.join(" ")}\n`)
    .join("");
}

/** Writes the apk database into `root` so that `apk` on the machine sees what is installed. */
export function writeApkDatabase(root: string, db: ApkDatabase): void {
  // Inside the root only: a package's own lib/apk/db or etc/apk symlink never leads out.
  const staging = new StagingRoot(root);
  const write = (rel: string, content: string | Buffer, mode = 0o644) => {
    staging.writeFile(rel, content, mode);
  };
  write("lib/apk/db/installed", formatInstalledDb(db.packages, db.manifest));
  write("lib/apk/db/scripts.tar", formatScriptsTar(db.packages));
  write("lib/apk/db/triggers", formatTriggers(db.packages));
  write("etc/apk/world", [...new Set(db.world)].join("\n") + "\n");
  write("etc/apk/arch", `${db.arch}\n`);
  if (db.repositories) write("etc/apk/repositories", db.repositories.map((r) => `${r}\n`).join(""));
  staging.mkdirp("etc/apk/keys");
  for (const [name, pem] of db.keys) {
    if (name.includes("/") || name.startsWith("."))
      throw new RamrootError("input", `key file name ${JSON.stringify(name)} is not accepted: a plain file name`);
    // The last guard: only public keys ever enter a root.
    if (isPrivateKeyPem(pem))
      throw new TrustError(
        `key ${JSON.stringify(name)} is a PRIVATE key; only public keys may be written to etc/apk/keys`,
      );
    write(`etc/apk/keys/${name}`, pem);
  }
}

/** What an installed database says: the packages (index fields) and the repository tag each was installed with (s:). */
export interface InstalledDbState {
  records: PackageRecord[];
  /** records that could not be used (apkindex.ts) */
  skipped: SkippedRecord[];
  tags: Map<string, string>;
}

/** Reads /lib/apk/db/installed: the package headers (file lines skipped) and each package's `s:` tag. */
export function parseInstalledDb(text: string, source: string): InstalledDbState {
  const { records, skipped } = readApkindex(text, source);
  const tags = new Map<string, string>();
  for (const block of text.split(/\n\s*\n/)) {
    const name = /^P:(.*)$/m.exec(block)?.[1];
    const tag = /^s:(.*)$/m.exec(block)?.[1];
    if (name !== undefined && tag) tags.set(name, tag);
  }
  return { records, skipped, tags };
}

/** Reads /etc/apk/world: dependencies separated by white space. */
export function parseWorldFile(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== "");
}
