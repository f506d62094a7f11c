/**
 * Deterministic compression of the packed archive. gzip is deflated in fixed blocks on every
 * core, with no file name and a zero mtime in its header (parallel-gzip.ts). zstd runs the zstd program multi-threaded: its output does not
 * depend on the number of threads (checked: -T1, -T2 and -T4 give the same bytes), so it uses
 * every core and stays reproducible. Node's own zstd stream is not used for it: with workers
 * enabled it ends before the workers' output is flushed (an empty or truncated file).
 */
import * as os from "node:os";
import { spawn } from "node:child_process";
import { Duplex } from "node:stream";
import { ParallelGzip } from "./parallel-gzip";

export type Compression = "gzip" | "zstd" | "none";

export const COMPRESSIONS: readonly Compression[] = ["gzip", "zstd", "none"];

export const ZSTD_LEVEL = 19;

function zstdProcess(): Duplex {
  const threads = Math.max(1, os.availableParallelism());
  const child = spawn("zstd", [`-${ZSTD_LEVEL}`, `-T${threads}`, "-q", "-c", "--no-progress"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d: string) => (stderr += d));
  const duplex = Duplex.from({ writable: child.stdin, readable: child.stdout });
  child.on("error", (err) => duplex.destroy(new Error(`cannot run zstd: ${err.message} (install Debian's zstd)`)));
  child.on("close", (code) => {
    if (code !== 0) duplex.destroy(new Error(`zstd exited with ${code}: ${stderr.trim()}`));
  });
  return duplex;
}

/** A stream that compresses what is written to it, or undefined for "none". */
export function compressor(kind: Compression): Duplex | undefined {
  switch (kind) {
    case "gzip":
      // The kernel's gunzip is the most widely built decompressor; level 9 is what
      // mkinitfs and frood use. Blocks are deflated on every core (parallel-gzip.ts).
      return new ParallelGzip(9);
    case "zstd":
      return zstdProcess();
    case "none":
      return undefined;
  }
}

/** The file name suffix the kernel-side tools expect. */
export function compressionSuffix(kind: Compression): string {
  return { gzip: ".gz", zstd: ".zst", none: "" }[kind];
}
