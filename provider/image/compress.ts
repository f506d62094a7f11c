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

/**
 * The levels each compression accepts, and the default. zstd stops at 19: 20-22 need
 * `--ultra` and windows of up to 128 MiB that the kernel's decompressor must allocate at boot.
 * The defaults come from bench/RESULTS.md ("compression at each default level"): see README.
 */
export const COMPRESSION_LEVELS: Readonly<
  Record<Exclude<Compression, "none">, { min: number; max: number; default: number }>
> = {
  gzip: { min: 1, max: 9, default: 6 },
  zstd: { min: 1, max: 19, default: 9 },
};

/** The level a build uses: the one asked for, else the compression's default (none: 0). */
export function compressionLevelOf(kind: Compression, level: number | undefined): number {
  if (kind === "none") return 0;
  return level ?? COMPRESSION_LEVELS[kind].default;
}

function zstdProcess(level: number): Duplex {
  const threads = Math.max(1, os.availableParallelism());
  const child = spawn("zstd", [`-${level}`, `-T${threads}`, "-q", "-c", "--no-progress"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
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

/** A stream that compresses what is written to it at `level` (default: the kind's), or undefined for "none". */
export function compressor(kind: Compression, level?: number): Duplex | undefined {
  switch (kind) {
    case "gzip":
      // The kernel's gunzip is the most widely built decompressor. Blocks are deflated on
      // every core (parallel-gzip.ts).
      return new ParallelGzip(compressionLevelOf(kind, level));
    case "zstd":
      return zstdProcess(compressionLevelOf(kind, level));
    case "none":
      return undefined;
  }
}

/** The file name suffix the kernel-side tools expect. */
export function compressionSuffix(kind: Compression): string {
  return { gzip: ".gz", zstd: ".zst", none: "" }[kind];
}
