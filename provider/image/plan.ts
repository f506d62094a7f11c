/**
 * The plan: everything that decides an image's bytes, computed without building anything.
 * It is cheap (indexes are cached and signature-checked, the overlay is hashed), runs during
 * `pulumi preview`, and its hash, the planId, names the image before it exists.
 */
import { sha256Hex } from "../file-hash";
import * as fs from "node:fs";
import * as path from "node:path";
import { nearestName } from "../similar-name";
import { alpineKeys } from "../apk/alpine-keys";
import { loadRepositories, type LoadedRepository } from "../apk/repository";
import { resolvePackages, type Lock } from "../apk/solver";
import { loadKeysDir, loadPublicKeyFile } from "../apk/signature";
import { parseInput } from "../input-error";
import { machineEntries } from "./machine-services";
import { imageConfigSchema, servicesOf, worldOf, type ImageConfig, type ImageConfigInput } from "./image-config";
import { compressionLevelOf } from "./compress";
import { certificateId, readUkiSigner, type UkiSigner } from "../secure-boot-signing";
import { inlineEntries, mergeOverlays, overlayDigest, overlaySummary, scanOverlay, type OverlayEntry } from "./overlay";
import { FieldError } from "../ramroot-error";

/**
 * Bumped whenever the builder's output for the same plan would change. 4: the initramfs is a
 * concatenation of layers (layers.ts); a compression level. 5: modules.dep made at build when
 * the packages leave it missing or incomplete (kernel-modules.ts). 6: the root laid out as
 * `apk add --initdb` does (dev nodes, tmp, proc, lib/apk/exec, var/cache), scripts in the
 * bubblewrap sandbox, device nodes and FIFOs from packages kept.
 */
export const BUILDER_FORMAT = 6;

export interface LockedPackage {
  name: string;
  version: string;
  checksum?: string;
  repository: string;
}

export interface ImagePlan {
  planId: string;
  /** package name -> version */
  packages: Record<string, string>;
  lock: LockedPackage[];
  world: string[];
  /** overlay path -> "file 644 <sha256>" / "dir 755" / "symlink 777 <sha256>" */
  overlay: Record<string, string>;
  overlayDigest: string;
  options: {
    release: string;
    arch: string;
    kernel: string;
    microcode: string;
    firmware: string[] | null;
    services: Record<string, string[]>;
    hostname: string | null;
    cmdline: string;
    /** a Unified Kernel Image is emitted too (absent otherwise, so other images' planIds stay as they were) */
    uki?: true;
    /** the UKI is signed: the sha256 of the certificate's DER (the key never enters the plan) */
    secureBoot?: { certificate: string };
    compression: string;
    /** the level used (the default when the config names none; 0 for none) */
    compressionLevel: number;
    epoch: number;
    repositories: string[];
    /** trusted key file -> sha256: they land in /etc/apk/keys */
    keys: Record<string, string>;
  };
}

/** What a build needs beyond the plan: the resolved packages and the overlay's sources. */
export interface ResolvedPlan {
  plan: ImagePlan;
  config: ImageConfig;
  lock: Lock;
  repositories: LoadedRepository[];
  keys: Map<string, Buffer>;
  overlayEntries: OverlayEntry[];
  /** with secureBoot: the key and certificate that sign the UKI, read and checked (never stored) */
  signer?: UkiSigner;
}

/** Reads the config with zod; a bad field throws naming the field, the value and what is accepted. */
export function parseImageConfig(input: unknown): ImageConfig {
  return parseInput(imageConfigSchema, input, "image config");
}

/** Trusted keys: the files and directories the config names, else Alpine's pinned keys. */
export async function trustedKeys(config: ImageConfig, baseDir: string): Promise<Map<string, Buffer>> {
  if (!config.keys || config.keys.length === 0) return alpineKeys(config.arch);
  const keys = new Map<string, Buffer>();
  for (const k of config.keys) {
    const p = path.resolve(baseDir, k);
    if (!fs.existsSync(p))
      throw new FieldError("keys", `"${k}" does not exist; expected a public key file or a directory of them`);
    // Private keys never become trusted keys, so they never reach etc/apk/keys of an image.
    if (fs.statSync(p).isDirectory()) for (const [name, pem] of loadKeysDir(p)) keys.set(name, pem);
    else keys.set(path.basename(p), loadPublicKeyFile(p, `keys: "${k}"`));
  }
  return keys;
}

/** JSON with sorted keys, so equal plans hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

export interface PlanOptions {
  /** relative paths in the config (overlay, keys, local repositories) resolve against this */
  baseDir: string;
  onProgress?: (message: string) => void;
}

/** Resolves the config into a plan: repositories read and verified, world solved, overlay hashed. */
export async function planImage(input: ImageConfigInput | ImageConfig, opts: PlanOptions): Promise<ResolvedPlan> {
  const config = parseImageConfig(input);
  // Read first: a wrong key or certificate is refused before the repositories are read.
  const signer = config.secureBoot ? readUkiSigner(config.secureBoot, opts.baseDir) : undefined;
  const repoSpecs = config.repositories.map((r) => (/^[a-z]+:\/\//.test(r) ? r : path.resolve(opts.baseDir, r)));
  const keys = await trustedKeys(config, opts.baseDir);
  const repositories = await loadRepositories(repoSpecs, {
    arch: config.arch,
    keys,
    allowUntrusted: config.allowUntrusted,
    allowDowngrade: config.allowDowngrade,
    onProgress: opts.onProgress,
  });
  const world = worldOf(config);
  let lock: Lock;
  try {
    lock = resolvePackages(
      world,
      repositories.flatMap((r) => r.packages),
      { arch: config.arch },
    );
  } catch (err) {
    const message = (err as Error).message;
    const searched = repositories.map((r) => `${r.url} (${r.packages.length} packages)`).join(", ");
    // A name no repository has is most often a typo: say which name it most likely meant.
    const names = new Set(repositories.flatMap((r) => r.packages.map((p) => p.name)));
    const hints = [...message.matchAll(/^\s*(\S+) \(no such package\)/gm)].flatMap(([, name]) => {
      const near = nearestName(name!, names);
      return near ? [`${name}: did you mean ${JSON.stringify(near)}?`] : [];
    });
    throw new FieldError(
      "packages",
      `${message}\nrepositories searched: ${searched}${hints.map((h) => `\n${h}`).join("")}`,
    );
  }
  const overlayEntries = mergeOverlays(
    machineEntries(
      config,
      lock.packages.map((p) => p.name),
    ),
    config.overlay ? scanOverlay(path.resolve(opts.baseDir, config.overlay)) : [],
    inlineEntries(config.files),
  );
  const services = servicesOf(config);
  const plan: Omit<ImagePlan, "planId"> = {
    packages: Object.fromEntries(lock.packages.map((p) => [p.name, p.version])),
    lock: lock.packages.map((p) => ({
      name: p.name,
      version: p.version,
      checksum: p.checksum,
      repository: p.repository,
    })),
    world: lock.world,
    overlay: overlaySummary(overlayEntries),
    overlayDigest: overlayDigest(overlayEntries),
    options: {
      release: config.release,
      arch: config.arch,
      kernel: config.kernel,
      microcode: config.microcode,
      firmware: config.firmware ?? null,
      services: Object.fromEntries(Object.entries(services).map(([level, list]) => [level, list.map((s) => s.name)])),
      hostname: config.hostname ?? null,
      cmdline: config.cmdline,
      uki: config.uki ? true : undefined,
      secureBoot: signer ? { certificate: certificateId(signer.certificate) } : undefined,
      compression: config.compression,
      compressionLevel: compressionLevelOf(config.compression, config.compressionLevel),
      epoch: config.epoch,
      repositories: config.repositories,
      keys: Object.fromEntries(
        [...keys.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, pem]) => [name, sha256Hex(pem)]),
      ),
    },
  };
  // The planId covers what decides the bytes: the lock's checksums, the world (/etc/apk/world:
  // one lock can be asked for in several ways), the overlay digest and the options (the
  // repositories as written in the config land in /etc/apk/repositories). Where
  // the overlay sits on this machine does not enter it; the kernel command line is not in the
  // image but in the boot entry, unless the image is a UKI too, which holds it.
  const planId = sha256Hex(
    canonicalJson({
      format: BUILDER_FORMAT,
      lock: plan.lock.map((p) => ({ name: p.name, version: p.version, checksum: p.checksum })),
      world: plan.world,
      overlayDigest: plan.overlayDigest,
      options: { ...plan.options, cmdline: plan.options.uki ? plan.options.cmdline : undefined },
    }),
  );
  return { plan: { planId, ...plan }, config, lock, repositories, keys, overlayEntries, signer };
}
