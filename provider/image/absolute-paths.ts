/**
 * An image config's local paths (overlay, keys, local repositories) made absolute against a base
 * directory, so every process that plans the config sees the same one. The program side
 * (components/resources.ts) and the provider (the AbSystem's inputs) both use it; a value that
 * is not text yet (an Output in a program) is left as it is. URLs keep their text, which is
 * also what /etc/apk/repositories holds. Plain code: a program loads it.
 */
import * as path from "node:path";

const URL_LIKE = /^[a-z]+:\/\//;

function absolute(p: string, baseDir: string): string {
  return URL_LIKE.test(p) || path.isAbsolute(p) ? p : path.resolve(baseDir, p);
}

export function absoluteImageConfig<T extends { overlay?: unknown; keys?: unknown; repositories?: unknown }>(
  config: T,
  baseDir: string,
): T {
  const abs = (p: unknown) => (typeof p === "string" ? absolute(p, baseDir) : p);
  return {
    ...config,
    ...(config.overlay !== undefined ? { overlay: abs(config.overlay) } : {}),
    ...(Array.isArray(config.keys) ? { keys: config.keys.map(abs) } : {}),
    ...(Array.isArray(config.repositories) ? { repositories: config.repositories.map(abs) } : {}),
  };
}
