import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { gzipDeterministic } from "./gzip-members";
import { formatPkginfo } from "./pkginfo";
import { signatureMember, type Signer } from "./signature";
import { apkEntrySha1, writeTar, type TarEntry } from "./tar-writer";
import type { ScriptName } from "./package-file";
import { packageNameProblem, packageVersionProblem } from "./package-name";
import { isValidVersion } from "./version";
import { RamrootError } from "../ramroot-error";

/** What goes into .PKGINFO, as abuild's APKBUILD variables name it. */
export interface PackageSpec {
  name: string;
  version: string;
  arch: string;
  description?: string;
  url?: string;
  license?: string;
  origin?: string;
  maintainer?: string;
  packager?: string;
  commit?: string;
  depends?: string[];
  provides?: string[];
  installIf?: string[];
  replaces?: string[];
  providerPriority?: number;
  replacesPriority?: number;
  /** Paths (globs) whose change runs the package's `.trigger` script. */
  triggers?: string[];
  /** Script bodies (shell, starting with #!/bin/sh), by apk's script names. */
  scripts?: Partial<Record<ScriptName, string | Buffer>>;
  /** builddate and the mtime of every entry; default SOURCE_DATE_EPOCH or 0. */
  buildTime?: number;
  /** Ownership and mode per path (relative, no leading "/"); everything else is root:root with the file's mode. */
  owners?: Record<string, { uid?: number; gid?: number; uname?: string; gname?: string; mode?: number }>;
}

export interface BuiltPackage {
  /** The .apk bytes. */
  apk: Buffer;
  /** `<name>-<version>.apk` */
  fileName: string;
  /** hex SHA-256 of the data member, as in .PKGINFO datahash. */
  datahash: string;
}

/** Walks `dir` into data tar entries, sorted by path bytes as abuild's `find | LC_ALL=C sort` does. */
function dataEntries(dir: string, spec: PackageSpec, mtime: number): TarEntry[] {
  const paths: string[] = [];
  const walk = (rel: string) => {
    const names = fs.readdirSync(rel === "" ? dir : path.join(dir, rel));
    for (const name of names) {
      const child = rel === "" ? name : `${rel}/${name}`;
      paths.push(child);
      if (fs.lstatSync(path.join(dir, child)).isDirectory()) walk(child);
    }
  };
  walk("");
  paths.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const seenInodes = new Map<string, string>();
  const entries: TarEntry[] = [];
  for (const rel of paths) {
    const full = path.join(dir, rel);
    const st = fs.lstatSync(full);
    const owner = spec.owners?.[rel] ?? spec.owners?.[`/${rel}`] ?? {};
    const base = {
      mode: owner.mode ?? st.mode & 0o7777,
      uid: owner.uid ?? 0,
      gid: owner.gid ?? 0,
      uname: owner.uname ?? (owner.uid ? String(owner.uid) : "root"),
      gname: owner.gname ?? (owner.gid ? String(owner.gid) : "root"),
      mtime,
    };
    let entry: TarEntry;
    if (st.isDirectory()) {
      entry = { ...base, name: `${rel}/`, type: "directory" };
    } else if (st.isSymbolicLink()) {
      entry = { ...base, name: rel, type: "symlink", linkTarget: fs.readlinkSync(full) };
    } else if (st.isFile()) {
      const inode = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? seenInodes.get(inode) : undefined;
      if (first !== undefined) {
        entry = { ...base, name: rel, type: "hardlink", linkTarget: first };
      } else {
        if (st.nlink > 1) seenInodes.set(inode, rel);
        entry = { ...base, name: rel, type: "file", content: fs.readFileSync(full) };
      }
    } else {
      throw new RamrootError(
        "input",
        `package ${spec.name}: ${full} is neither a file, a directory nor a symlink; packages cannot carry it`,
      );
    }
    const sha1 = apkEntrySha1(entry);
    if (sha1) entry.pax = { "APK-TOOLS.checksum.SHA1": sha1 };
    entries.push(entry);
  }
  return entries;
}

function checkSpec(spec: PackageSpec): void {
  const field = (name: string, value: string, re: RegExp, accepted: string) => {
    if (!re.test(value))
      throw new RamrootError("input", `package ${name} ${JSON.stringify(value)} is not accepted: ${accepted}`);
  };
  const nameProblem = packageNameProblem(spec.name);
  if (nameProblem) throw new RamrootError("input", nameProblem);
  // What abuild checks with `apk version --check`, and no text that could leave a directory.
  if (!isValidVersion(spec.version) || packageVersionProblem(spec.name, spec.version))
    throw new RamrootError(
      "input",
      `package version ${JSON.stringify(spec.version)} is not accepted: an apk version such as 1.2.3-r0 (see "ramroot apk version -c")`,
    );
  field("arch", spec.arch, /^[A-Za-z0-9_]+$/, "an apk architecture such as x86_64, aarch64 or noarch");
  for (const list of ["depends", "provides", "installIf", "replaces", "triggers"] as const) {
    for (const item of spec[list] ?? []) {
      if (item === "" || /\s/.test(item))
        throw new RamrootError(
          "input",
          `package ${spec.name}: ${list} entry ${JSON.stringify(item)} is not accepted: one non-empty word without spaces`,
        );
    }
  }
}

/**
 * Builds a v2 `.apk` from a directory, as abuild's rootpkg + abuild-sign would: a data tar of
 * the tree (sorted, fixed mtimes, root ownership unless `owners` says otherwise, PAX
 * `APK-TOOLS.checksum.SHA1` per file and symlink, end-of-archive kept), its SHA-256 as
 * `datahash` in .PKGINFO, a control tar (.PKGINFO then scripts, no end-of-archive), and a
 * signature member over the control member when a signer is given. Deterministic.
 */
export function buildPackage(dir: string, spec: PackageSpec, signer?: Signer): BuiltPackage {
  checkSpec(spec);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory())
    throw new RamrootError(
      "input",
      `package ${spec.name}: directory ${JSON.stringify(dir)} does not exist or is not a directory`,
    );
  const envEpoch = process.env.SOURCE_DATE_EPOCH;
  const buildTime = spec.buildTime ?? (envEpoch && /^[0-9]+$/.test(envEpoch) ? Number(envEpoch) : 0);
  const entries = dataEntries(dir, spec, buildTime);
  const dataMember = gzipDeterministic(writeTar(entries, { endOfArchive: true }));
  const datahash = createHash("sha256").update(dataMember).digest("hex");
  const installedSize = entries.reduce((sum, e) => sum + (e.type === "file" ? e.content!.length : 0), 0);

  const pkginfo = formatPkginfo([
    ["pkgname", spec.name],
    ["pkgver", spec.version],
    ["pkgdesc", spec.description ?? spec.name],
    ["url", spec.url],
    ["builddate", buildTime],
    ["packager", spec.packager],
    ["size", installedSize],
    ["arch", spec.arch],
    ["origin", spec.origin ?? spec.name],
    ["commit", spec.commit],
    ["maintainer", spec.maintainer],
    ["provider_priority", spec.providerPriority],
    ["replaces_priority", spec.replacesPriority],
    ["install_if", spec.installIf?.join(" ")],
    ["license", spec.license],
    ...(spec.replaces ?? []).map((r): [string, string] => ["replaces", r]),
    ...(spec.depends ?? []).map((d): [string, string] => ["depend", d]),
    ...(spec.provides ?? []).map((p): [string, string] => ["provides", p]),
    ["triggers", spec.triggers?.join(" ")],
    ["datahash", datahash],
  ]);
  const controlEntries: TarEntry[] = [
    { name: ".PKGINFO", type: "file", mode: 0o644, uid: 0, gid: 0, mtime: buildTime, content: Buffer.from(pkginfo) },
  ];
  const scriptOrder: ScriptName[] = [
    "pre-install",
    "post-install",
    "pre-upgrade",
    "post-upgrade",
    "pre-deinstall",
    "post-deinstall",
    "trigger",
  ];
  for (const name of scriptOrder) {
    const body = spec.scripts?.[name];
    if (body === undefined) continue;
    controlEntries.push({
      name: `.${name}`,
      type: "file",
      mode: 0o755,
      uid: 0,
      gid: 0,
      mtime: buildTime,
      content: Buffer.from(body),
    });
  }
  if (spec.scripts?.trigger !== undefined && !(spec.triggers ?? []).length) {
    throw new RamrootError("input", `package ${spec.name}: a trigger script needs triggers (the paths that fire it)`);
  }
  const controlMember = gzipDeterministic(writeTar(controlEntries, { endOfArchive: false }));
  const parts = signer
    ? [signatureMember(controlMember, signer), controlMember, dataMember]
    : [controlMember, dataMember];
  return { apk: Buffer.concat(parts), fileName: `${spec.name}-${spec.version}.apk`, datahash };
}
