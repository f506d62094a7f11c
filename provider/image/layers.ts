/**
 * The layers an initramfs is made of, each keyed by the hash of exactly what shapes its bytes
 * (cache-keys.ts):
 *
 * - packages: the lock installed with its scripts, firmware trimmed, /boot taken out (the kernel
 *   and microcode are kept beside the archive). Shaped by the lock, the architecture, the
 *   repositories and keys written into /etc/apk, the kernel, microcode and firmware choices,
 *   how the build installs (script failures allowed, owners applied), the epoch, the
 *   compression and its level, and the builder format.
 * - overlay: what the overlay, inline files, hostname and services add or replace
 *   (overlay-layer.ts). Shaped by the package layer it sits on and those inputs.
 * - folded: when the overlay cannot be layered, the whole tree in one archive, keyed by the plan.
 *
 * An overlay edit repacks and recompresses only the overlay layer.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { CpioEntry, CpioEntryType } from "./cpio-writer";
import { packArchive, type OnPacked } from "./pack-archive";
import { servicesOf } from "./image-config";
import { trimFirmware } from "./firmware";
import { copyUkiParts, splitBoot } from "./boot-split";
import type { ResolvedPlan } from "./plan";
import { BESIDE_LAYER, foldedLayerKey, overlayLayerKey, packageLayerKey } from "./cache-keys";
import { installTree, layOverlay } from "./staging-tree";
import { collectEntries } from "./tree-entries";
import { overlayLayer, type OverlayLayer, type PackageIndex } from "./overlay-layer";
import type { LayerCache, StoredLayer } from "./layer-cache";
import { withInstalledTree } from "./installed-tree";

export type { OnPacked };

/** Files a base layer (packages or folded) keeps beside its archive. */
export const KERNEL_FILE = "vmlinuz";
export const MICROCODE_FILE = "microcode";
const PATHS_FILE = "paths.json";

type Progress = (message: string) => void;

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
        for (const name of BESIDE_LAYER) {
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
