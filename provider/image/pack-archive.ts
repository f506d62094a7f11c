/**
 * One layer's archive file: the entries packed as newc (cpio-writer.ts), compressed
 * (compress.ts), written to a file and hashed on the way. Kept apart from the layer logic
 * (layers.ts) so that packing loads neither the installer nor the config schema
 * (bench/pack-tree.ts packs a tree with this module alone).
 */
import * as fs from "node:fs";
import { createHash, type Hash } from "node:crypto";
import { PassThrough, Transform } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import { writeCpio, type CpioEntry } from "./cpio-writer";
import { compressor, type Compression } from "./compress";
import { counter } from "../progress";

/** Called with every archive the build packs, while the files its entries name still exist (tests read it back). */
export type OnPacked = (archive: { file: string; entries: CpioEntry[] }) => Promise<void> | void;

/** Uncompressed chunks waiting to be written at most (the writer reuses a chunk once it is written). */
const FILE_BUFFER = 4 << 20;

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
  progress: (message: string) => void,
  onPacked?: OnPacked,
): Promise<{ rawSize: number; hash: Hash }> {
  const c = compressor(compression, level);
  const hash = createHash("sha256");
  const packed = counter(progress, "packed", undefined, { unit: "bytes", startQuiet: true });
  let last = 0;
  let total: number;
  if (c) {
    const raw = new PassThrough({ highWaterMark: 1 << 20 });
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    const file = fs.createWriteStream(out);
    const done = pipeline(raw, c, hashing, file);
    try {
      total = await writeCpio(entries, raw, {
        epoch,
        onProgress: (bytes) => {
          packed.add(bytes - last, `${(file.bytesWritten / (1 << 20)).toFixed(1)} MiB ${compression} written`);
          last = bytes;
        },
      });
      raw.end();
    } catch (err) {
      raw.destroy(err as Error);
      await done.catch(() => {});
      throw err;
    }
    await done;
    if (total >= 8 << 20) packed.done(`${(file.bytesWritten / (1 << 20)).toFixed(1)} MiB ${compression}`);
  } else {
    // Uncompressed, the chunks go straight to the file, hashed on the way, and each comes back
    // to the writer once written: no stream in between, and no new chunk per MiB
    // (bench/analysis.md, "newc writer").
    const file = fs.createWriteStream(out, { highWaterMark: FILE_BUFFER });
    try {
      total = await writeCpio(entries, file, {
        epoch,
        onChunk: (chunk) => hash.update(chunk),
        reuseChunks: true,
        onProgress: (bytes) => {
          packed.add(bytes - last);
          last = bytes;
        },
      });
      file.end();
    } catch (err) {
      file.destroy();
      await finished(file).catch(() => {});
      throw err;
    }
    await finished(file);
    if (total >= 8 << 20) packed.done();
  }
  await onPacked?.({ file: out, entries });
  return { rawSize: total, hash };
}
