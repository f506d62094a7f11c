import { spawn } from "node:child_process";
import { HostError } from "../ramroot-error";

/**
 * Runs an mtools command on a FAT filesystem inside an image file (`-i image@@offset`), never
 * mounting it, under an exclusive lock of the image file. Timestamps are pinned (SOURCE_DATE_EPOCH = 1980-01-01, FAT's epoch, in UTC) so
 * the same operations give the same bytes; stdin is closed so a name clash can never wait for
 * an answer.
 */
export const FAT_EPOCH = 315532800;

export function mtoolsEnv(): Record<string, string> {
  // MTOOLS_LOWER_CASE: a short name left upper-case by a rename (mren drops the lower-case flag) lists as written.
  return {
    MTOOLS_SKIP_CHECK: "1",
    MTOOLS_LOWER_CASE: "1",
    SOURCE_DATE_EPOCH: String(FAT_EPOCH),
    TZ: "UTC",
    LC_ALL: "C",
  };
}

export interface MtoolsResult {
  exitCode: number;
  stdout: Buffer;
  stderr: string;
}

/** How long an mtools command waits for another process's lock on the same image. */
export const LOCK_WAIT_SECONDS = 600;

export async function mtools(
  command: "mcopy" | "mdir" | "mdel" | "mdeltree" | "mmd" | "mren" | "mmove" | "mattrib",
  image: string,
  offset: number,
  args: string[],
): Promise<MtoolsResult> {
  // mtools does not lock image files: every command holds an exclusive flock of the image.
  // Spawned directly, output gathered in chunks and joined once: a preview runs ~20 of these,
  // and execa's per-call work and growing buffers cost more CPU than mtools itself (~45 ms to
  // read an 8 MiB kernel, against ~2 ms of mtools' own).
  const child = spawn(
    "flock",
    ["-w", String(LOCK_WAIT_SECONDS), image, command, "-i", `${image}@@${offset}`, ...args],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...mtoolsEnv() } },
  );
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
  child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once("error", (e: NodeJS.ErrnoException) =>
      reject(e.code === "ENOENT" ? new Error("flock is missing: install Debian's util-linux") : e),
    );
    child.once("close", (code) => resolve(code ?? 1));
  });
  const stderr = Buffer.concat(err).toString("utf8");
  if (exitCode !== 0 && /^flock: failed to execute/m.test(stderr)) {
    throw new HostError(`${command} is missing`, "install Debian's mtools");
  }
  return { exitCode, stdout: Buffer.concat(out), stderr };
}

/** mtools' way of saying a name does not exist. */
export function isMtoolsNotFound(stderr: string): boolean {
  return /not found|no match/i.test(stderr);
}
