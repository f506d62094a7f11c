/**
 * Built layers of the initramfs, each a compressed newc archive in its own directory named by
 * the hash of exactly what shapes its bytes (layers.ts computes the keys). An image is the
 * concatenation of its layers: the kernel unpacks one archive after the other, later entries
 * replacing earlier ones (test/boot/initramfs-layers.test.ts). A layer carries files that go
 * beside the initramfs (the kernel) and notes (layer.json) next to its archive; every use
 * re-hashes the archive, so a damaged cache is rebuilt, never trusted. The one exception is the
 * build that wrote it, in the same process, while the file is unchanged since (its hash state
 * from the write is used: WrittenArchive).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash, type Hash } from "node:crypto";
import { renameDurablySync } from "../atomic-file";
import { isMissing, sha256File } from "../file-hash";
import { readChunks } from "../file-chunks";
import { markUsed } from "./cache-prune";
import { InternalError } from "../ramroot-error";

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
  /** when this process wrote the archive: the sha256 state over its bytes, and the file as it was then */
  written?: WrittenArchive;
}

/** What a layer's build hashed as it wrote the archive, so the archive need not be read again. */
export interface WrittenArchive {
  /** sha256 over exactly the archive's bytes, not finished (copy() it) */
  hash: Hash;
  /** inode, size and mtime of the archive right after it was written */
  stamp: string;
}

/** The file's identity and last change: a rewrite or truncation changes it. */
function stampOf(file: string): string {
  const st = fs.statSync(file, { bigint: true });
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** The hash state of a layer written by this process, when its archive is unchanged since. */
function writtenHash(layer: StoredLayer): Hash | undefined {
  if (!layer.written) return undefined;
  try {
    return stampOf(layer.archive) === layer.written.stamp ? layer.written.hash : undefined;
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
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
   * it is given, and any side files into the directory; it returns the raw size and warnings,
   * and the sha256 state over the archive's bytes when it hashed them as it wrote them (the
   * archive is then not read again, here nor when it is concatenated while unchanged).
   */
  async put(
    key: string,
    build: (archive: string, dir: string) => Promise<{ rawSize: number; warnings: string[]; hash?: Hash }>,
  ): Promise<StoredLayer> {
    fs.mkdirSync(this.root, { recursive: true });
    const scratch = fs.mkdtempSync(path.join(this.root, `.build-${key.slice(0, 12)}-`));
    try {
      const archive = path.join(scratch, ARCHIVE);
      const { rawSize, warnings, hash } = await build(archive, scratch);
      if (!fs.existsSync(archive)) throw new InternalError(`layer ${key.slice(0, 12)}: the build wrote no archive`);
      const written = hash ? { hash, stamp: stampOf(archive) } : undefined;
      const sha256 = hash ? hash.copy().digest("hex") : await sha256File(archive);
      if (sha256 === undefined) throw new InternalError(`layer ${key.slice(0, 12)}: the build wrote no archive`);
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
      return { ...notes, key, dir, archive: path.join(dir, ARCHIVE), ...(written ? { written } : {}) };
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
 *
 * The first layer's bytes start the whole's hash, so one pass hashes both (a copy of the state
 * at its end is its own sha256). When this process wrote the first layer and it is unchanged
 * since (writtenHash), its hash state is taken as it is and the file copied by the kernel
 * (copy_file_range/sendfile): the package layer of a package change, ~100 MiB, is neither read
 * nor hashed a second time.
 */
export async function concatenateLayers(layers: StoredLayer[], out: string): Promise<{ sha256: string; size: number }> {
  const [first, ...rest] = layers;
  let whole = createHash("sha256");
  let size = 0;
  let fd: number | undefined;
  try {
    const known = first ? writtenHash(first) : undefined;
    if (first && known) {
      fs.copyFileSync(first.archive, out);
      whole = known.copy();
      fd = fs.openSync(out, "r+");
      size = fs.fstatSync(fd).size;
    } else fd = fs.openSync(out, "w");
    const output = fd;
    for (const layer of known ? rest : layers) {
      const own = layer === first ? undefined : createHash("sha256");
      await readChunks(layer.archive, (chunk) => {
        own?.update(chunk);
        whole.update(chunk);
        for (let at = 0; at < chunk.length;) at += fs.writeSync(output, chunk, at, chunk.length - at, size + at);
        size += chunk.length;
      });
      const actual = (own ?? whole.copy()).digest("hex");
      if (actual !== layer.sha256) throw new DamagedLayerError(layer, actual);
    }
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(out, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  return { sha256: whole.digest("hex"), size };
}
