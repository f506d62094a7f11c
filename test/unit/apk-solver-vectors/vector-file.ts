/**
 * Reads apk-tools' solver test cases (test/*.test, test/solver/*.test) in both of their layouts:
 *
 *   old:  @ARGS                      new:  @ARGS add a b
 *         --test-repo basic.repo           @REPO basic.repo      (or @CACHE basic.repo)
 *         add a b                          @EXPECT
 *         @EXPECT                          (1/2) Installing b (2)
 *         (1/2) Installing b (2)           ...
 *
 * and runs them against ramroot's solver the way apk's test runner (test/solver.sh) runs apk.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseApkindex } from "../../../provider/apk/apkindex";
import type { RepositoryPackage } from "../../../provider/apk/package-record";
import { parseInstalledDb } from "../../../provider/apk/installed-db";
import {
  formatChange,
  installOrder,
  resolveChanges,
  resolvePackages,
  SOLVER_AVAILABLE,
  SOLVER_LATEST,
  SOLVER_REMOVE,
  SOLVER_UPGRADE,
  type SolverFlags,
} from "../../../provider/apk/solver";

export const DATA_DIR = path.join(__dirname, "data");

export interface Vector {
  name: string;
  /** Index files in repository order, as named by the test (--test-repo, @REPO, @CACHE). */
  repos: string[];
  /** The apk applet (add, del, upgrade...). */
  applet: string;
  /** Options other than the repositories (--no-network...). */
  options: string[];
  /** The packages given to the applet. */
  packages: string[];
  /** Whether the case needs an installed database or an existing world. */
  needsInstalled: boolean;
  /** The installed database file (@INSTALLED) and the world before the applet runs (@WORLD). */
  installed?: string;
  world: string[];
  /** The text apk prints, verbatim. */
  expect: string;
}

export function readVector(file: string): Vector {
  const v: Vector = {
    name: path.basename(file, ".test"),
    repos: [],
    applet: "",
    options: [],
    packages: [],
    needsInstalled: false,
    world: [],
    expect: "",
  };
  const tokens: string[] = [];
  let section: "args" | "expect" | undefined;
  const expected: string[] = [];
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (section === "expect" && !line.startsWith("@")) {
      expected.push(line);
      continue;
    }
    const [tag, ...rest] = line.split(" ");
    const value = rest.join(" ");
    switch (tag) {
      case "@ARGS":
        section = "args";
        tokens.push(...rest.filter((t) => t.length > 0));
        break;
      case "@REPO":
      case "@CACHE":
        v.repos.push(value);
        break;
      case "@INSTALLED":
        v.needsInstalled = true;
        v.installed = value;
        break;
      case "@WORLD":
        v.needsInstalled = true;
        v.world = rest.filter((t) => t.length > 0);
        break;
      case "@EXPECT":
        section = "expect";
        break;
      default:
        if (line.startsWith("@")) throw new Error(`${file}: unknown directive ${JSON.stringify(line)}`);
        if (section === "args") tokens.push(...line.split(" ").filter((t) => t.length > 0));
    }
  }
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === "--test-repo") v.repos.push(tokens[++i]!.replace(/^!/, ""));
    else if (t === "--test-instdb" || t === "--test-world") {
      v.needsInstalled = true;
      i++;
    } else if (t.startsWith("-")) v.options.push(t);
    else if (v.applet === "") v.applet = t;
    else v.packages.push(t);
  }
  v.expect = expected.join("\n").replace(/\n+$/, "");
  return v;
}

/** The vectors kept under data/, by name. */
export function vectorFiles(): string[] {
  return fs
    .readdirSync(DATA_DIR)
    .filter((f) => f.endsWith(".test"))
    .sort((a, b) => a.localeCompare(b, "en", { numeric: true }))
    .map((f) => path.join(DATA_DIR, f));
}

/** A repository as a vector names it: "file.repo", or "@tag file.repo" for a tagged (pinned) one. */
export function vectorRepository(entry: string): { file: string; tag?: string } {
  const m = /^@(\S+)\s+(\S+)$/.exec(entry);
  return m ? { tag: m[1]!, file: m[2]! } : { file: entry };
}

/** The repositories of a vector as ramroot reads them: plain APKINDEX text, in priority order. */
export function vectorPackages(v: Vector): RepositoryPackage[] {
  return v.repos.flatMap((entry, order) => {
    const { file, tag } = vectorRepository(entry);
    const url = `file://${path.join(DATA_DIR, file)}`;
    return parseApkindex(fs.readFileSync(path.join(DATA_DIR, file), "utf8"), url).map((r) => ({
      ...r,
      repository: url,
      repositoryOrder: order,
      ...(tag ? { repositoryTag: tag } : {}),
    }));
  });
}

/** The world after the applet: `add` puts its packages in (replacing an entry of the same name), `del` takes them out. */
export function worldAfter(v: Vector): string[] {
  const nameOf = (d: string) => d.replace(/^!/, "").split(/[@<>=~]/)[0]!;
  if (v.applet === "add")
    return [...v.world.filter((w) => !v.packages.some((p) => nameOf(p) === nameOf(w))), ...v.packages];
  if (v.applet === "del") return v.world.filter((w) => !v.packages.some((p) => nameOf(p) === nameOf(w)));
  return v.world;
}

/**
 * The solver hints apk's applets give: `add` marks the names it adds (with --upgrade/--latest as
 * asked, passed down to their dependencies), `del` the names it removes, `upgrade --latest` the
 * whole world.
 */
export function vectorFlags(v: Vector): SolverFlags {
  const nameOf = (d: string) => d.replace(/^!/, "").split(/[@<>=~]/)[0]!;
  const asked =
    (v.options.includes("--upgrade") || v.options.includes("-u") ? SOLVER_UPGRADE : 0) |
    (v.options.includes("--latest") || v.options.includes("-l") ? SOLVER_LATEST : 0);
  if (v.applet === "add") return { names: new Map(v.packages.map((p) => [nameOf(p), asked])) };
  if (v.applet === "del") return { names: new Map(v.packages.map((p) => [nameOf(p), SOLVER_REMOVE])) };
  const available = v.options.includes("--available") || v.options.includes("-a") ? SOLVER_AVAILABLE : 0;
  return { global: asked | available };
}

/** apk's "(i/n) <change>" lines for a vector with an installed database (or tagged repositories). */
export function changeOutput(v: Vector): string {
  const installed = v.installed
    ? parseInstalledDb(fs.readFileSync(path.join(DATA_DIR, v.installed), "utf8"), v.installed)
    : { records: [], tags: new Map<string, string>() };
  try {
    const { changes } = resolveChanges(
      worldAfter(v),
      vectorPackages(v),
      { installed: installed.records, installedTags: installed.tags },
      { upgrade: v.applet === "upgrade", flags: vectorFlags(v) },
    );
    return changes.map((c, i) => `(${i + 1}/${changes.length}) ${formatChange(c)}`).join("\n");
  } catch (err) {
    const message = (err as Error).message;
    return message.startsWith("ERROR: ") ? message : `ERROR: ${message}`;
  }
}

/** apk's "(i/n) Installing name (version)" lines for an install order. */
export function installLines(order: Array<{ name: string; version: string }>): string[] {
  return order.map((e, i) => `(${i + 1}/${order.length}) Installing ${e.name} (${e.version})`);
}

/**
 * What ramroot says for the vector, in apk's words: the install lines, or the error text. apk's
 * closing "OK: n MiB in m packages" line counts the installed database, which ramroot has none of,
 * so it is left out of both sides.
 */
export function ramrootOutput(v: Vector): string {
  if (v.needsInstalled || v.repos.some((r) => r.startsWith("@"))) return changeOutput(v);
  try {
    return installLines(installOrder(resolvePackages(v.packages, vectorPackages(v)))).join("\n");
  } catch (err) {
    const message = (err as Error).message;
    return message.startsWith("ERROR: ") ? message : `ERROR: ${message}`;
  }
}

export function apkOutput(v: Vector): string {
  return v.expect
    .split("\n")
    .filter((l) => !l.startsWith("OK: "))
    .join("\n");
}

export interface VersionPair {
  a: string;
  op: "<" | "=" | ">";
  b: string;
}

/** apk-tools' test/version.data: "A op B" per line, "# comment" allowed. */
export function readVersionData(): VersionPair[] {
  return fs
    .readFileSync(path.join(DATA_DIR, "version.data"), "utf8")
    .split("\n")
    .map((line) => line.replace(/#.*/, "").trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const [a, op, b, ...rest] = line.split(/\s+/);
      if (rest.length > 0 || (op !== "<" && op !== "=" && op !== ">") || !a || !b)
        throw new Error(`version.data: cannot read ${JSON.stringify(line)}`);
      return { a, op, b };
    });
}
