import * as os from "node:os";
import * as path from "node:path";

/**
 * Where ramroot keeps what it can make again (indexes, packages, images, keys, fixtures):
 * RAMROOT_CACHE, else ~/.cache/ramroot. `sub` names a directory inside it.
 */
export function cacheDir(sub: string): string {
  return path.join(process.env.RAMROOT_CACHE ?? path.join(os.homedir(), ".cache", "ramroot"), sub);
}
