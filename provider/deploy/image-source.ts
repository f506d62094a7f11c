/**
 * Where an image to read comes from: an initramfs file, a slot on a boot target (read through
 * the target, so local directories, disk images and ssh all work), or a plan in the local image
 * cache. Each is read whole into memory and handed to image/image-read.ts. It sits here, where
 * images and boot targets meet, so that image/ needs nothing from boot/.
 */
import * as fs from "node:fs";
import { SLOT_FILES } from "../boot/slot";
import { withTarget, type TargetSpec } from "../boot/target";
import { cachedImage, defaultImageCacheDir } from "../image/build";
import type { ReadImage } from "../image/image-diff";
import { initramfsFileBytes, readImageBytes } from "../image/image-read";
import type { ImageEntry } from "../image/initramfs-reader";

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

/** The initramfs bytes of a source. */
export async function imageBytes(source: ImageSource): Promise<Buffer> {
  switch (source.kind) {
    case "file":
      return initramfsFileBytes(source.path);
    case "slot":
      return withTarget(source.target, async (target) => {
        const rel = `${source.slot}/${SLOT_FILES.initramfs}`;
        const data = await target.readFile(rel);
        if (data === undefined)
          throw new Error(
            `slot ${source.slot}: ${target.describe()} has no ${rel}; the slot is empty (see \`ramroot status\`)`,
          );
        return data;
      });
    case "plan": {
      const cached = await cachedImage({ planId: source.planId }, source.cacheDir ?? defaultImageCacheDir());
      if (!cached)
        throw new Error(
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
