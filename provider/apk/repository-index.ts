import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomicSync } from "../atomic-file";
import { serializeApkindex } from "./apkindex";
import { writeIndexArchive } from "./index-archive";
import { readPackageFile } from "./package-file";
import type { PackageRecord } from "./package-record";
import type { Signer } from "./signature";
import { versionSort } from "./version";
import { RamrootError } from "../ramroot-error";

/**
 * Reads every `.apk` in `dir` (not recursive) into index records, as `apk index` does: C: from
 * the control member, S: the file size, the rest from .PKGINFO. Each package's datahash is
 * checked; with `keys`, each must also carry a valid signature by one of them.
 */
export function indexRecords(dir: string, opts: { keys?: Map<string, Buffer> } = {}): PackageRecord[] {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".apk"))
    .sort();
  const records = files.map(
    (f) =>
      readPackageFile(fs.readFileSync(path.join(dir, f)), {
        source: path.join(dir, f),
        keys: opts.keys ?? new Map(),
        allowUntrusted: !opts.keys,
      }).record,
  );
  return records.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : versionSort(a.version, b.version)));
}

/**
 * Writes `<dir>/APKINDEX.tar.gz` for the packages in `dir`: the APKINDEX text (records sorted
 * by name, then version), DESCRIPTION, signed when a signer is given. Returns the records.
 */
export function writeRepositoryIndex(
  dir: string,
  opts: { description: string; signer?: Signer; keys?: Map<string, Buffer> },
): PackageRecord[] {
  const records = indexRecords(dir, { keys: opts.keys });
  if (records.length === 0)
    throw new RamrootError("input", `repository directory ${JSON.stringify(dir)} holds no .apk files to index`);
  const archive = writeIndexArchive(serializeApkindex(records), opts.description, opts.signer);
  const target = path.join(dir, "APKINDEX.tar.gz");
  writeFileAtomicSync(target, archive);
  return records;
}
