import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/**
 * Makes `dir` (and its missing parents) and gives it mode 0700: a cache holds installed trees with
 * setuid files, private keys' neighbours and whatever packages ship, for its owner only.
 */
export function privateDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((fs.statSync(dir).mode & 0o777) !== 0o700) fs.chmodSync(dir, 0o700);
  return dir;
}

const madePrivate = new Set<string>();

/**
 * Where ramroot keeps what it can make again (indexes, packages, images, keys, fixtures):
 * RAMROOT_CACHE, else ~/.cache/ramroot, made private (0700) on first use. `sub` names a
 * directory inside it.
 */
export function cacheDir(sub: string): string {
  const base = process.env.RAMROOT_CACHE ?? path.join(os.homedir(), ".cache", "ramroot");
  if (!madePrivate.has(base)) {
    privateDir(base);
    madePrivate.add(base);
  }
  return path.join(base, sub);
}
