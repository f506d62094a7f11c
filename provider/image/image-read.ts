/**
 * Reads an initramfs held in memory (an initramfs is tens to hundreds of MiB): its final tree,
 * its layers (initramfs-reader.ts), and which package owns which path (from the apk database it
 * holds). Where the bytes come from (a file, a slot on a boot target, the image cache) is
 * deploy/image-source.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { INSTALLED_DB, packageOwners, type ReadImage } from "./image-diff";
import { readImage, type ImageEntry } from "./initramfs-reader";
import { FieldError } from "../ramroot-error";

/** Reads an initramfs's bytes; `description` names it in errors. */
export async function readImageBytes(
  bytes: Buffer,
  description: string,
  onFile?: (entry: ImageEntry, content: Buffer) => void,
): Promise<ReadImage> {
  const read = await readImage(bytes, description, { keep: [INSTALLED_DB], ...(onFile ? { onFile } : {}) });
  const db = read.contents.get(INSTALLED_DB);
  return { entries: read.entries, layers: read.layers, packages: packageOwners(db?.toString("utf8")) };
}

/** The bytes of an initramfs file, or an error naming it. */
export function initramfsFileBytes(file: string): Promise<Buffer> {
  return fs.promises.readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw new FieldError("image", `${JSON.stringify(file)} cannot be read (${err.code ?? err.message})`);
  });
}

/** Reads an initramfs file on this machine (tests, the provider after a build). */
export async function readImageFile(file: string): Promise<ReadImage> {
  const resolved = path.resolve(file);
  return readImageBytes(await initramfsFileBytes(resolved), resolved);
}
