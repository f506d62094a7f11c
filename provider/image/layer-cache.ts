/**
 * Built layers of the initramfs, each a compressed newc archive in its own directory named by
 * the hash of exactly what shapes its bytes (layers.ts computes the keys). An image is the
 * concatenation of its layers: the kernel unpacks one archive after the other, later entries
 * replacing earlier ones (test/boot/initramfs-layers.test.ts). A layer carries files that go
 * beside the initramfs (the kernel) and notes (layer.json) next to its archive; every use
 * re-hashes the archive, so a damaged cache is rebuilt, never trusted.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { renameDurablySync } from "../atomic-file";
import { isMissing, sha256File } from "../file-hash";
import { markUsed } from "./cache-prune";

export interface LayerNotes {
  /** sha256 of the compressed archive */
  sha256: string;
  /** bytes of the uncompressed archive */
  rawSize: number;
  /** what the build of this layer warned about (carried to every image that uses it) */
  warnings: string[];
}

export interface StoredLayer extends LayerNotes {
  key: string;
  dir: string;
  /** the compressed archive */
  archive: string;
}

const ARCHIVE = "layer.cpio";
const NOTES = "layer.json";

export class LayerCache {
  constructor(readonly root: string) {}

  private dirOf(key: string): string {
    return path.join(this.root, key);
  }

  /** The layer stored under `key`, or undefined (never built, or its notes are unreadable). */
  get(key: string): StoredLayer | undefined {
    const dir = this.dirOf(key);
    let notes: LayerNotes;
    try {
      notes = JSON.parse(fs.readFileSync(path.join(dir, NOTES), "utf8")) as LayerNotes;
    } catch (err) {
      if (isMissing(err) || err instanceof SyntaxError) return undefined;
      throw err;
    }
    markUsed(path.join(dir, NOTES));
    return { ...notes, key, dir, archive: path.join(dir, ARCHIVE) };
  }

  /**
   * Builds a layer in a scratch directory and publishes it under `key` by renaming the
   * directory into place. `build` writes the uncompressed-then-compressed archive to the path
   * it is given, and any side files into the directory; it returns the raw size and warnings.
   */
  async put(
    key: string,
    build: (archive: string, dir: string) => Promise<{ rawSize: number; warnings: string[] }>,
  ): Promise<StoredLayer> {
    fs.mkdirSync(this.root, { recursive: true });
    const scratch = fs.mkdtempSync(path.join(this.root, `.build-${key.slice(0, 12)}-`));
    try {
      const archive = path.join(scratch, ARCHIVE);
      const { rawSize, warnings } = await build(archive, scratch);
      const sha256 = await sha256File(archive);
      if (sha256 === undefined) throw new Error(`layer ${key.slice(0, 12)}: the build wrote no archive`);
      const notes: LayerNotes = { sha256, rawSize, warnings };
      fs.writeFileSync(path.join(scratch, NOTES), JSON.stringify(notes, null, 2) + "\n");
      const dir = this.dirOf(key);
      try {
        renameDurablySync(scratch, dir);
      } catch (err) {
        // Another build published the same key first: same inputs, same bytes; keep theirs.
        const code = (err as NodeJS.ErrnoException).code;
        const theirs = code === "ENOTEMPTY" || code === "EEXIST" ? this.get(key) : undefined;
        if (!theirs) throw err;
        return theirs;
      }
      return { ...notes, key, dir, archive: path.join(dir, ARCHIVE) };
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  }

  /** Forgets a layer (its archive did not match its notes). */
  drop(key: string): void {
    fs.rmSync(this.dirOf(key), { recursive: true, force: true });
  }
}

/** A layer whose archive no longer matches the hash recorded when it was built. */
export class DamagedLayerError extends Error {
  constructor(
    readonly layer: StoredLayer,
    actual: string,
  ) {
    super(
      `layer ${layer.key.slice(0, 12)}: ${layer.archive} has sha256 ${actual.slice(0, 12)}, recorded ${layer.sha256.slice(0, 12)}`,
    );
  }
}

/**
 * Writes the layers one after the other into `out`, checking each against its recorded hash
 * on the way, in one read of each. Resolves to the sha256 and size of the whole; throws
 * DamagedLayerError (and removes `out`) when a layer does not match.
 */
export async function concatenateLayers(layers: StoredLayer[], out: string): Promise<{ sha256: string; size: number }> {
  const whole = createHash("sha256");
  const fd = fs.openSync(out, "w");
  let size = 0;
  try {
    for (const layer of layers) {
      const own = createHash("sha256");
      for await (const chunk of fs.createReadStream(layer.archive, { highWaterMark: 1 << 20 })) {
        const buf = chunk as Buffer;
        own.update(buf);
        whole.update(buf);
        fs.writeSync(fd, buf);
        size += buf.length;
      }
      const actual = own.digest("hex");
      if (actual !== layer.sha256) throw new DamagedLayerError(layer, actual);
    }
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(out, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  return { sha256: whole.digest("hex"), size };
}
