/**
 * The APKINDEX text: one record per package, `X:value` lines, a blank line between packages.
 * Known letters map onto PackageRecord; unknown lower-case letters are ignored (apk-tools does the
 * same); unknown upper-case letters are kept in `unknownUpperFields` as `X:value` and make the
 * package uninstallable. Letters apk keeps only in the installed database (F M R Z a s f g) are
 * skipped. D, p, i, r may repeat within a record; their entries accumulate.
 */
import type { PackageRecord } from "./package-record";
import { splitDependencyField } from "./dependency";
import { packageNameProblem, packageVersionProblem } from "./package-name";

export class ApkindexFormatError extends Error {
  constructor(
    readonly source: string,
    readonly line: number,
    reason: string,
  ) {
    super(`${source}:${line}: ${reason}`);
    this.name = "ApkindexFormatError";
  }
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
}

function emptyDraft(line: number): Draft {
  return {
    fields: {},
    lists: { depends: [], provides: [], installIf: [], replaces: [] },
    unknownUpper: [],
    firstLine: line,
  };
}

function finish(d: Draft, source: string): PackageRecord {
  const f = d.fields;
  if (f.name === undefined || f.name === "")
    throw new ApkindexFormatError(source, d.firstLine, "package record has no P: (name) field");
  if (f.version === undefined || f.version === "") {
    throw new ApkindexFormatError(source, d.firstLine, `package ${f.name} has no V: (version) field`);
  }
  // Name and version become file names: checked here, before anything is located or read.
  const problem = packageNameProblem(f.name) ?? packageVersionProblem(f.name, f.version);
  if (problem) throw new ApkindexFormatError(source, d.firstLine, problem);
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

/** Parses APKINDEX text into records, in file order. `source` names the index in errors. */
export function parseApkindex(text: string, source = "APKINDEX"): PackageRecord[] {
  const records: PackageRecord[] = [];
  const lines = text.split("\n");
  let draft: Draft | undefined;
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") {
      if (draft) records.push(finish(draft, source));
      draft = undefined;
      return;
    }
    if (line.length < 2 || line[1] !== ":") {
      throw new ApkindexFormatError(
        source,
        lineNo,
        `invalid index line ${JSON.stringify(line.slice(0, 80))}; expected "X:value"`,
      );
    }
    draft ??= emptyDraft(lineNo);
    const letter = line[0]!;
    const value = line.slice(2);
    const textKey = TEXT_FIELDS[letter];
    const numberKey = NUMBER_FIELDS[letter];
    const listKey = LIST_FIELDS[letter];
    if (textKey) {
      draft.fields[textKey] = value;
    } else if (numberKey) {
      if (!/^[0-9]+$/.test(value)) {
        throw new ApkindexFormatError(
          source,
          lineNo,
          `field ${letter} has value ${JSON.stringify(value)}; expected a non-negative integer`,
        );
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
  if (draft) records.push(finish(draft, source));
  return records;
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
        throw new Error(`package ${rec.name}: field ${letter} contains a newline; index values must be one line`);
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
