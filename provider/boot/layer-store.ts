/**
 * The layer store on a boot partition: the archives an initramfs is the concatenation of
 * (provider/image/layers.ts), each kept once under `layers/`, named by its sha256, so both slots
 * share what they have in common and a deploy sends only the layers the partition lacks.
 *
 * Names are 8.3 (`layers/3f9c01ab.cd2`: the first 11 hex digits of the sha256), which every FAT
 * driver and syslinux's own reads without long-name entries; a name is a claim checked by hashing,
 * never trusted: a file under a layer's name that hashes otherwise is replaced, and a slot is
 * verified by hashing each of its layers. A layer is written atomically (temporary name, read back
 * by hash, rename) before any manifest names it, and collected only when no slot's manifest
 * names it, so a cut at any point leaves every slot's layers whole.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash, type Hash } from "node:crypto";
import { readChunks } from "../file-chunks";
import { isTempName } from "../atomic-file";
import { hashFiles, listDirectories, type BootTarget } from "./boot-target";
import { FieldError, InternalError, RamrootError, TargetError } from "../ramroot-error";

export const LAYER_DIR = "layers";

/** A layer as an image records it: the sha256 and size of its compressed archive, in initramfs order. */
export interface LayerSpec {
  sha256: string;
  size: number;
}

/** A layer on the partition: where it is, what it hashes to, how large it is. */
export interface LayerRecord extends LayerSpec {
  path: string;
}

/** The partition path of a layer with this sha256 (8.3: eight hex digits, a dot, three more). */
export function layerPath(sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256))
    throw new InternalError(`layer sha256: got ${JSON.stringify(sha256)}; expected 64 hex digits`);
  return `${LAYER_DIR}/${sha256.slice(0, 8)}.${sha256.slice(8, 11)}`;
}

/** The layer's bytes of the local initramfs (at `offset`) copied into a file of its own in `dir`, checked by hash. */
async function sliceOf(initramfs: string, offset: number, layer: LayerSpec, dir: string): Promise<string> {
  const out = path.join(dir, `layer-${layer.sha256.slice(0, 16)}`);
  const hash = createHash("sha256");
  const write = await fs.promises.open(out, "w");
  try {
    // One reused buffer (file-chunks.ts): each chunk is hashed and written before the next read.
    await readChunks(
      initramfs,
      async (chunk) => {
        hash.update(chunk);
        for (let done = 0; done < chunk.length;) done += (await write.write(chunk, done)).bytesWritten;
      },
      { start: offset, length: layer.size },
    );
  } finally {
    await write.close();
  }
  const got = hash.digest("hex");
  if (got !== layer.sha256)
    throw new RamrootError(
      "input",
      `${initramfs}: bytes ${offset}-${offset + layer.size} hash to ${got.slice(0, 12)}, not layer ${layer.sha256.slice(0, 12)}: the image's layer list does not describe its initramfs`,
    );
  return out;
}

/**
 * The layers of a local initramfs cut at these compressed sizes, in order (each slice hashed):
 * for an initramfs from outside the image cache, whose layer sizes its maker knows.
 */
export async function layersOfSizes(initramfs: string, sizes: readonly number[]): Promise<LayerSpec[]> {
  const total = fs.statSync(initramfs).size;
  const sum = sizes.reduce((n, s) => n + s, 0);
  if (sizes.length === 0 || sum !== total || sizes.some((s) => !Number.isInteger(s) || s <= 0))
    throw new FieldError(
      "layer sizes",
      `got ${sizes.join(",") || "none"} (${sum} bytes); expected positive whole sizes adding up to ${initramfs}'s ${total} bytes`,
    );
  const layers: LayerSpec[] = [];
  let offset = 0;
  for (const size of sizes) {
    layers.push({ sha256: await sliceSha256(initramfs, offset, size), size });
    offset += size;
  }
  return layers;
}

/** The sha256 of `size` bytes of `file` from `offset` (the bytes also fed to `also`, the whole file's hash). */
async function sliceSha256(file: string, offset: number, size: number, also?: Hash): Promise<string> {
  const hash = createHash("sha256");
  await readChunks(
    file,
    (chunk) => {
      hash.update(chunk);
      also?.update(chunk);
    },
    { start: offset, length: size },
  );
  return hash.digest("hex");
}

/**
 * Throws unless the local initramfs is exactly the layers in order: sizes adding up to its size,
 * each slice hashing as its layer (one read of the file). Checked before anything is sent, also
 * when every layer is already on the partition.
 */
async function checkLayersCover(initramfs: string, layers: readonly LayerSpec[]): Promise<string> {
  const size = fs.statSync(initramfs).size;
  const sum = layers.reduce((n, l) => n + l.size, 0);
  if (layers.length === 0 || sum !== size)
    throw new FieldError(
      "layers",
      `${layers.length} layer(s) of ${sum} bytes do not make up ${initramfs} (${size} bytes); expected the image's layers in order`,
    );
  let offset = 0;
  const whole = createHash("sha256");
  for (const layer of layers) {
    const got = await sliceSha256(initramfs, offset, layer.size, whole);
    if (got !== layer.sha256)
      throw new RamrootError(
        "input",
        `${initramfs}: bytes ${offset}-${offset + layer.size} hash to ${got.slice(0, 12)}, not layer ${layer.sha256.slice(0, 12)}: the image's layer list does not describe its initramfs`,
      );
    offset += layer.size;
  }
  return whole.digest("hex");
}

/**
 * What each layer this operation hashed on a target hashed to (by path, lower case: FAT ignores
 * case). A layer's name is its content address, and the store's files are written only whole,
 * under a temporary name, read back and renamed in (putLayers), or removed (collectLayers), both
 * here, keeping this up to date; so within one operation, one open target under its lease, a
 * layer hashed once (found in the store, or just read back) is not read again by the slot's own
 * read-back or the switch's check of the entry it makes DEFAULT. Each operation opens its
 * target anew, and hashes every layer it relies on again.
 */
const hashedLayers = new WeakMap<BootTarget, Map<string, string>>();

function rememberLayerHash(target: BootTarget, rel: string, sha256: string): void {
  let known = hashedLayers.get(target);
  if (!known) hashedLayers.set(target, (known = new Map()));
  known.set(rel.toLowerCase(), sha256);
}

function forgetLayerHash(target: BootTarget, rel: string): void {
  hashedLayers.get(target)?.delete(rel.toLowerCase());
}

/**
 * What these layer paths hash to on the target (undefined: missing), each hashed at most once
 * per operation (see hashedLayers), with the `files` (not layers: always hashed) in the same look
 * (one round trip over ssh).
 */
export async function hashWithLayers(
  target: BootTarget,
  files: readonly string[],
  layerRels: readonly string[],
): Promise<{ files: (string | undefined)[]; layers: (string | undefined)[] }> {
  const known = hashedLayers.get(target);
  const unhashed = [...new Set(layerRels.filter((rel) => known?.get(rel.toLowerCase()) === undefined))];
  const all = [...files, ...unhashed];
  // Nothing to read: no look at all (a round trip over ssh).
  const hashed = all.length === 0 ? [] : await hashFiles(target, all);
  unhashed.forEach((rel, i) => {
    const sha256 = hashed[files.length + i];
    if (sha256 !== undefined) rememberLayerHash(target, rel, sha256);
  });
  const now = hashedLayers.get(target);
  return { files: hashed.slice(0, files.length), layers: layerRels.map((rel) => now?.get(rel.toLowerCase())) };
}

/** hashWithLayers of layers only. */
async function layerHashes(target: BootTarget, rels: readonly string[]): Promise<(string | undefined)[]> {
  return (await hashWithLayers(target, [], rels)).layers;
}

/**
 * Puts the layers of the local `initramfs` (its bytes are the layers in order) into the store:
 * a layer already there (by name, and by hash) is not sent again. Resolves with the records a
 * slot manifest keeps and the bytes sent. `scratch` is a local directory for the slices.
 */
export async function putLayers(
  target: BootTarget,
  initramfs: string,
  layers: readonly LayerSpec[],
  scratch: string,
  onProgress?: (done: number, total: number) => void,
): Promise<{ records: LayerRecord[]; sent: number; sha256: string }> {
  const whole = await checkLayersCover(initramfs, layers);
  const [present] = await listDirectories(target, [LAYER_DIR]);
  const have = new Set((present ?? []).map((n) => n.toLowerCase()));
  // The layers the store has a file for, hashed in one look (one round trip over ssh).
  const named = layers
    .map((l) => layerPath(l.sha256))
    .filter((rel) => have.has(path.posix.basename(rel).toLowerCase()));
  const found = new Map((await layerHashes(target, named)).map((sha256, i) => [named[i]!, sha256]));
  const total = layers.reduce((n, l) => n + l.size, 0);
  const records: LayerRecord[] = [];
  let offset = 0;
  let sent = 0;
  let done = 0;
  for (const layer of layers) {
    const rel = layerPath(layer.sha256);
    const there = found.get(rel) === layer.sha256;
    if (!there) {
      const slice = await sliceOf(initramfs, offset, layer, scratch);
      try {
        const got = await target.copyInAtomic(rel, slice, (d) => onProgress?.(done + d, total));
        if (got !== layer.sha256)
          throw new TargetError(`${target.describe()}: ${rel} read back as ${got}, expected ${layer.sha256}`);
        // Read back under its temporary name, renamed in by the target: this operation has hashed it.
        rememberLayerHash(target, rel, got);
      } finally {
        fs.rmSync(slice, { force: true });
      }
      sent += layer.size;
    }
    done += layer.size;
    onProgress?.(done, total);
    records.push({ path: rel, sha256: layer.sha256, size: layer.size });
    offset += layer.size;
  }
  return { records, sent, sha256: whole };
}

/** Why the layers would not make the initramfs they were recorded for, or undefined when each hashes as recorded. */
export async function layersProblem(target: BootTarget, records: readonly LayerRecord[]): Promise<string | undefined> {
  const hashes = await layerHashes(
    target,
    records.map((r) => r.path),
  );
  return layerHashesProblem(target, records, hashes);
}

/** layersProblem on hashes already taken (`hashes[i]`: what `records[i].path` hashes to now, undefined when missing). */
export function layerHashesProblem(
  target: BootTarget,
  records: readonly LayerRecord[],
  hashes: readonly (string | undefined)[],
): string | undefined {
  for (const [i, record] of records.entries()) {
    const now = hashes[i];
    if (now === undefined) return `layer ${record.path} does not exist on ${target.describe()}`;
    if (now !== record.sha256)
      return `layer ${record.path} hashes to ${now.slice(0, 12)}, not ${record.sha256.slice(0, 12)} as recorded`;
  }
  return undefined;
}

/**
 * Removes every file in the store that no layer in `needed` names (and leftovers of interrupted
 * writes). `needed`: the layers of every slot's manifest, and of a write in progress. Resolves
 * with the paths removed.
 */
export async function collectLayers(target: BootTarget, needed: Iterable<LayerRecord>): Promise<string[]> {
  const keep = new Set([...needed].map((r) => path.posix.basename(r.path).toLowerCase()));
  const removed: string[] = [];
  for (const name of await target.list(LAYER_DIR)) {
    if (keep.has(name.toLowerCase()) && !isTempName(name)) continue;
    await target.remove(`${LAYER_DIR}/${name}`);
    forgetLayerHash(target, `${LAYER_DIR}/${name}`);
    removed.push(`${LAYER_DIR}/${name}`);
  }
  return removed;
}
