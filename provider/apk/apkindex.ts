/**
 * The APKINDEX text: one record per package, `X:value` lines, a blank line between packages.
 * Known letters map onto PackageRecord; unknown lower-case letters are ignored (apk-tools does the
 * same); unknown upper-case letters are kept in `unknownUpperFields` as `X:value` and make the
 * package uninstallable. Letters apk keeps only in the installed database (F M R Z a s f g) are
 * skipped. D, p, i, r may repeat within a record; their entries accumulate.
 *
 * One record that cannot be used never costs the whole index: a record without a name or a
 * version, with a name or version that could not be a file name (package-name.ts), a line that is
 * not `X:value` or a size that is not a number is left out and reported, naming the record and
 * its line, and every other record is read. A version apk 2.14 calls invalid is kept, as apk
 * keeps it (it orders it all the same, version.ts).
 */
import type { PackageRecord } from "./package-record";
import { splitDependencyField } from "./dependency";
import { packageNameProblem, packageVersionProblem } from "./package-name";
import { RamrootError } from "../ramroot-error";

/** A record the reader left out. */
export interface SkippedRecord {
  source: string;
  /** the record's first line */
  line: number;
  name?: string;
  version?: string;
  reason: string;
  /** `<source>:<line>: package "<name>-<version>" skipped: <reason>` */
  message: string;
}

/** What an index holds: the records that can be used, in file order, and the ones left out. */
export interface ApkindexRead {
  records: PackageRecord[];
  skipped: SkippedRecord[];
}

const INSTALLED_DB_ONLY = new Set(["F", "M", "R", "Z", "a", "s", "f", "g"]);

type NumberKey = "size" | "installedSize" | "buildTime" | "providerPriority" | "replacesPriority";
type TextKey =
  "checksum" | "name" | "version" | "arch" | "description" | "url" | "license" | "origin" | "maintainer" | "commit";
type ListKey = "depends" | "provides" | "installIf" | "replaces";

const TEXT_FIELDS: Record<string, TextKey> = {
  C: "checksum",
  P: "name",
  V: "version",
  A: "arch",
  T: "description",
  U: "url",
  L: "license",
  o: "origin",
  m: "maintainer",
  c: "commit",
};
const NUMBER_FIELDS: Record<string, NumberKey> = {
  S: "size",
  I: "installedSize",
  t: "buildTime",
  k: "providerPriority",
  q: "replacesPriority",
};
const LIST_FIELDS: Record<string, ListKey> = { D: "depends", p: "provides", i: "installIf", r: "replaces" };

/** Field order when writing, the order apk-tools writes index records in. */
const WRITE_ORDER: string[] = [
  "C",
  "P",
  "V",
  "A",
  "S",
  "I",
  "T",
  "U",
  "L",
  "o",
  "m",
  "t",
  "c",
  "k",
  "D",
  "p",
  "i",
  "r",
  "q",
];

interface Draft {
  fields: Partial<Record<TextKey, string>> & Partial<Record<NumberKey, number>>;
  lists: Record<ListKey, string[]>;
  unknownUpper: string[];
  firstLine: number;
  /** why the record cannot be used, found while reading its lines */
  problem?: string;
}

function emptyDraft(line: number): Draft {
  return {
    fields: {},
    lists: { depends: [], provides: [], installIf: [], replaces: [] },
    unknownUpper: [],
    firstLine: line,
  };
}

function skipped(d: Draft, source: string, reason: string): SkippedRecord {
  const { name, version } = d.fields;
  // quoted: a name or version that is refused may hold a line break
  const what =
    name === undefined ? "a record" : `package ${JSON.stringify(version !== undefined ? `${name}-${version}` : name)}`;
  return {
    source,
    line: d.firstLine,
    ...(name !== undefined ? { name } : {}),
    ...(version !== undefined ? { version } : {}),
    reason,
    message: `${source}:${d.firstLine}: ${what} skipped: ${reason}`,
  };
}

function finish(d: Draft, source: string): PackageRecord | SkippedRecord {
  const f = d.fields;
  if (d.problem !== undefined) return skipped(d, source, d.problem);
  if (f.name === undefined || f.name === "") return skipped(d, source, "it has no P: (name) field");
  if (f.version === undefined || f.version === "") return skipped(d, source, "it has no V: (version) field");
  // Name and version become file names: checked here, before anything is located or read.
  const problem = packageNameProblem(f.name) ?? packageVersionProblem(f.name, f.version);
  if (problem) return skipped(d, source, problem);
  const rec: PackageRecord = {
    name: f.name,
    version: f.version,
    depends: d.lists.depends,
    provides: d.lists.provides,
    installIf: d.lists.installIf,
    replaces: d.lists.replaces,
  };
  for (const key of Object.values(TEXT_FIELDS))
    if (key !== "name" && key !== "version" && f[key] !== undefined) rec[key] = f[key];
  for (const key of Object.values(NUMBER_FIELDS)) if (f[key] !== undefined) rec[key] = f[key];
  if (d.unknownUpper.length > 0) rec.unknownUpperFields = d.unknownUpper;
  return rec;
}

/** Reads APKINDEX text into the records that can be used, in file order, and those left out. `source` names the index. */
export function readApkindex(text: string, source = "APKINDEX"): ApkindexRead {
  const out: ApkindexRead = { records: [], skipped: [] };
  const end = (d: Draft) => {
    const r = finish(d, source);
    if ("reason" in r) out.skipped.push(r);
    else out.records.push(r);
  };
  const lines = text.split("\n");
  let draft: Draft | undefined;
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") {
      if (draft) end(draft);
      draft = undefined;
      return;
    }
    draft ??= emptyDraft(lineNo);
    if (line.length < 2 || line[1] !== ":") {
      draft.problem ??= `line ${lineNo} ${JSON.stringify(line.slice(0, 80))} is not "X:value"`;
      return;
    }
    const letter = line[0]!;
    const value = line.slice(2);
    const textKey = TEXT_FIELDS[letter];
    const numberKey = NUMBER_FIELDS[letter];
    const listKey = LIST_FIELDS[letter];
    if (textKey) {
      draft.fields[textKey] = value;
    } else if (numberKey) {
      if (!/^[0-9]+$/.test(value)) {
        draft.problem ??= `field ${letter} on line ${lineNo} has value ${JSON.stringify(value)}; expected a non-negative integer`;
        return;
      }
      draft.fields[numberKey] = Number(value);
    } else if (listKey) {
      // one at a time: a spread of a crafted line's hundreds of thousands of names overflows the stack
      for (const dep of splitDependencyField(value)) draft.lists[listKey].push(dep);
    } else if (INSTALLED_DB_ONLY.has(letter)) {
      // installed-database fields: not part of an index record
    } else if (letter >= "A" && letter <= "Z") {
      draft.unknownUpper.push(line);
    }
    // any other (lower-case) letter: ignored, as apk-tools does
  });
  if (draft) end(draft);
  return out;
}

/** The records of APKINDEX text that can be used (readApkindex without the report of those left out). */
export function parseApkindex(text: string, source = "APKINDEX"): PackageRecord[] {
  return readApkindex(text, source).records;
}

function fieldValue(rec: PackageRecord, letter: string): string | undefined {
  const textKey = TEXT_FIELDS[letter];
  if (textKey) return rec[textKey];
  const numberKey = NUMBER_FIELDS[letter];
  if (numberKey) return rec[numberKey] === undefined ? undefined : String(rec[numberKey]);
  const listKey = LIST_FIELDS[letter];
  if (listKey) return rec[listKey].length > 0 ? rec[listKey].join(" ") : undefined;
  return undefined;
}

/** Writes one record (no trailing blank line). */
export function serializeRecord(rec: PackageRecord): string {
  const out: string[] = [];
  for (const letter of WRITE_ORDER) {
    const v = fieldValue(rec, letter);
    if (v !== undefined) {
      if (v.includes("\n"))
        throw new RamrootError(
          "input",
          `package ${rec.name}: field ${letter} contains a newline; index values must be one line`,
        );
      out.push(`${letter}:${v}`);
    }
  }
  for (const extra of rec.unknownUpperFields ?? []) out.push(extra);
  return out.join("\n") + "\n";
}

/** Writes APKINDEX text: records in the given order, each followed by a blank line, as apk writes it. */
export function serializeApkindex(records: readonly PackageRecord[]): string {
  return records.map((r) => serializeRecord(r) + "\n").join("");
}
