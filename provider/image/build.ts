/**
 * Builds an image from a resolved plan, in these steps:
 *
 * 1. the image cache: a plan built before is not built again (artifacts named by the planId);
 * 2. the package layer (layers.ts): from the layer cache, or the lock fetched, verified and
 *    installed (scripts honoured), firmware trimmed, /boot taken out, packed and compressed;
 * 3. the overlay layer: what the overlay, inline files, hostname and services add, packed and
 *    compressed on its own; or, when the overlay cannot be layered (overlay-layer.ts), one
 *    folded archive of the whole tree instead of both;
 * 4. the initramfs: the layers concatenated (the kernel unpacks them in turn), hashed on the way;
 * 5. the SBOM and the image id; the finished directory is renamed into the cache.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { cacheDir, privateDir } from "../cache-dir";
import { renameDurablySync } from "../atomic-file";
import { isMissing, sha256File, sha256Hex } from "../file-hash";
import { compressionSuffix } from "./compress";
import { withArchiveCheck } from "./archive-check";
import { buildSbom } from "./sbom";
import { canonicalJson, type ImagePlan, type ResolvedPlan } from "./plan";
import { LayerCache, concatenateLayers, DamagedLayerError, type StoredLayer } from "./layer-cache";
import { cacheBoundFromEnv, markUsed, pruneImageCache, recordStateReference } from "./cache-prune";
import { efiStubPath, EFI_STUB_FILE, OS_RELEASE_FILE } from "./boot-split";
import { EFI_STUB_PACKAGE } from "./image-config";
import { writeUki } from "./uki";
import { assertUkiSignedBy, signUki } from "../secure-boot-signing";
import {
  foldedLayer,
  KERNEL_FILE,
  MICROCODE_FILE,
  overlayArchive,
  packageLayer,
  planOverlayLayer,
  type OnPacked,
} from "./layers";
import { foldedLayerKey, overlayLayerKey, packageLayerKey } from "./cache-keys";
import { FieldError, RamrootError } from "../ramroot-error";

export interface Artifact {
  /** absolute path in the image cache */
  path: string;
  sha256: string;
  size: number;
}

export interface ImageArtifacts {
  planId: string;
  /** sha256 over the artifacts' names and hashes */
  imageId: string;
  kernel?: Artifact;
  initramfs: Artifact;
  microcode?: Artifact;
  sbom: Artifact;
  /**
   * With `uki`: the image as one EFI executable (uki.ts). Made from the artifacts above (its stub
   * and os-release come from the initramfs' packages) and the command line with this image's id,
   * so it is not part of the image id.
   */
  uki?: Artifact;
  /** the directory holding them */
  dir: string;
  /** bytes of the uncompressed archive */
  archiveSize: number;
  /** package name -> version */
  packages: Record<string, string>;
  /** the layers the initramfs is the concatenation of, in order (size: compressed bytes; absent in images built before it was recorded) */
  layers: { key: string; sha256: string; rawSize: number; size?: number }[];
  /** whether this call built it (false: it came from the cache) */
  built: boolean;
  warnings: string[];
}

export interface BuildOptions {
  /** default ~/.cache/ramroot/images */
  cacheDir?: string;
  onProgress?: (message: string) => void;
  /** build even when the cache holds the plan */
  force?: boolean;
  /** every archive packed, with its entries, while the staging tree still exists (tests read it back) */
  onPacked?: OnPacked;
  /** the URN of the resource whose state will name this image: never pruned while it does (cache-prune.ts) */
  stateRef?: string;
  /** the cache's bound after the build; default RAMROOT_IMAGE_CACHE_MAX, else 8 GiB */
  maxCacheBytes?: number;
  /** read every archive back through cpio-stream and compare it with its entries (archive-check.ts); default RAMROOT_CHECK_ARCHIVES=1 */
  checkArchives?: boolean;
}

/** RAMROOT_IMAGE_CACHE, else images/ in the ramroot cache. */
export function defaultImageCacheDir(): string {
  return process.env.RAMROOT_IMAGE_CACHE ?? cacheDir("images");
}

const MANIFEST = "image.json";

async function artifact(file: string): Promise<Artifact> {
  const sha256 = await sha256File(file);
  if (sha256 === undefined) throw new RamrootError("input", `${file} vanished while the image was being built`);
  return { path: file, sha256, size: fs.statSync(file).size };
}

/** The image id: what the artifacts are, by name and content. */
export function imageIdOf(artifacts: Record<string, { sha256: string } | undefined>): string {
  const named = Object.fromEntries(
    Object.entries(artifacts)
      .filter(([, a]) => a !== undefined)
      .map(([k, a]) => [k, a!.sha256]),
  );
  return sha256Hex(canonicalJson(named));
}

/** A cached build of the plan, re-hashed so a damaged cache is never trusted. */
/**
 * The layers the image cache records for the initramfs at `initramfs` (its image directory's
 * manifest), with each layer's compressed size: what a slot writer cuts the file back into.
 * Undefined for a file outside the cache, or an image built before sizes were recorded.
 */
export function recordedLayersOf(initramfs: string): { sha256: string; size: number }[] | undefined {
  const manifestPath = path.join(path.dirname(initramfs), MANIFEST);
  if (!fs.existsSync(manifestPath)) return undefined;
  const stored = JSON.parse(fs.readFileSync(manifestPath, "utf8")) as Partial<ImageArtifacts>;
  if (path.basename(stored.initramfs?.path ?? "") !== path.basename(initramfs)) return undefined;
  const layers = stored.layers ?? [];
  if (layers.length === 0 || layers.some((l) => l.size === undefined)) return undefined;
  return layers.map((l) => ({ sha256: l.sha256, size: l.size as number }));
}

export async function cachedImage(
  plan: Pick<ImagePlan, "planId">,
  cacheDir = defaultImageCacheDir(),
): Promise<ImageArtifacts | undefined> {
  const dir = path.join(cacheDir, plan.planId);
  const manifestPath = path.join(dir, MANIFEST);
  if (!fs.existsSync(manifestPath)) return undefined;
  const stored = JSON.parse(fs.readFileSync(manifestPath, "utf8")) as ImageArtifacts;
  for (const a of [stored.kernel, stored.initramfs, stored.microcode, stored.sbom, stored.uki]) {
    if (!a) continue;
    const file = path.join(dir, path.basename(a.path));
    if ((await sha256File(file)) !== a.sha256) return undefined;
  }
  markUsed(manifestPath);
  const at = (a: Artifact | undefined) => (a ? { ...a, path: path.join(dir, path.basename(a.path)) } : undefined);
  return {
    ...stored,
    dir,
    kernel: at(stored.kernel),
    initramfs: at(stored.initramfs)!,
    microcode: at(stored.microcode),
    sbom: at(stored.sbom)!,
    uki: at(stored.uki),
    built: false,
  };
}

/** The image's layers, from the layer cache or built now: [packages, overlay], or [folded]. */
async function imageLayers(
  resolved: ResolvedPlan,
  cache: LayerCache,
  progress: (m: string) => void,
  onPacked?: OnPacked,
): Promise<StoredLayer[]> {
  const packages = await packageLayer(resolved, cache, progress, onPacked);
  const overlay = planOverlayLayer(resolved, packages);
  if ("fold" in overlay) {
    progress(`the overlay cannot be layered (${overlay.fold}): packing the image as one archive`);
    return [await foldedLayer(resolved, cache, progress, onPacked)];
  }
  if (overlay.skippedServices.length > 0)
    progress(`default services not installed, skipped: ${overlay.skippedServices.join(" ")}`);
  return [packages, await overlayArchive(resolved, packages, overlay.entries, cache, progress, onPacked)];
}

/** Concatenates the layers into `out`; a damaged cached layer is dropped and built again, once. */
async function writeInitramfs(
  resolved: ResolvedPlan,
  cache: LayerCache,
  out: string,
  progress: (m: string) => void,
  onPacked?: OnPacked,
): Promise<{ layers: StoredLayer[]; sha256: string; size: number }> {
  for (let attempt = 0; ; attempt++) {
    const layers = await imageLayers(resolved, cache, progress, onPacked);
    try {
      return { layers, ...(await concatenateLayers(layers, out)) };
    } catch (err) {
      const damaged =
        err instanceof DamagedLayerError
          ? err.layer
          : isMissing(err)
            ? layers.find((l) => !fs.existsSync(l.archive))
            : undefined;
      if (!damaged || attempt > 0) throw err;
      progress(`cached layer ${damaged.key.slice(0, 12)} is damaged (${(err as Error).message}): building it again`);
      cache.drop(damaged.key);
    }
  }
}

export async function buildImage(resolved: ResolvedPlan, opts: BuildOptions = {}): Promise<ImageArtifacts> {
  const progress = opts.onProgress ?? (() => {});
  const cacheDir = opts.cacheDir ?? defaultImageCacheDir();
  const { plan } = resolved;
  if (!opts.force) {
    const cached = await cachedImage(plan, cacheDir);
    if (cached) {
      progress(`image ${cached.imageId.slice(0, 12)} for plan ${plan.planId.slice(0, 12)} is in the cache`);
      if (opts.stateRef) recordStateReference(cacheDir, opts.stateRef, plan.planId);
      return cached;
    }
  }
  const image = await buildNew(resolved, cacheDir, opts, progress);
  if (opts.stateRef) recordStateReference(cacheDir, opts.stateRef, plan.planId);
  const pruned = pruneImageCache({
    cacheDir,
    maxBytes: opts.maxCacheBytes ?? cacheBoundFromEnv(),
    keep: [plan.planId],
  });
  if (pruned.removed.length > 0) {
    const mib = (n: number) => `${(n / (1 << 20)).toFixed(0)} MiB`;
    progress(
      `image cache over its bound: removed ${pruned.removed.length} least recently used entries (${pruned.removed.map((e) => `${e.kind} ${e.name.slice(0, 12)}`).join(", ")}), ${mib(pruned.bytesBefore)} -> ${mib(pruned.bytesAfter)}`,
    );
  }
  return image;
}

/** The image's os-release as the machine sees it: the overlay's when it writes one, else the packages'. */
function osReleaseOf(resolved: ResolvedPlan, layerDir: string): Buffer {
  for (const p of ["etc/os-release", "usr/lib/os-release"]) {
    const entry = resolved.overlayEntries.find((e) => e.path === p);
    if (entry?.type === "file" && entry.source !== undefined)
      return Buffer.isBuffer(entry.source) ? entry.source : fs.readFileSync(entry.source);
  }
  const packaged = path.join(layerDir, OS_RELEASE_FILE);
  if (fs.existsSync(packaged)) return fs.readFileSync(packaged);
  // An image without one (no alpine-release): what systemd assumes when os-release is missing.
  return Buffer.from('NAME="Linux"\nID=linux\nPRETTY_NAME="Linux"\n');
}

/**
 * The UKI: systemd's EFI stub from the image's systemd-efistub, the kernel, microcode then
 * initramfs, os-release, and the command line an entry booting this image carries
 * (rdinit=/sbin/init, the image's cmdline, ramroot.image=<imageId>).
 */
async function buildUki(
  resolved: ResolvedPlan,
  layerDir: string,
  image: { kernel?: Artifact; initramfs: Artifact; microcode?: Artifact; imageId: string },
  out: string,
): Promise<Artifact> {
  const { config } = resolved;
  const stub = path.join(layerDir, EFI_STUB_FILE);
  if (!fs.existsSync(stub))
    throw new FieldError(
      "uki",
      `the image has no /${efiStubPath(config.arch)}; install ${EFI_STUB_PACKAGE} (uki: true adds it; a package layer cached before it was needed lacks it: build again with --force)`,
    );
  if (!image.kernel) throw new FieldError("uki", "the image has no kernel to put in it");
  await writeUki(
    {
      arch: config.arch,
      stub,
      kernel: image.kernel.path,
      initrds: [...(image.microcode ? [image.microcode.path] : []), image.initramfs.path],
      cmdline: ["rdinit=/sbin/init", config.cmdline, `ramroot.image=${image.imageId}`]
        .filter((s) => s !== "")
        .join(" "),
      osRelease: osReleaseOf(resolved, layerDir),
    },
    out,
  );
  return artifact(out);
}

/**
 * uki.efi in `outDir`: built, then, with secureBoot, signed (the signature dated the image's
 * epoch, so the bytes repeat) and checked against the certificate before it is published.
 */
async function ukiOf(
  resolved: ResolvedPlan,
  layerDir: string,
  image: { kernel?: Artifact; initramfs: Artifact; microcode?: Artifact; imageId: string },
  outDir: string,
): Promise<Artifact> {
  const out = path.join(outDir, "uki.efi");
  if (!resolved.signer) return buildUki(resolved, layerDir, image, out);
  const unsigned = path.join(outDir, "uki.unsigned.efi");
  await buildUki(resolved, layerDir, image, unsigned);
  await signUki(unsigned, out, resolved.signer, resolved.config.epoch);
  fs.rmSync(unsigned);
  await assertUkiSignedBy(out, resolved.signer.certificate);
  return artifact(out);
}

async function buildNew(
  resolved: ResolvedPlan,
  cacheDir: string,
  opts: BuildOptions,
  progress: (m: string) => void,
): Promise<ImageArtifacts> {
  const { plan, config } = resolved;
  // Private: installed trees with setuid files, whatever packages ship (also outside ~/.cache).
  privateDir(cacheDir);
  const layerCache = new LayerCache(path.join(cacheDir, "layers"));
  if (opts.force) {
    const packagesKey = packageLayerKey(resolved);
    for (const key of [packagesKey, overlayLayerKey(resolved, packagesKey), foldedLayerKey(resolved)])
      layerCache.drop(key);
  }
  const outDir = fs.mkdtempSync(path.join(cacheDir, `.build-${plan.planId.slice(0, 12)}-`));
  try {
    const initramfsName = `initramfs${compressionSuffix(config.compression)}`;
    const initramfsPath = path.join(outDir, initramfsName);
    const onPacked = withArchiveCheck(opts.onPacked, progress, opts.checkArchives);
    const whole = await writeInitramfs(resolved, layerCache, initramfsPath, progress, onPacked);
    const initramfs: Artifact = { path: initramfsPath, sha256: whole.sha256, size: whole.size };
    const base = whole.layers[0]!;
    const beside = async (name: string, as: string) => {
      const from = path.join(base.dir, name);
      if (!fs.existsSync(from)) return undefined;
      fs.copyFileSync(from, path.join(outDir, as));
      return artifact(path.join(outDir, as));
    };
    const kernel = await beside(KERNEL_FILE, "vmlinuz");
    const microcode = await beside(MICROCODE_FILE, "microcode");

    const sbomFile = path.join(outDir, "sbom.spdx.json");
    fs.writeFileSync(
      sbomFile,
      JSON.stringify(
        buildSbom({
          imageName: `ramroot-${plan.planId.slice(0, 12)}`,
          planId: plan.planId,
          epoch: config.epoch,
          packages: resolved.lock.packages,
        }),
        null,
        2,
      ) + "\n",
    );
    const sbom = await artifact(sbomFile);
    const imageId = imageIdOf({ kernel, initramfs, microcode });
    const uki = config.uki
      ? await ukiOf(resolved, base.dir, { kernel, initramfs, microcode, imageId }, outDir)
      : undefined;
    const archiveSize = whole.layers.reduce((n, l) => n + l.rawSize, 0);
    const warnings = whole.layers.flatMap((l) => l.warnings);

    // Publish atomically: the finished directory is renamed into place.
    const dir = path.join(cacheDir, plan.planId);
    const at = (a: Artifact | undefined) => (a ? { ...a, path: path.join(dir, path.basename(a.path)) } : undefined);
    const result: ImageArtifacts = {
      planId: plan.planId,
      imageId,
      kernel: at(kernel),
      initramfs: at(initramfs)!,
      microcode: at(microcode),
      sbom: at(sbom)!,
      uki: at(uki),
      dir,
      archiveSize,
      packages: plan.packages,
      // size: the compressed archive's bytes, so a slot writer can cut the initramfs back into its layers
      layers: whole.layers.map((l) => ({
        key: l.key,
        sha256: l.sha256,
        rawSize: l.rawSize,
        size: fs.statSync(l.archive).size,
      })),
      built: true,
      warnings,
    };
    fs.writeFileSync(path.join(outDir, MANIFEST), JSON.stringify(result, null, 2) + "\n");
    fs.writeFileSync(path.join(outDir, "plan.json"), JSON.stringify(plan, null, 2) + "\n");
    fs.rmSync(dir, { recursive: true, force: true });
    renameDurablySync(outDir, dir);
    progress(
      `image ${imageId.slice(0, 12)}: initramfs ${(initramfs.size / (1 << 20)).toFixed(1)} MiB in ${whole.layers.length} layer(s) (${(archiveSize / (1 << 20)).toFixed(1)} MiB unpacked)`,
    );
    return result;
  } finally {
    fs.rmSync(outDir, { recursive: true, force: true });
  }
}
