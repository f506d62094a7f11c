import { execa } from "execa";

/**
 * Runs an mtools command on a FAT filesystem inside an image file (`-i image@@offset`), never
 * mounting it. Timestamps are pinned (SOURCE_DATE_EPOCH = 1980-01-01, FAT's epoch, in UTC) so
 * the same operations give the same bytes; stdin is closed so a name clash can never wait for
 * an answer.
 */
export const FAT_EPOCH = 315532800;

export function mtoolsEnv(): Record<string, string> {
  // MTOOLS_LOWER_CASE: a short name left upper-case by a rename (mren drops the lower-case flag) lists as written.
  return { MTOOLS_SKIP_CHECK: "1", MTOOLS_LOWER_CASE: "1", SOURCE_DATE_EPOCH: String(FAT_EPOCH), TZ: "UTC", LC_ALL: "C" };
}

export interface MtoolsResult {
  exitCode: number;
  stdout: Buffer;
  stderr: string;
}

export async function mtools(
  command: "mcopy" | "mdir" | "mdel" | "mdeltree" | "mmd" | "mren" | "mmove" | "mattrib",
  image: string,
  offset: number,
  args: string[],
): Promise<MtoolsResult> {
  const result = await execa(command, ["-i", `${image}@@${offset}`, ...args], { encoding: "buffer", stripFinalNewline: false, maxBuffer: 1 << 30, reject: false, stdin: "ignore", env: mtoolsEnv() });
  if (result.code === "ENOENT") throw new Error(`${command} is missing: install Debian's mtools`);
  return { exitCode: result.exitCode ?? 1, stdout: Buffer.from(result.stdout), stderr: Buffer.from(result.stderr).toString("utf8") };
}

/** mtools' way of saying a name does not exist. */
export function isMtoolsNotFound(stderr: string): boolean {
  return /not found|no match/i.test(stderr);
}
