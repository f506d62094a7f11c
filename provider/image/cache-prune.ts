/**
 * Keeps the image cache (images/<planId>, layers/<key>, trees/<key>) under a size bound by
 * removing what was used longest ago first. What is never removed: the images asked to be
 * kept (the one just built) and every image a stack's state names, as far as this machine's
 * provider recorded it (state-refs/: one file per AlpineImage URN naming the planId its state
 * holds, written on create/update, removed on delete), and the layers those images are made of.
 *
 * "Used" is the modification time of an entry's notes file (image.json, layer.json,
 * state.json), set when it is built and every time a build or refresh finds it in the cache.
 * Each entry disappears at once (renamed aside, then removed), so a reader sees it whole or not
 * at all: a build that loses a layer this way builds it again.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { sha256Hex } from "../file-hash";
import { FieldError } from "../ramroot-error";

/** The bound, from the environment (bytes, or with K, M, G, T). */
export const CACHE_MAX_ENV = "RAMROOT_IMAGE_CACHE_MAX";
export const DEFAULT_CACHE_MAX_BYTES = 8 * 2 ** 30;

const REFS_DIR = "state-refs";
const IMAGE_NOTES = "image.json";
const LAYER_NOTES = "layer.json";
const TREE_NOTES = "state.json";

/** "8G", "500M", "1.5G", "123456" -> bytes; anything else is refused naming `field`. */
export function parseByteSize(text: string, field: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (!m) {
    throw new FieldError(
      field,
      `got ${JSON.stringify(text)}; expected a size in bytes, or with a unit K, M, G or T (powers of 1024), e.g. 8G or 500M`,
    );
  }
  const unit = (m[2] ?? "").toLowerCase();
  const scale = unit === "" ? 1 : 1024 ** " kmgt".indexOf(unit);
  return Math.floor(Number(m[1]) * scale);
}

/** RAMROOT_IMAGE_CACHE_MAX, else 8 GiB. */
export function cacheBoundFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const value = env[CACHE_MAX_ENV];
  return value === undefined || value === "" ? DEFAULT_CACHE_MAX_BYTES : parseByteSize(value, CACHE_MAX_ENV);
}

/** Marks a cache entry used now (its notes file's mtime); a missing file is left alone. */
export function markUsed(notesFile: string): void {
  const now = new Date();
  try {
    fs.utimesSync(notesFile, now, now);
  } catch {
    // gone (pruned, or never written): nothing to mark
  }
}

function refFile(cacheDir: string, urn: string): string {
  return path.join(cacheDir, REFS_DIR, `${sha256Hex(urn)}.json`);
}

/** Records that the state of the resource `urn` names the image of `planId` (replacing what it named before). */
export function recordStateReference(cacheDir: string, urn: string, planId: string): void {
  const file = refFile(cacheDir, urn);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ urn, planId }) + "\n");
  fs.renameSync(tmp, file);
}

/** The resource `urn` is gone from its stack: its image is no longer held for it. */
export function forgetStateReference(cacheDir: string, urn: string): void {
  fs.rmSync(refFile(cacheDir, urn), { force: true });
}

/** planId -> the URNs whose state names it. */
export function stateReferences(cacheDir: string): Map<string, string[]> {
  const refs = new Map<string, string[]>();
  let names: string[];
  try {
    names = fs.readdirSync(path.join(cacheDir, REFS_DIR));
  } catch {
    return refs;
  }
  for (const name of names) {
    if (!name.endsWith(".json")) continue;
    try {
      const ref = JSON.parse(fs.readFileSync(path.join(cacheDir, REFS_DIR, name), "utf8")) as {
        urn?: unknown;
        planId?: unknown;
      };
      if (typeof ref.urn !== "string" || typeof ref.planId !== "string") continue;
      refs.set(ref.planId, [...(refs.get(ref.planId) ?? []), ref.urn]);
    } catch {
      // a reference being replaced, or unreadable: it names nothing
    }
  }
  return refs;
}

export interface CacheEntry {
  kind: "image" | "layer" | "tree";
  /** planId or layer/tree key */
  name: string;
  dir: string;
  bytes: number;
  /** ms since the epoch */
  lastUsed: number;
  /** why it is never pruned, when it is not */
  kept?: string;
}

function treeBytes(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else total += fs.lstatSync(p).size;
    }
  };
  walk(dir);
  return total;
}

/**
 * A tree's size, recorded when its build puts it back (recordTreeBytes): an installed tree holds
 * thousands of files, and walking them cost every build's prune ~0.1 s. Trees are only changed
 * by a build that takes them out, so the record holds until the next one rewrites it.
 */
const TREE_BYTES = "bytes.json";

/** Records the size of the tree in `dir` for the listing (before it is renamed into trees/). */
export function recordTreeBytes(dir: string): void {
  fs.writeFileSync(path.join(dir, TREE_BYTES), JSON.stringify({ bytes: treeBytes(dir) }) + "\n");
}

function recordedTreeBytes(dir: string): number | undefined {
  try {
    const { bytes } = JSON.parse(fs.readFileSync(path.join(dir, TREE_BYTES), "utf8")) as { bytes?: unknown };
    return typeof bytes === "number" && Number.isSafeInteger(bytes) && bytes >= 0 ? bytes : undefined;
  } catch {
    return undefined; // a tree kept before sizes were recorded, or an unreadable record: walked
  }
}

function entriesIn(root: string, kind: CacheEntry["kind"], notes: string): CacheEntry[] {
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return [];
  }
  const found: CacheEntry[] = [];
  for (const name of names) {
    if (!/^[0-9a-f]{64}$/.test(name)) continue;
    const dir = path.join(root, name);
    let lastUsed: number;
    try {
      lastUsed = fs.statSync(path.join(dir, notes)).mtimeMs;
    } catch {
      continue; // not a finished entry
    }
    const bytes = (kind === "tree" ? recordedTreeBytes(dir) : undefined) ?? treeBytes(dir);
    found.push({ kind, name, dir, bytes, lastUsed });
  }
  return found;
}

/** Every entry of the cache, with why it is kept when it is. */
export function listImageCache(cacheDir: string, keep: Iterable<string> = []): CacheEntry[] {
  const images = entriesIn(cacheDir, "image", IMAGE_NOTES);
  const layers = entriesIn(path.join(cacheDir, "layers"), "layer", LAYER_NOTES);
  const trees = entriesIn(path.join(cacheDir, "trees"), "tree", TREE_NOTES);
  const asked = new Set(keep);
  const refs = stateReferences(cacheDir);
  const keptLayers = new Map<string, string>();
  for (const image of images) {
    const urns = refs.get(image.name);
    if (asked.has(image.name)) image.kept = "asked to be kept";
    else if (urns) image.kept = `named by the state of ${urns.join(", ")}`;
    if (!image.kept) continue;
    try {
      const manifest = JSON.parse(fs.readFileSync(path.join(image.dir, IMAGE_NOTES), "utf8")) as {
        layers?: { key: string }[];
      };
      for (const l of manifest.layers ?? []) keptLayers.set(l.key, `a layer of kept image ${image.name.slice(0, 12)}`);
    } catch {
      // an unreadable manifest keeps the image itself only
    }
  }
  for (const layer of layers) layer.kept = keptLayers.get(layer.name);
  return [...images, ...layers, ...trees];
}

export interface PruneResult {
  removed: CacheEntry[];
  bytesBefore: number;
  bytesAfter: number;
  /** bytes of entries that are never pruned */
  keptBytes: number;
}

/**
 * Removes entries, least recently used first, until the cache holds at most `maxBytes`
 * (kept entries are never removed, so a cache whose kept entries alone exceed the bound stays above it).
 */
export function pruneImageCache(opts: { cacheDir: string; maxBytes: number; keep?: Iterable<string> }): PruneResult {
  const entries = listImageCache(opts.cacheDir, opts.keep);
  const bytesBefore = entries.reduce((n, e) => n + e.bytes, 0);
  const keptBytes = entries.filter((e) => e.kept).reduce((n, e) => n + e.bytes, 0);
  let total = bytesBefore;
  const removed: CacheEntry[] = [];
  const candidates = entries
    .filter((e) => !e.kept)
    .sort((a, b) => a.lastUsed - b.lastUsed || (a.name < b.name ? -1 : 1));
  for (const e of candidates) {
    if (total <= opts.maxBytes) break;
    const aside = path.join(path.dirname(e.dir), `.pruning-${e.name}-${process.pid}`);
    try {
      fs.renameSync(e.dir, aside);
    } catch {
      continue; // taken or removed by someone else meanwhile
    }
    fs.rmSync(aside, { recursive: true, force: true });
    total -= e.bytes;
    removed.push(e);
  }
  return { removed, bytesBefore, bytesAfter: total, keptBytes };
}
