/**
 * Deterministic compression of the packed archive. gzip comes from zlib with no file name and
 * a zero mtime in its header; zstd from Node's bundled libzstd in multi-threaded mode, whose
 * output does not depend on how many workers run (checked: 1, 2 and 4 workers give the same
 * bytes), so it uses every core and stays reproducible.
 */
import * as os from "node:os";
import * as zlib from "node:zlib";
import type { Transform } from "node:stream";

export type Compression = "gzip" | "zstd" | "none";

export const COMPRESSIONS: readonly Compression[] = ["gzip", "zstd", "none"];

/** A stream that compresses what is written to it, or undefined for "none". */
export function compressor(kind: Compression): Transform | undefined {
  switch (kind) {
    case "gzip":
      // The kernel's gunzip is the most widely built decompressor; level 9 is what
      // mkinitfs and frood use.
      return zlib.createGzip({ level: 9, memLevel: 9 });
    case "zstd":
      return zlib.createZstdCompress({
        params: {
          [zlib.constants.ZSTD_c_compressionLevel]: 19,
          [zlib.constants.ZSTD_c_nbWorkers]: Math.max(1, os.availableParallelism()),
          [zlib.constants.ZSTD_c_checksumFlag]: 1,
        },
      });
    case "none":
      return undefined;
  }
}

/** The file name suffix the kernel-side tools expect. */
export function compressionSuffix(kind: Compression): string {
  return { gzip: ".gz", zstd: ".zst", none: "" }[kind];
}
