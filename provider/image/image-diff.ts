/**
 * What an image holds and what differs between two, by path, grouped by the package that owns
 * each path according to the image's own /lib/apk/db/installed. Pure functions over what
 * initramfs-reader.ts read; the CLI and the provider print what these return.
 */
import type { ImageContents, ImageEntry } from "./initramfs-reader";

export const INSTALLED_DB = "lib/apk/db/installed";

/** Which package owns which path, and each package's version, from an installed db's text. */
export interface PackageOwners {
  owner: Map<string, string>;
  version: Map<string, string>;
}

/** Reads P: (name), V: (version), F: (directory) and R: (file) lines of apk's installed db. */
export function packageOwners(installedDb: string | undefined): PackageOwners {
  const owner = new Map<string, string>();
  const version = new Map<string, string>();
  if (installedDb === undefined) return { owner, version };
  let name: string | undefined;
  let dir = "";
  for (const line of installedDb.split("\n")) {
    if (line === "") {
      name = undefined;
      dir = "";
      continue;
    }
    const key = line.slice(0, 2);
    const value = line.slice(2);
    if (key === "P:") name = value;
    else if (key === "V:" && name !== undefined) version.set(name, value);
    else if (key === "F:" && name !== undefined) {
      dir = value;
      if (!owner.has(dir)) owner.set(dir, name);
    } else if (key === "R:" && name !== undefined) owner.set(dir === "" ? value : `${dir}/${value}`, name);
  }
  return { owner, version };
}

export interface ReadImage extends ImageContents {
  packages: PackageOwners;
}

export interface EntryChange {
  path: string;
  before: ImageEntry;
  after: ImageEntry;
  /** what differs, e.g. ["content", "mode"] */
  what: string[];
}

export interface ImageDiff {
  added: ImageEntry[];
  removed: ImageEntry[];
  changed: EntryChange[];
  /** package -> [version before, version after]; undefined on the side that lacks it */
  packages: Map<string, [string | undefined, string | undefined]>;
}

function differences(a: ImageEntry, b: ImageEntry): string[] {
  const what: string[] = [];
  if (a.type !== b.type) what.push("type");
  if (a.mode !== b.mode) what.push("mode");
  if (a.uid !== b.uid || a.gid !== b.gid) what.push("owner");
  if (a.sha256 !== b.sha256 || a.size !== b.size) what.push("content");
  if (a.linkTarget !== b.linkTarget) what.push("target");
  if (a.rdevMajor !== b.rdevMajor || a.rdevMinor !== b.rdevMinor) what.push("device");
  return what;
}

const byPath = (x: { path: string }, y: { path: string }) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0);

/** Paths added, removed and changed from `a` to `b` (the layer an entry came from is not a change). */
export function diffImages(a: ReadImage, b: ReadImage): ImageDiff {
  const added: ImageEntry[] = [];
  const removed: ImageEntry[] = [];
  const changed: EntryChange[] = [];
  for (const [p, after] of b.entries) {
    const before = a.entries.get(p);
    if (!before) added.push(after);
    else {
      const what = differences(before, after);
      if (what.length > 0) changed.push({ path: p, before, after, what });
    }
  }
  for (const [p, before] of a.entries) if (!b.entries.has(p)) removed.push(before);
  const packages = new Map<string, [string | undefined, string | undefined]>();
  for (const name of new Set([...a.packages.version.keys(), ...b.packages.version.keys()])) {
    const va = a.packages.version.get(name);
    const vb = b.packages.version.get(name);
    if (va !== vb) packages.set(name, [va, vb]);
  }
  return { added: added.sort(byPath), removed: removed.sort(byPath), changed: changed.sort(byPath), packages };
}

const short = (sha: string | undefined) => (sha ? sha.slice(0, 12) : "");

/** "file 0644 0:0 1234 3f9c2a1b0c4d", "symlink 0777 0:0 -> busybox", "char 0600 0:0 5,1". */
export function describeEntry(e: ImageEntry): string {
  const head = `${e.type} ${e.mode.toString(8).padStart(4, "0")} ${e.uid}:${e.gid}`;
  switch (e.type) {
    case "file":
      return `${head} ${e.size} ${short(e.sha256)}`;
    case "symlink":
      return `${head} -> ${e.linkTarget ?? ""}`;
    case "char":
    case "block":
      return `${head} ${e.rdevMajor ?? 0},${e.rdevMinor ?? 0}`;
    default:
      return head;
  }
}

function describeChange(c: EntryChange): string {
  const parts: string[] = [];
  for (const w of c.what) {
    if (w === "type") parts.push(`${c.before.type} -> ${c.after.type}`);
    if (w === "mode")
      parts.push(`mode ${c.before.mode.toString(8).padStart(4, "0")} -> ${c.after.mode.toString(8).padStart(4, "0")}`);
    if (w === "owner") parts.push(`owner ${c.before.uid}:${c.before.gid} -> ${c.after.uid}:${c.after.gid}`);
    if (w === "content")
      parts.push(
        `size ${c.before.size} -> ${c.after.size}, sha256 ${short(c.before.sha256) || "-"} -> ${short(c.after.sha256) || "-"}`,
      );
    if (w === "target") parts.push(`-> ${c.before.linkTarget ?? "-"} => -> ${c.after.linkTarget ?? "-"}`);
    if (w === "device")
      parts.push(`device ${c.before.rdevMajor},${c.before.rdevMinor} -> ${c.after.rdevMajor},${c.after.rdevMinor}`);
  }
  return parts.join("; ");
}

const NO_PACKAGE = "(no package: overlay, config and what the build made)";

/** The package owning a path on the side that has it, or NO_PACKAGE. */
function ownerOf(path: string, side: ReadImage): string {
  return side.packages.owner.get(path) ?? NO_PACKAGE;
}

/**
 * The diff as text: package version changes first, then per package (by name, files outside
 * any package last) its paths, "+" added, "-" removed, "~" changed with what changed.
 */
export function renderDiff(diff: ImageDiff, a: ReadImage, b: ReadImage, opts: { maxLines?: number } = {}): string[] {
  const lines: string[] = [];
  for (const [name, [va, vb]] of [...diff.packages].sort(([x], [y]) => (x < y ? -1 : 1))) {
    lines.push(
      va === undefined
        ? `+ package ${name} ${vb}`
        : vb === undefined
          ? `- package ${name} ${va}`
          : `~ package ${name} ${va} -> ${vb}`,
    );
  }
  const groups = new Map<string, string[]>();
  const add = (pkg: string, line: string) => {
    const list = groups.get(pkg) ?? [];
    list.push(line);
    groups.set(pkg, list);
  };
  for (const e of diff.added) add(ownerOf(e.path, b), `+ ${e.path}  ${describeEntry(e)}`);
  for (const e of diff.removed) add(ownerOf(e.path, a), `- ${e.path}  ${describeEntry(e)}`);
  for (const c of diff.changed) add(ownerOf(c.path, b), `~ ${c.path}  ${describeChange(c)}`);
  const names = [...groups.keys()].sort((x, y) => (x === NO_PACKAGE ? 1 : y === NO_PACKAGE ? -1 : x < y ? -1 : 1));
  for (const name of names) {
    const entries = groups.get(name)!.sort((x, y) => (x.slice(2) < y.slice(2) ? -1 : 1));
    lines.push(`${name}:`);
    for (const l of entries) lines.push(`  ${l}`);
  }
  if (lines.length === 0) lines.push("no difference: the two images hold the same paths, modes, owners and contents");
  const max = opts.maxLines;
  if (max !== undefined && lines.length > max) {
    const rest = lines.length - (max - 1);
    return [...lines.slice(0, max - 1), `... ${rest} more lines (ramroot image diff shows all)`];
  }
  return lines;
}

/** Counts for a one-line summary: "+3 -1 ~2 paths, 1 package changed". */
export function summarizeDiff(diff: ImageDiff): string {
  return `+${diff.added.length} -${diff.removed.length} ~${diff.changed.length} paths, ${diff.packages.size} package${diff.packages.size === 1 ? "" : "s"} changed`;
}

/** `ramroot image ls` lines: each path with type, mode, owner, size/hash or target, and its package. */
export function renderListing(image: ReadImage): string[] {
  const entries = [...image.entries.values()].sort(byPath);
  return entries.map((e) => {
    const pkg = image.packages.owner.get(e.path);
    return `${describeEntry(e)}  ${e.path}${pkg ? `  [${pkg}]` : ""}`;
  });
}
