/**
 * A process's scratch directory in the temporary directory, named `<prefix><pid>-<random>`: removed
 * on close and on exit or SIGINT/SIGTERM/SIGHUP (exit-cleanup.ts); one left by a process that was
 * killed (SIGKILL) is removed by the next open with the same prefix, once its pid is gone.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { onProcessExit, processAlive } from "./exit-cleanup";

export interface ScratchDir {
  dir: string;
  /** Removes it now (once) and forgets it. */
  drop: () => void;
}

/**
 * Makes the directory (`mode`, default 0700). With `empty` it is only ever removed when empty
 * (rmdir): a mount point must never be emptied through what may be mounted on it.
 * `beforeRemove` runs first when this process removes it (not for another's stale one).
 */
export async function openScratchDir(
  prefix: string,
  opts: { mode?: number; empty?: boolean; beforeRemove?: (dir: string) => void } = {},
): Promise<ScratchDir> {
  const remove = (dir: string) =>
    opts.empty ? fs.rmdirSync(dir) : fs.rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
  const tmp = os.tmpdir();
  const stale = new RegExp(`^${prefix}(\\d+)-`);
  for (const name of await fs.promises.readdir(tmp).catch(() => [] as string[])) {
    const pid = stale.exec(name)?.[1];
    if (pid === undefined || Number(pid) === process.pid || processAlive(Number(pid))) continue;
    try {
      remove(path.join(tmp, name));
    } catch {
      // another process removed it first, or (empty) it is not empty: left alone
    }
  }
  const dir = await fs.promises.mkdtemp(path.join(tmp, `${prefix}${process.pid}-`));
  await fs.promises.chmod(dir, opts.mode ?? 0o700);
  const drop = onProcessExit(() => {
    try {
      opts.beforeRemove?.(dir);
    } catch {
      // the directory goes all the same
    }
    try {
      remove(dir);
    } catch {
      // already gone
    }
  });
  return { dir, drop };
}
