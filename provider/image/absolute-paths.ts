/**
 * An image config's local paths (overlay, keys, local repositories, secureBoot's key and
 * certificate when they are paths, not PEM text) made absolute against a base
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

/** A program's Output (not a value yet): its fields are Outputs too, so it is left whole. */
const isOutput = (v: object) => "__pulumiOutput" in v;

export function absoluteImageConfig<
  T extends { overlay?: unknown; keys?: unknown; repositories?: unknown; secureBoot?: unknown },
>(config: T, baseDir: string): T {
  const abs = (p: unknown) => (typeof p === "string" ? absolute(p, baseDir) : p);
  // PEM text (never a path) is kept as it is.
  const pem = (v: unknown) => (typeof v === "string" && !v.includes("-----BEGIN ") && !v.includes("\n") ? abs(v) : v);
  const sb = config.secureBoot;
  return {
    ...config,
    ...(config.overlay !== undefined ? { overlay: abs(config.overlay) } : {}),
    ...(Array.isArray(config.keys) ? { keys: config.keys.map(abs) } : {}),
    ...(Array.isArray(config.repositories) ? { repositories: config.repositories.map(abs) } : {}),
    ...(sb !== null && typeof sb === "object" && !isOutput(sb)
      ? {
          secureBoot: {
            ...sb,
            privateKey: pem((sb as { privateKey?: unknown }).privateKey),
            certificate: pem((sb as { certificate?: unknown }).certificate),
          },
        }
      : {}),
  };
}
