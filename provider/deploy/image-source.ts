/**
 * Where an image to read comes from: an initramfs file, a slot on a boot target (read through
 * the target, so local directories, disk images and ssh all work), or a plan in the local image
 * cache. Each is read whole into memory and handed to image/image-read.ts. It sits here, where
 * images and boot targets meet, so that image/ needs nothing from boot/.
 */
import * as fs from "node:fs";
import { createHash } from "node:crypto";
import { SLOT_FILES, SLOT_MANIFEST, type SlotManifest } from "../boot/slot";
import { withTarget, type BootTarget, type TargetSpec } from "../boot/target";
import { cachedImage, defaultImageCacheDir } from "../image/build";
import type { ReadImage } from "../image/image-diff";
import { initramfsFileBytes, readImageBytes } from "../image/image-read";
import type { ImageEntry } from "../image/initramfs-reader";
import { ConflictError, TargetError } from "../ramroot-error";

export type ImageSource =
  | { kind: "file"; path: string }
  | { kind: "slot"; target: TargetSpec; slot: string }
  /** `update`: the stack update that deployed it, named in descriptions */
  | { kind: "plan"; planId: string; cacheDir?: string; update?: number };

/** "initramfs.gz", "slot a on image disk.img", "plan 3f9c2a1b0c4d (image cache)". */
export function describeSource(source: ImageSource): string {
  switch (source.kind) {
    case "file":
      return source.path;
    case "slot":
      return `slot ${source.slot} (${source.target.kind === "ssh" ? `ssh ${source.target.user ? `${source.target.user}@` : ""}${source.target.host}:${source.target.path}` : `${source.target.kind} ${source.target.path}`})`;
    case "plan":
      return `${source.update !== undefined ? `update ${source.update}: ` : ""}plan ${source.planId.slice(0, 12)} (image cache)`;
  }
}

/**
 * A layered slot's initramfs: its manifest's layers read from the store and concatenated, each
 * checked against its record (and the whole against the manifest's initramfs). Undefined for a
 * whole-file slot (no layers in its manifest).
 */
async function layeredInitramfs(target: BootTarget, slot: string): Promise<Buffer | undefined> {
  const raw = await target.readFile(`${slot}/${SLOT_MANIFEST}`);
  let manifest: Partial<SlotManifest> | undefined;
  try {
    manifest = raw === undefined ? undefined : (JSON.parse(raw.toString("utf8")) as Partial<SlotManifest>);
  } catch {
    manifest = undefined;
  }
  const layers = manifest?.layers;
  if (layers === undefined || layers.length === 0) return undefined;
  const parts: Buffer[] = [];
  for (const layer of layers) {
    const data = await target.readFile(layer.path);
    const got = data === undefined ? undefined : createHash("sha256").update(data).digest("hex");
    if (data === undefined || got !== layer.sha256)
      throw new TargetError(
        `slot ${slot}: layer ${layer.path} on ${target.describe()} ${data === undefined ? "is missing" : `hashes to ${got?.slice(0, 12)}, not ${layer.sha256.slice(0, 12)}`}; the slot cannot be read back (see \`ramroot status\`)`,
      );
    parts.push(data);
  }
  const whole = Buffer.concat(parts);
  const want = manifest?.files?.initramfs?.sha256;
  if (want !== undefined && createHash("sha256").update(whole).digest("hex") !== want)
    throw new TargetError(
      `slot ${slot}: its layers on ${target.describe()} do not make the initramfs its manifest records`,
    );
  return whole;
}

/** The initramfs bytes of a source. */
export async function imageBytes(source: ImageSource): Promise<Buffer> {
  switch (source.kind) {
    case "file":
      return initramfsFileBytes(source.path);
    case "slot":
      return withTarget(source.target, async (target) => {
        const layered = await layeredInitramfs(target, source.slot);
        if (layered) return layered;
        const rel = `${source.slot}/${SLOT_FILES.initramfs}`;
        const data = await target.readFile(rel);
        if (data === undefined)
          throw new TargetError(
            `slot ${source.slot}: ${target.describe()} has no ${rel}; the slot is empty (see \`ramroot status\`)`,
          );
        return data;
      });
    case "plan": {
      const cached = await cachedImage({ planId: source.planId }, source.cacheDir ?? defaultImageCacheDir());
      if (!cached)
        throw new ConflictError(
          `plan ${source.planId.slice(0, 12)}: not in the local image cache (${source.cacheDir ?? defaultImageCacheDir()}); \`pulumi up\` at the commit that planned it rebuilds it`,
        );
      return fs.promises.readFile(cached.initramfs.path);
    }
  }
}

/** Reads a source: its final tree, its layers, and which package owns which path. */
export async function readImageSource(
  source: ImageSource,
  onFile?: (entry: ImageEntry, content: Buffer) => void,
): Promise<ReadImage> {
  return readImageBytes(await imageBytes(source), describeSource(source), onFile);
}
