/**
 * Builds an image from a resolved plan: install the lock into a staging tree (scripts
 * honoured), lay the overlay on top, enable services, trim firmware, take /boot out, then pack
 * a deterministic newc archive and compress it. Artifacts land in a content-addressed cache
 * named by the planId, so a plan that was built before is not built again.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { renameDurablySync } from "../atomic-file";
import { pipeline } from "node:stream/promises";
import { cacheDir } from "../cache-dir";
import { sha256File, sha256Hex } from "../file-hash";
import { PassThrough } from "node:stream";
import { installPackages } from "../apk/install";
import { packageLocator } from "../apk/repository";
import type { FileManifest } from "../apk/expand";
import { writeCpio, type CpioEntry } from "./cpio-writer";
import { compressor, compressionSuffix } from "./compress";
import { servicesOf } from "./image-config";
import { enableServices } from "./services";
import { trimFirmware } from "./firmware";
import { splitBoot } from "./boot-split";
import { buildSbom } from "./sbom";
import { canonicalJson, type ImagePlan, type ResolvedPlan } from "./plan";
import type { OverlayEntry } from "./overlay";

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
  /** the directory holding them */
  dir: string;
  /** bytes of the uncompressed archive */
  archiveSize: number;
  /** package name -> version */
  packages: Record<string, string>;
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
}

/** RAMROOT_IMAGE_CACHE, else images/ in the ramroot cache. */
export function defaultImageCacheDir(): string {
  return process.env.RAMROOT_IMAGE_CACHE ?? cacheDir("images");
}

const MANIFEST = "image.json";

async function artifact(file: string): Promise<Artifact> {
  const sha256 = await sha256File(file);
  if (sha256 === undefined) throw new Error(`${file} vanished while the image was being built`);
  return { path: file, sha256, size: fs.statSync(file).size };
}

/** The image id: what the artifacts are, by name and content. */
export function imageIdOf(artifacts: Record<string, { sha256: string } | undefined>): string {
  const named = Object.fromEntries(Object.entries(artifacts).filter(([, a]) => a !== undefined).map(([k, a]) => [k, a!.sha256]));
  return sha256Hex(canonicalJson(named));
}

/** A cached build of the plan, re-hashed so a damaged cache is never trusted. */
export async function cachedImage(plan: Pick<ImagePlan, "planId">, cacheDir = defaultImageCacheDir()): Promise<ImageArtifacts | undefined> {
  const dir = path.join(cacheDir, plan.planId);
  const manifestPath = path.join(dir, MANIFEST);
  if (!fs.existsSync(manifestPath)) return undefined;
  const stored = JSON.parse(fs.readFileSync(manifestPath, "utf8")) as ImageArtifacts;
  for (const a of [stored.kernel, stored.initramfs, stored.microcode, stored.sbom]) {
    if (!a) continue;
    const file = path.join(dir, path.basename(a.path));
    if ((await sha256File(file)) !== a.sha256) return undefined;
  }
  const at = (a: Artifact | undefined) => (a ? { ...a, path: path.join(dir, path.basename(a.path)) } : undefined);
  return { ...stored, dir, kernel: at(stored.kernel), initramfs: at(stored.initramfs)!, microcode: at(stored.microcode), sbom: at(stored.sbom)!, built: false };
}

function writeOverlay(root: string, entries: OverlayEntry[]): void {
  for (const e of entries) {
    const dest = path.join(root, e.path);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    const existing = fs.lstatSync(dest, { throwIfNoEntry: false });
    if (e.type === "dir") {
      if (existing && !existing.isDirectory()) fs.rmSync(dest, { force: true });
      fs.mkdirSync(dest, { recursive: true });
      fs.chmodSync(dest, e.mode);
      continue;
    }
    if (existing) fs.rmSync(dest, { recursive: true, force: true });
    if (e.type === "symlink") fs.symlinkSync(e.linkTarget!, dest);
    else {
      if (Buffer.isBuffer(e.source)) fs.writeFileSync(dest, e.source);
      else fs.copyFileSync(e.source!, dest);
      fs.chmodSync(dest, e.mode);
    }
  }
}

/**
 * Every path of the staging tree as a cpio entry. Ownership and modes come from the package
 * metadata for files packages installed, root for the overlay, and what install scripts left
 * on disk for the rest; nothing else about the host (mtime, inode, user) reaches the archive.
 */
export function collectEntries(root: string, manifest: FileManifest, overlay: Set<string>): CpioEntry[] {
  const entries: CpioEntry[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel))) {
      const p = rel === "" ? name : `${rel}/${name}`;
      const abs = path.join(root, p);
      const st = fs.lstatSync(abs);
      const meta = overlay.has(p) ? undefined : manifest.get(p);
      const owner = overlay.has(p) ? { uid: 0, gid: 0 } : meta ? { uid: meta.uid, gid: meta.gid } : { uid: st.uid, gid: st.gid };
      const mode = meta && !overlay.has(p) ? meta.mode : st.mode & 0o7777;
      if (meta && (meta.type === "char" || meta.type === "block" || meta.type === "fifo")) {
        entries.push({ path: p, type: meta.type, mode, ...owner, rdevMajor: meta.devmajor, rdevMinor: meta.devminor });
      } else if (st.isDirectory()) {
        entries.push({ path: p, type: "dir", mode, ...owner });
        walk(p);
      } else if (st.isSymbolicLink()) {
        entries.push({ path: p, type: "symlink", mode: 0o777, ...owner, linkTarget: fs.readlinkSync(abs) });
      } else if (st.isFile()) {
        entries.push({ path: p, type: "file", mode, ...owner, source: abs, ...(st.nlink > 1 ? { hardLinkKey: String(st.ino) } : {}) });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const rdev = st.rdev;
        entries.push({ path: p, type: st.isCharacterDevice() ? "char" : "block", mode, ...owner, rdevMajor: Math.floor(rdev / 256) & 0xfff, rdevMinor: rdev & 0xff });
      } else if (st.isFIFO()) {
        entries.push({ path: p, type: "fifo", mode, ...owner });
      }
    }
  };
  walk("");
  // The kernel opens /dev/console for init's stdio before init runs: it must be in the archive.
  const have = new Set(entries.map((e) => e.path));
  if (!have.has("dev")) entries.push({ path: "dev", type: "dir", mode: 0o755, uid: 0, gid: 0 });
  if (!have.has("dev/console")) entries.push({ path: "dev/console", type: "char", mode: 0o600, uid: 0, gid: 0, rdevMajor: 5, rdevMinor: 1 });
  if (!have.has("dev/null")) entries.push({ path: "dev/null", type: "char", mode: 0o666, uid: 0, gid: 0, rdevMajor: 1, rdevMinor: 3 });
  return entries;
}

/** Packs the entries, compresses them and writes `out`; resolves to the archive's raw size. */
export async function packArchive(entries: CpioEntry[], out: string, compression: ResolvedPlan["config"]["compression"], epoch: number, progress: (m: string) => void): Promise<number> {
  const raw = new PassThrough({ highWaterMark: 1 << 20 });
  const c = compressor(compression);
  const done = c ? pipeline(raw, c, fs.createWriteStream(out)) : pipeline(raw, fs.createWriteStream(out));
  let lastReport = 0;
  const total = await writeCpio(entries, raw, {
    epoch,
    onProgress: (bytes) => {
      if (bytes - lastReport >= 64 << 20) {
        lastReport = bytes;
        progress(`packed ${(bytes / (1 << 20)).toFixed(0)} MiB`);
      }
    },
  });
  raw.end();
  await done;
  return total;
}

export async function buildImage(resolved: ResolvedPlan, opts: BuildOptions = {}): Promise<ImageArtifacts> {
  const progress = opts.onProgress ?? (() => {});
  const cacheDir = opts.cacheDir ?? defaultImageCacheDir();
  const { plan, config } = resolved;
  if (!opts.force) {
    const cached = await cachedImage(plan, cacheDir);
    if (cached) {
      progress(`image ${cached.imageId.slice(0, 12)} for plan ${plan.planId.slice(0, 12)} is in the cache`);
      return cached;
    }
  }
  fs.mkdirSync(cacheDir, { recursive: true });
  const work = fs.mkdtempSync(path.join(cacheDir, `.build-${plan.planId.slice(0, 12)}-`));
  const staging = path.join(work, "root");
  const outDir = path.join(work, "out");
  fs.mkdirSync(outDir);
  const warnings: string[] = [];
  try {
    progress(`installing ${resolved.lock.packages.length} packages`);
    const installed = await installPackages({
      root: staging,
      lock: resolved.lock,
      arch: config.arch,
      keys: resolved.keys,
      allowUntrusted: config.allowUntrusted,
      repositories: config.repositories,
      locate: packageLocator(resolved.repositories),
      onProgress: progress,
    });
    for (const s of installed.skippedScripts) warnings.push(`${s.package} ${s.script} not run: ${s.detail ?? "architecture differs"}`);
    for (const s of installed.failedScripts) warnings.push(`${s.package} ${s.script} failed: ${s.detail ?? ""}`);
    for (const w of warnings) progress(`WARNING: ${w}`);

    writeOverlay(staging, resolved.overlayEntries);
    const overlayPaths = new Set(resolved.overlayEntries.map((e) => e.path));
    if (config.hostname) {
      fs.mkdirSync(path.join(staging, "etc"), { recursive: true });
      fs.writeFileSync(path.join(staging, "etc", "hostname"), `${config.hostname}\n`);
      overlayPaths.add("etc/hostname");
    }
    const links = enableServices(staging, servicesOf(config));
    if (links.skipped.length > 0) progress(`default services not installed, skipped: ${links.skipped.join(" ")}`);
    for (const level of Object.keys(links.enabled)) overlayPaths.add(`etc/runlevels/${level}`);
    if (config.firmware) {
      const trim = trimFirmware(staging, config.firmware);
      progress(`firmware: kept ${trim.kept} files, dropped ${trim.dropped} (${(trim.droppedBytes / (1 << 20)).toFixed(1)} MiB)`);
    }
    const boot = splitBoot(staging, outDir, { kernelFlavor: config.kernel, microcode: config.microcode });

    const entries = collectEntries(staging, installed.manifest, overlayPaths);
    const initramfsName = `initramfs${compressionSuffix(config.compression)}`;
    progress(`packing ${entries.length} entries (${config.compression})`);
    const archiveSize = await packArchive(entries, path.join(outDir, initramfsName), config.compression, config.epoch, progress);

    const sbomFile = path.join(outDir, "sbom.spdx.json");
    fs.writeFileSync(sbomFile, JSON.stringify(buildSbom({ imageName: `ramroot-${plan.planId.slice(0, 12)}`, planId: plan.planId, epoch: config.epoch, packages: resolved.lock.packages }), null, 2) + "\n");

    const kernel = boot.kernel ? await artifact(boot.kernel) : undefined;
    const microcode = boot.microcode ? await artifact(boot.microcode) : undefined;
    const initramfs = await artifact(path.join(outDir, initramfsName));
    const sbom = await artifact(sbomFile);
    const imageId = imageIdOf({ kernel, initramfs, microcode });

    // Publish atomically: the finished directory is renamed into place.
    const dir = path.join(cacheDir, plan.planId);
    const at = (a: Artifact | undefined) => (a ? { ...a, path: path.join(dir, path.basename(a.path)) } : undefined);
    const result: ImageArtifacts = {
      planId: plan.planId, imageId, kernel: at(kernel), initramfs: at(initramfs)!, microcode: at(microcode), sbom: at(sbom)!,
      dir, archiveSize, packages: plan.packages, built: true, warnings,
    };
    fs.writeFileSync(path.join(outDir, MANIFEST), JSON.stringify(result, null, 2) + "\n");
    fs.writeFileSync(path.join(outDir, "plan.json"), JSON.stringify(plan, null, 2) + "\n");
    fs.rmSync(dir, { recursive: true, force: true });
    renameDurablySync(outDir, dir);
    progress(`image ${imageId.slice(0, 12)}: initramfs ${(initramfs.size / (1 << 20)).toFixed(1)} MiB (${(archiveSize / (1 << 20)).toFixed(1)} MiB unpacked)`);
    return result;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
