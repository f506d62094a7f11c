/**
 * The installed tree a package layer is packed from, kept after packing (under trees/ in the
 * image cache, one per set of options that shape it other than the lock) so that the next
 * lock is installed onto it as `apk add`/`apk del` would on a live root: only the packages
 * that changed are fetched, verified and unpacked, and the removed ones' files are taken out.
 *
 * The result must be the bytes a cold install of the new lock gives. That holds when a changed
 * package (added, removed, or either side of an upgrade) has no install scripts and no triggers,
 * fires no trigger of a kept package, replaces nothing and shares no origin with a kept one,
 * puts no file where the tree has a path already, gives a shared directory the owner and mode
 * the tree's packages give it, and stays out of what later build steps derive from the tree
 * (/boot, /lib/modules, /lib/firmware, the apk database). Anything else installs the whole
 * lock again (the reason is reported), so a tree is an accelerator, never a source of truth:
 * test/boot/package-rebuild.test.ts compares both ways byte for byte.
 *
 * A tree is taken out of the cache by renaming it (one build at a time uses it; another build
 * meanwhile installs cold) and put back after the layer is packed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { installPackages } from "../apk/install";
import { packageLocator } from "../apk/repository";
import { matchTriggers } from "../apk/install-scripts";
import { canApplyOwnership } from "../apk/root-ownership";
import { readTar } from "../apk/tar-reader";
import { StagingRoot } from "../apk/staging-root";
import type { FileManifest, ManifestEntry } from "../apk/expand";
import type { LockEntry } from "../apk/solver";
import type { ResolvedPlan } from "./plan";
import { installedTreeKey } from "./cache-keys";
import { recordTreeBytes } from "./cache-prune";

type Progress = (message: string) => void;

const ROOT = "root";
const STATE = "state.json";

/** One locked package as a tree records it. */
interface TreePackage {
  name: string;
  version: string;
  checksum: string;
}

interface TreeState {
  lock: TreePackage[];
  manifest: ManifestEntry[];
  /** the install's warnings (scripts), carried to every layer packed from the tree */
  warnings: string[];
}

export interface InstalledTree {
  /** the installed root */
  root: string;
  /** what the packages installed: ownership for the archive */
  manifest: FileManifest;
  warnings: string[];
  /** the directory the kernel and microcode split out of /boot are kept in */
  bootDir: string;
}

function lockOf(packages: LockEntry[]): TreePackage[] {
  return packages.map((p) => ({ name: p.name, version: p.version, checksum: p.checksum ?? "" }));
}

/**
 * Gives `use` an installed tree of the plan's lock: the cached tree brought up to the lock when
 * that is exact, else a cold install by `installCold` (into an empty root, splitting /boot into
 * the given directory). After `use` succeeds the tree is kept for the next build.
 */
export async function withInstalledTree<T>(
  resolved: ResolvedPlan,
  treesDir: string,
  scratchBase: string,
  progress: Progress,
  installCold: (root: string, bootDir: string) => Promise<{ manifest: FileManifest; warnings: string[] }>,
  use: (tree: InstalledTree) => Promise<T>,
): Promise<T> {
  const key = installedTreeKey(resolved);
  const cached = path.join(treesDir, key);
  const taken = `${scratchBase}-tree`;
  let tree: InstalledTree | undefined;
  try {
    try {
      fs.renameSync(cached, taken);
    } catch {
      // none kept, or another build is using it
    }
    if (fs.existsSync(taken)) {
      const outcome = await bringUpToLock(taken, resolved, progress);
      if (typeof outcome === "string") {
        progress(`installed tree ${key.slice(0, 12)} not reused (${outcome}): installing the lock`);
        fs.rmSync(taken, { recursive: true, force: true });
      } else tree = outcome;
    }
    if (!tree) {
      fs.mkdirSync(path.join(taken, ROOT), { recursive: true });
      const { manifest, warnings } = await installCold(path.join(taken, ROOT), taken);
      tree = { root: path.join(taken, ROOT), manifest, warnings, bootDir: taken };
    }
    const result = await use(tree);
    const state: TreeState = {
      lock: lockOf(resolved.lock.packages),
      manifest: [...tree.manifest.values()],
      warnings: tree.warnings,
    };
    fs.writeFileSync(path.join(taken, STATE), JSON.stringify(state) + "\n");
    recordTreeBytes(taken);
    fs.mkdirSync(treesDir, { recursive: true });
    try {
      fs.renameSync(taken, cached);
    } catch {
      // another build kept its tree there first: same options, either serves
    }
    return result;
  } finally {
    fs.rmSync(taken, { recursive: true, force: true });
  }
}

/** One package's block of /lib/apk/db/installed, and the paths it lists. */
interface DbBlock {
  name: string;
  checksum: string;
  text: string;
  /** dir -> "uid:gid:mode" (M:, default 0:0:755) */
  dirs: Map<string, string>;
  files: Set<string>;
  /** r: or o: lines: what could make another package's files its own */
  replaces: boolean;
  origin?: string;
}

function parseDb(text: string): DbBlock[] {
  const blocks: DbBlock[] = [];
  for (const body of text.split("\n\n")) {
    if (body.trim() === "") continue;
    const block: DbBlock = {
      name: "",
      checksum: "",
      text: body + "\n\n",
      dirs: new Map(),
      files: new Set(),
      replaces: false,
    };
    let dir = "";
    for (const line of body.split("\n")) {
      const field = line.slice(0, 2);
      const value = line.slice(2);
      if (field === "P:") block.name = value;
      else if (field === "C:") block.checksum = value;
      else if (field === "r:") block.replaces = true;
      else if (field === "o:") block.origin = value;
      else if (field === "F:") {
        dir = value;
        block.dirs.set(dir, "0:0:755");
      } else if (field === "M:") block.dirs.set(dir, value);
      else if (field === "R:") block.files.add(dir === "" ? value : `${dir}/${value}`);
    }
    blocks.push(block);
  }
  return blocks;
}

// What a layer takes from the tree besides the archive (boot-split.ts: the kernel, microcode, EFI
// stub, os-release) or rebuilds from it (modules.dep, firmware trim, the apk database).
const DERIVED = [
  "boot",
  "lib/modules",
  "lib/firmware",
  "lib/apk",
  "etc/apk",
  "usr/lib/systemd/boot/efi",
  "etc/os-release",
  "usr/lib/os-release",
];
const derived = (p: string) => DERIVED.some((d) => p === d || p.startsWith(`${d}/`));
const aclOf = (e: Pick<ManifestEntry, "uid" | "gid" | "mode">) => `${e.uid}:${e.gid}:${e.mode.toString(8)}`;

/** Names in scripts.tar: `<name>-<version>.<checksum>.<action>`. */
function scriptOwners(root: string): string[] {
  const file = path.join(root, "lib/apk/db/scripts.tar");
  if (!fs.existsSync(file)) return [];
  return readTar(fs.readFileSync(file), "lib/apk/db/scripts.tar").map((e) => e.name);
}

function hasScripts(names: string[], p: TreePackage): boolean {
  const prefix = `${p.name}-${p.version}.${p.checksum}.`;
  return names.some((n) => n.startsWith(prefix) || (n.length === 99 && prefix.startsWith(n)));
}

/** checksum -> trigger globs, from /lib/apk/db/triggers. */
function triggersOf(root: string): Map<string, string[]> {
  const file = path.join(root, "lib/apk/db/triggers");
  const out = new Map<string, string[]>();
  if (!fs.existsSync(file)) return out;
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const [checksum, ...globs] = line.split(" ").filter((w) => w !== "");
    if (checksum) out.set(checksum, globs);
  }
  return out;
}

/** The first directory of `rel` (its last component not counted) that is a symlink or no directory in the tree. */
function symlinkAbove(root: string, rel: string): string | undefined {
  const parts = rel.split("/");
  for (let i = 1; i < parts.length; i++) {
    const st = lstatIn(root, parts.slice(0, i).join("/"));
    if (st && !st.isDirectory()) return parts.slice(0, i).join("/");
  }
  return undefined;
}

function lstatIn(root: string, rel: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(path.join(root, rel));
  } catch {
    return undefined;
  }
}

/**
 * Brings the taken tree to the plan's lock, or says why that would not be exact (the tree is
 * then thrown away by the caller; it may be half changed).
 */
async function bringUpToLock(
  taken: string,
  resolved: ResolvedPlan,
  progress: Progress,
): Promise<InstalledTree | string> {
  let state: TreeState;
  try {
    state = JSON.parse(fs.readFileSync(path.join(taken, STATE), "utf8")) as TreeState;
  } catch (err) {
    return `its state is unreadable: ${(err as Error).message}`;
  }
  const root = path.join(taken, ROOT);
  const manifest: FileManifest = new Map(state.manifest.map((e) => [e.path, e]));
  const want = lockOf(resolved.lock.packages);
  const same = (a: TreePackage, b: TreePackage) => a.version === b.version && a.checksum === b.checksum;
  const removed = state.lock.filter((p) => !want.some((w) => w.name === p.name && same(w, p)));
  const added = resolved.lock.packages.filter(
    (e) => !state.lock.some((p) => p.name === e.name && same(lockOf([e])[0]!, p)),
  );
  const world = [...new Set(resolved.lock.world)].join("\n") + "\n";
  if (removed.length === 0 && added.length === 0) {
    // the same packages, perhaps asked for differently: the world is what may differ
    new StagingRoot(root).writeFile("etc/apk/world", world);
    progress(`installed tree: the lock is installed already`);
    return { root, manifest, warnings: state.warnings, bootDir: taken };
  }
  const dbFile = path.join(root, "lib/apk/db/installed");
  const blocks = parseDb(fs.readFileSync(dbFile, "utf8"));
  const byName = new Map(blocks.map((b) => [b.name, b]));
  const scripts = scriptOwners(root);
  const triggers = triggersOf(root);
  const removedNames = new Set(removed.map((p) => p.name));
  const kept = blocks.filter((b) => !removedNames.has(b.name));
  const keptOrigins = new Set(kept.map((b) => b.origin).filter((o) => o !== undefined));

  // Removed packages (and the old side of upgrades).
  const changedDirs: string[] = [];
  for (const p of removed) {
    const block = byName.get(p.name);
    if (!block) return `${p.name} is not in its database`;
    if (hasScripts(scripts, p) || triggers.has(block.checksum))
      return `${p.name}-${p.version} has install scripts or triggers`;
    if (block.replaces || (block.origin !== undefined && keptOrigins.has(block.origin)))
      return `${p.name}-${p.version} replaces or shares an origin with another package`;
    for (const f of [...block.files, ...block.dirs.keys()])
      if (derived(f)) return `${p.name}-${p.version} has ${f}, which later build steps derive from`;
    for (const f of block.files) {
      if (manifest.get(f)?.package !== p.name) return `${f} of ${p.name} is owned by another package`;
      if (kept.some((b) => b.files.has(f))) return `${f} of ${p.name} is listed by another package`;
    }
    changedDirs.push(...[...block.dirs.keys()].map((d) => `/${d}`));
  }

  // Added packages (and the new side of upgrades), unpacked into a scratch root with the tree's
  // users and groups, so owners resolve as they would in the tree.
  const scratch = `${taken}-add`;
  fs.rmSync(scratch, { recursive: true, force: true });
  try {
    for (const f of ["etc/passwd", "etc/group"]) {
      if (!fs.existsSync(path.join(root, f))) continue;
      fs.mkdirSync(path.join(scratch, "etc"), { recursive: true });
      fs.copyFileSync(path.join(root, f), path.join(scratch, f));
    }
    const install =
      added.length === 0
        ? undefined
        : await installPackages({
            root: scratch,
            lock: { world: added.map((e) => e.name), packages: added },
            arch: resolved.config.arch,
            keys: resolved.keys,
            allowUntrusted: resolved.config.allowUntrusted,
            locate: packageLocator(resolved.repositories),
            runScripts: false,
            sandboxOwners: true,
            onProgress: (m) => {
              if (m.startsWith("unpack ")) progress(`installed tree: ${m}`);
            },
          });
    if (install && install.refusedFiles.length > 0) return `the added packages overwrite each other's files`;
    if (install && scriptOwners(scratch).length > 0) return `an added package has install scripts`;
    if (install && triggersOf(scratch).size > 0) return `an added package has triggers`;
    const addedBlocks = install ? parseDb(fs.readFileSync(path.join(scratch, "lib/apk/db/installed"), "utf8")) : [];
    for (const b of addedBlocks) {
      if (b.replaces || (b.origin !== undefined && keptOrigins.has(b.origin)))
        return `${b.name} replaces or shares an origin with another package`;
      changedDirs.push(...[...b.dirs.keys()].map((d) => `/${d}`));
    }
    for (const b of kept) {
      const globs = triggers.get(b.checksum);
      if (globs && matchTriggers(globs, changedDirs).length > 0) return `a trigger of ${b.name} watches what changed`;
    }

    // Everything is checked before the tree changes: a reason found part way would leave it half
    // changed, and a symlink a script put where a package has a directory must never be written,
    // deleted or renamed through (it would reach whatever it points at on the host).
    const remaining = [...kept, ...addedBlocks];
    const goneFiles = new Set<string>();
    /** removed directories, deepest first */
    const goneDirs: string[] = [];
    /** directories that stay, taken over by a remaining package */
    const newOwners = new Map<string, string>();
    for (const p of removed) {
      const block = byName.get(p.name)!;
      for (const f of block.files) {
        const through = symlinkAbove(root, f);
        if (through) return `${f} of ${p.name} lies under ${through}, which is a symlink or no directory in the tree`;
        goneFiles.add(f);
      }
      const dirs = [...block.dirs.keys()].filter((d) => d !== "").sort((a, b) => b.length - a.length);
      for (const d of dirs) {
        const owners = remaining.filter((b) => b.dirs.has(d));
        const entry = manifest.get(d);
        if (owners.length > 0) {
          if (entry?.package !== p.name) continue;
          const acls = new Set(owners.map((b) => b.dirs.get(d)));
          if (acls.size !== 1 || !acls.has(block.dirs.get(d))) return `${d} would change owner or mode`;
          newOwners.set(d, owners[owners.length - 1]!.name);
          continue;
        }
        if (entry && entry.package !== p.name) continue;
        const through = symlinkAbove(root, d);
        if (through) return `${d} of ${p.name} lies under ${through}, which is a symlink or no directory in the tree`;
        const st = lstatIn(root, d);
        if (st && !st.isDirectory()) return `${d} of ${p.name} is no directory in the tree (a script replaced it)`;
        const left = st ? fs.readdirSync(path.join(root, d)).filter((n) => !goneFiles.has(`${d}/${n}`)) : [];
        if (left.some((n) => !goneDirs.includes(`${d}/${n}`)))
          return `${d} of ${p.name} is not empty once its files are gone`;
        goneDirs.push(d);
      }
    }
    const gone = (p: string) => goneFiles.has(p) || goneDirs.includes(p);
    const entries = install ? [...install.manifest.values()].sort((a, b) => (a.path < b.path ? -1 : 1)) : [];
    for (const e of entries) {
      if (derived(e.path)) return `${e.package} has ${e.path}, which later build steps derive from`;
      const through = symlinkAbove(root, e.path);
      if (through)
        return `${e.path} of ${e.package} lies under ${through}, which is a symlink or no directory in the tree`;
      const onDisk = gone(e.path) ? undefined : lstatIn(root, e.path);
      const base = gone(e.path) ? undefined : manifest.get(e.path);
      if (e.type === "directory") {
        if (onDisk && !onDisk.isDirectory())
          return `${e.path} of ${e.package} is a directory, the tree has another type`;
        if (onDisk && !base) return `${e.path} of ${e.package} was made by a script in the tree`;
        if (base && aclOf(base) !== aclOf(e)) return `${e.path} of ${e.package} would change owner or mode`;
      } else if (onDisk || base) return `${e.path} of ${e.package} is in the tree already`;
    }

    // Take the removed packages out (files, then directories no remaining package lists), each
    // path resolved inside the root.
    const staging = new StagingRoot(root, "installed tree");
    for (const f of goneFiles) {
      staging.remove(f);
      manifest.delete(f);
    }
    for (const d of goneDirs) {
      if (lstatIn(root, d)) fs.rmdirSync(staging.resolve(d));
      manifest.delete(d);
    }
    for (const [d, owner] of newOwners) manifest.set(d, { ...manifest.get(d)!, package: owner });

    // Lay the added packages' paths in, parents first.
    for (const e of entries) {
      const onDisk = lstatIn(root, e.path);
      const base = manifest.get(e.path);
      if (e.type === "directory") {
        if (!onDisk) {
          const st = fs.lstatSync(path.join(scratch, e.path));
          const host = staging.mkdirp(e.path, st.mode & 0o7777);
          fs.chmodSync(host, st.mode & 0o7777);
          if (canApplyOwnership()) fs.lchownSync(host, st.uid, st.gid);
        }
        if (!base) manifest.set(e.path, e);
        continue;
      }
      if (e.type !== "char" && e.type !== "block" && e.type !== "fifo") {
        const slash = e.path.lastIndexOf("/");
        const dir = slash < 0 ? root : staging.mkdirp(e.path.slice(0, slash));
        fs.renameSync(path.join(scratch, e.path), path.join(dir, e.path.slice(slash + 1)));
      }
      manifest.set(e.path, e);
    }

    // The database as a cold install writes it: blocks by name, the world of the new lock.
    const db = [...kept, ...addedBlocks].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    staging.writeFile("lib/apk/db/installed", db.map((b) => b.text).join(""));
    staging.writeFile("etc/apk/world", world);
    progress(
      `installed tree: ${added.length} package(s) unpacked onto it, ${removed.length} taken out (${[...removed.map((p) => `-${p.name}-${p.version}`), ...added.map((p) => `+${p.name}-${p.version}`)].join(" ")})`,
    );
    return { root, manifest, warnings: state.warnings, bootDir: taken };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
