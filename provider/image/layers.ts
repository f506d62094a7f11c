/**
 * The layers an initramfs is made of, each keyed by the hash of exactly what shapes its bytes:
 *
 * - packages: the lock installed with its scripts, firmware trimmed, /boot taken out (the kernel
 *   and microcode are kept beside the archive). Shaped by the lock, the architecture, the
 *   repositories and keys written into /etc/apk, the kernel, microcode and firmware choices,
 *   the epoch, the compression and its level, and the builder format.
 * - overlay: what the overlay, inline files, hostname and services add or replace
 *   (overlay-layer.ts). Shaped by the package layer it sits on and those inputs.
 * - folded: when the overlay cannot be layered, the whole tree in one archive, keyed by the plan.
 *
 * An overlay edit repacks and recompresses only the overlay layer.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash, type Hash } from "node:crypto";
import { PassThrough, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { sha256Hex } from "../file-hash";
import { writeCpio, type CpioEntry, type CpioEntryType } from "./cpio-writer";
import { compressor, type Compression } from "./compress";
import { servicesOf } from "./image-config";
import { trimFirmware } from "./firmware";
import { copyUkiParts, EFI_STUB_FILE, OS_RELEASE_FILE, splitBoot } from "./boot-split";
import { BUILDER_FORMAT, canonicalJson, type ResolvedPlan } from "./plan";
import { collectEntries, installTree, layOverlay } from "./staging-tree";
import { overlayLayer, type OverlayLayer, type PackageIndex } from "./overlay-layer";
import type { LayerCache, StoredLayer } from "./layer-cache";
import { withInstalledTree } from "./installed-tree";
import { counter } from "../progress";

/** Files a base layer (packages or folded) keeps beside its archive. */
export const KERNEL_FILE = "vmlinuz";
export const MICROCODE_FILE = "microcode";
const PATHS_FILE = "paths.json";

type Progress = (message: string) => void;

export function packageLayerKey(resolved: ResolvedPlan): string {
  const { plan } = resolved;
  const o = plan.options;
  return sha256Hex(
    canonicalJson({
      layer: "packages",
      format: BUILDER_FORMAT,
      lock: plan.lock.map((p) => ({ name: p.name, version: p.version, checksum: p.checksum })),
      world: plan.world,
      arch: o.arch,
      repositories: o.repositories,
      keys: o.keys,
      kernel: o.kernel,
      microcode: o.microcode,
      firmware: o.firmware,
      epoch: o.epoch,
      compression: o.compression,
      compressionLevel: o.compressionLevel,
    }),
  );
}

export function overlayLayerKey(resolved: ResolvedPlan, packagesKey: string): string {
  const o = resolved.plan.options;
  return sha256Hex(
    canonicalJson({
      layer: "overlay",
      format: BUILDER_FORMAT,
      packages: packagesKey,
      overlay: resolved.plan.overlayDigest,
      hostname: o.hostname,
      services: o.services,
      epoch: o.epoch,
      compression: o.compression,
      compressionLevel: o.compressionLevel,
    }),
  );
}

export function foldedLayerKey(resolved: ResolvedPlan): string {
  return sha256Hex(canonicalJson({ layer: "folded", format: BUILDER_FORMAT, plan: resolved.plan.planId }));
}

/** Called with every archive the build packs, while the files its entries name still exist (tests read it back). */
export type OnPacked = (archive: { file: string; entries: CpioEntry[] }) => Promise<void> | void;

/**
 * Packs the entries as newc, compresses them and writes `out`; resolves to the archive's raw
 * size and the sha256 state over the bytes written (hashed on the way, so the file is not read
 * back to hash it).
 */
export async function packArchive(
  entries: CpioEntry[],
  out: string,
  compression: Compression,
  level: number,
  epoch: number,
  progress: Progress,
  onPacked?: OnPacked,
): Promise<{ rawSize: number; hash: Hash }> {
  const raw = new PassThrough({ highWaterMark: 1 << 20 });
  const c = compressor(compression, level);
  const hash = createHash("sha256");
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  const file = fs.createWriteStream(out);
  const done = c ? pipeline(raw, c, hashing, file) : pipeline(raw, hashing, file);
  const packed = counter(progress, "packed", undefined, { unit: "bytes", startQuiet: true });
  let last = 0;
  const total = await writeCpio(entries, raw, {
    epoch,
    onProgress: (bytes) => {
      packed.add(
        bytes - last,
        c ? `${(file.bytesWritten / (1 << 20)).toFixed(1)} MiB ${compression} written` : undefined,
      );
      last = bytes;
    },
  });
  raw.end();
  await done;
  if (total >= 8 << 20) packed.done(c ? `${(file.bytesWritten / (1 << 20)).toFixed(1)} MiB ${compression}` : undefined);
  await onPacked?.({ file: out, entries });
  return { rawSize: total, hash };
}

/** Installs into a scratch tree beside `dir`, hands it to `use`, and removes it. */
async function withStaging<T>(dir: string, use: (staging: string) => Promise<T>): Promise<T> {
  const staging = fs.mkdtempSync(`${dir}-root-`);
  try {
    return await use(staging);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/** Firmware trim and /boot split: the last steps on an installed tree before it is packed. */
function finishTree(staging: string, dir: string, resolved: ResolvedPlan, progress: Progress): void {
  const { config } = resolved;
  if (config.firmware) {
    const trim = trimFirmware(staging, config.firmware);
    progress(
      `firmware: kept ${trim.kept} files, dropped ${trim.dropped} (${(trim.droppedBytes / (1 << 20)).toFixed(1)} MiB)`,
    );
  }
  // splitBoot names them KERNEL_FILE and MICROCODE_FILE
  splitBoot(staging, dir, { kernelFlavor: config.kernel, microcode: config.microcode });
  copyUkiParts(staging, dir, config.arch);
}

function options(resolved: ResolvedPlan) {
  const o = resolved.plan.options;
  return { compression: resolved.config.compression, level: o.compressionLevel, epoch: o.epoch };
}

/** The package layer, from the cache or installed and packed now. */
export async function packageLayer(
  resolved: ResolvedPlan,
  cache: LayerCache,
  progress: Progress,
  onPacked?: OnPacked,
): Promise<StoredLayer> {
  const key = packageLayerKey(resolved);
  const hit = cache.get(key);
  if (hit) {
    progress(`package layer ${key.slice(0, 12)} is in the cache`);
    return hit;
  }
  const { compression, level, epoch } = options(resolved);
  const installCold = async (root: string, bootDir: string) => {
    const installed = await installTree(resolved, root, progress);
    finishTree(root, bootDir, resolved, progress);
    return installed;
  };
  return cache.put(key, (archive, dir) =>
    withInstalledTree(
      resolved,
      path.join(path.dirname(cache.root), "trees"),
      dir,
      progress,
      installCold,
      async (tree) => {
        for (const name of [KERNEL_FILE, MICROCODE_FILE, EFI_STUB_FILE, OS_RELEASE_FILE]) {
          const from = path.join(tree.bootDir, name);
          if (fs.existsSync(from)) fs.copyFileSync(from, path.join(dir, name));
        }
        const entries = collectEntries(tree.root, tree.manifest, new Set());
        fs.writeFileSync(path.join(dir, PATHS_FILE), JSON.stringify(pathIndexOf(entries)) + "\n");
        progress(`packing the package layer: ${entries.length} entries (${compression}${level ? ` -${level}` : ""})`);
        const packed = await packArchive(entries, archive, compression, level, epoch, progress, onPacked);
        return { ...packed, warnings: tree.warnings };
      },
    ),
  );
}

/** [path, type, hard-linked] per entry: what the overlay layer checks against. */
function pathIndexOf(entries: CpioEntry[]): [string, string, number][] {
  const links = new Map<string, number>();
  for (const e of entries) if (e.hardLinkKey) links.set(e.hardLinkKey, (links.get(e.hardLinkKey) ?? 0) + 1);
  return entries
    .map((e): [string, string, number] => [
      e.path,
      e.type,
      e.hardLinkKey && (links.get(e.hardLinkKey) ?? 0) > 1 ? 1 : 0,
    ])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

export function packageIndexOf(layer: StoredLayer): PackageIndex {
  const rows = JSON.parse(fs.readFileSync(path.join(layer.dir, PATHS_FILE), "utf8")) as [
    string,
    CpioEntryType,
    number,
  ][];
  return new Map(rows.map(([p, type, hardLinked]) => [p, { type, hardLinked: hardLinked === 1 }]));
}

/** What goes on top of the package layer, or why it cannot be layered. */
export function planOverlayLayer(resolved: ResolvedPlan, packages: StoredLayer): OverlayLayer {
  const { config } = resolved;
  return overlayLayer({
    overlay: resolved.overlayEntries,
    hostname: config.hostname,
    services: servicesOf(config),
    firmwareTrimmed: config.firmware !== undefined,
    packages: packageIndexOf(packages),
  });
}

/** The overlay layer, from the cache or packed now. */
export async function overlayArchive(
  resolved: ResolvedPlan,
  packages: StoredLayer,
  entries: CpioEntry[],
  cache: LayerCache,
  progress: Progress,
  onPacked?: OnPacked,
): Promise<StoredLayer> {
  const key = overlayLayerKey(resolved, packages.key);
  const hit = cache.get(key);
  if (hit) return hit;
  const { compression, level, epoch } = options(resolved);
  progress(`packing the overlay layer: ${entries.length} entries`);
  return cache.put(key, async (archive) => ({
    ...(await packArchive(entries, archive, compression, level, epoch, progress, onPacked)),
    warnings: [],
  }));
}

/** The whole tree in one archive (overlay laid on the installed packages), from the cache or built now. */
export async function foldedLayer(
  resolved: ResolvedPlan,
  cache: LayerCache,
  progress: Progress,
  onPacked?: OnPacked,
): Promise<StoredLayer> {
  const key = foldedLayerKey(resolved);
  const hit = cache.get(key);
  if (hit) return hit;
  const { compression, level, epoch } = options(resolved);
  return cache.put(key, (archive, dir) =>
    withStaging(dir, async (staging) => {
      const { manifest, warnings } = await installTree(resolved, staging, progress);
      const overlayPaths = layOverlay(staging, resolved, progress);
      finishTree(staging, dir, resolved, progress);
      const entries = collectEntries(staging, manifest, overlayPaths);
      progress(`packing one archive: ${entries.length} entries`);
      const packed = await packArchive(entries, archive, compression, level, epoch, progress, onPacked);
      return { ...packed, warnings };
    }),
  );
}
