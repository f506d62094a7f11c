/**
 * Loads a repository index the way apk reads /etc/apk/repositories entries:
 * - `https://` (or `http://`) and `file://` URLs and local directories use Alpine's layout,
 *   `<repo>/<arch>/APKINDEX.tar.gz`;
 * - a URL or path that names an `APKINDEX.tar.gz` file (ends in `.tar.gz`, or is a regular file) is read as is;
 * - a regular file that is not gzip is a plain, unsigned APKINDEX text, accepted only with allowUntrusted.
 * Remote indexes are cached under ~/.cache/ramroot/apk/indexes and revalidated with conditional
 * requests (ETag / If-Modified-Since); every copy, fresh or cached, is signature-checked before use.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import { writeFileAtomicSync } from "../atomic-file";
import { cacheDir } from "../cache-dir";
import { HttpError, httpGet } from "../http-get";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { readApkindex, type SkippedRecord } from "./apkindex";
import { EXPANSION_LIMITS } from "./gzip-members";
import { readIndexArchive } from "./index-archive";
import { packageNameProblem, packageVersionProblem } from "./package-name";
import { checkIndexFreshness, IndexDowngradeError } from "./index-freshness";
import type { PackageRecord } from "./package-record";
import type { RepositoryPackage } from "./package-record";
import { loadKeysDir } from "./signature";
import { InternalError, RamrootError, TrustError } from "../ramroot-error";

export interface LoadedRepository {
  /** The repository as configured (trailing slashes removed). */
  url: string;
  order: number;
  signer?: string;
  verified: boolean;
  packages: RepositoryPackage[];
  /** Records of the index that could not be used (reported through onProgress as warnings). */
  skipped: SkippedRecord[];
  description?: string;
  /** Where the index itself was read from; packages live beside it. */
  indexUrl: string;
}

export interface LoadRepositoryOptions {
  arch: string;
  keysDir?: string;
  keys?: Map<string, Buffer>;
  allowUntrusted?: boolean;
  cacheDir?: string;
  onProgress?: (msg: string) => void;
  /** Attempts for a remote index before giving up (default 3), with exponential backoff from `retryDelayMs` (default 250). */
  attempts?: number;
  retryDelayMs?: number;
  /** Accept a remote index older than one seen before, or offering a lower version (index-freshness.ts). */
  allowDowngrade?: boolean;
}

/** A repository that cannot be read or is not a repository: the `repositories` field is what to fix. */
export class RepositoryError extends RamrootError {
  constructor(
    readonly url: string,
    message: string,
  ) {
    super("input", message, undefined, "repositories");
  }
}

/** Default cache directory for indexes. */
export function indexCacheDir(): string {
  return cacheDir(path.join("apk", "indexes"));
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

function trimSlashes(s: string): string {
  return s.replace(/\/+$/, "");
}

/** Where to read the index from: a remote URL or a local file path (and the text to name it by). */
type IndexLocation = { kind: "remote"; url: string } | { kind: "local"; file: string; url: string };

function locateIndex(spec: string, arch: string): IndexLocation {
  const base = trimSlashes(spec);
  if (/^https?:\/\//i.test(base)) {
    const url = base.endsWith(".tar.gz") ? base : `${base}/${arch}/APKINDEX.tar.gz`;
    return { kind: "remote", url };
  }
  let local = base;
  let asUrl = (p: string) => p;
  if (/^file:\/\//i.test(base)) {
    try {
      local = fileURLToPath(base);
    } catch (err) {
      throw new RepositoryError(
        spec,
        `repository ${JSON.stringify(spec)} is not a valid file:// URL: ${(err as Error).message}`,
      );
    }
    asUrl = (p: string) => `${base}${p.slice(local.length)}`;
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(base)) {
    throw new RepositoryError(
      spec,
      `repository ${JSON.stringify(spec)} has an unsupported scheme; accepted: https://, http://, file://, a directory or an index file`,
    );
  }
  let stat: fs.Stats;
  try {
    stat = fs.statSync(local);
  } catch {
    throw new RepositoryError(spec, `repository ${JSON.stringify(spec)} cannot be reached: ${local} does not exist`);
  }
  if (stat.isFile()) return { kind: "local", file: local, url: asUrl(local) };
  const inArch = path.join(local, arch, "APKINDEX.tar.gz");
  const file = fs.existsSync(inArch) ? inArch : path.join(local, "APKINDEX.tar.gz");
  if (!fs.existsSync(file)) {
    throw new RepositoryError(spec, `repository ${JSON.stringify(spec)} cannot be reached: no index at ${inArch}`);
  }
  return { kind: "local", file, url: asUrl(file) };
}

interface CacheMeta {
  url: string;
  etag?: string;
  lastModified?: string;
}

function cachePaths(cacheDir: string, url: string): { data: string; meta: string } {
  const key = crypto.createHash("sha256").update(url).digest("hex").slice(0, 40);
  return { data: path.join(cacheDir, `${key}.tar.gz`), meta: path.join(cacheDir, `${key}.json`) };
}

function readCache(cacheDir: string, url: string): { data: Buffer; meta: CacheMeta } | undefined {
  const p = cachePaths(cacheDir, url);
  try {
    const meta = JSON.parse(fs.readFileSync(p.meta, "utf8")) as CacheMeta;
    if (meta.url !== url) return undefined;
    return { data: fs.readFileSync(p.data), meta };
  } catch {
    return undefined;
  }
}

function writeCache(cacheDir: string, meta: CacheMeta, data: Buffer): void {
  fs.mkdirSync(cacheDir, { recursive: true });
  const p = cachePaths(cacheDir, meta.url);
  writeFileAtomicSync(p.data, data);
  writeFileAtomicSync(p.meta, JSON.stringify(meta, null, 2) + "\n");
}

/** GETs an index with the cached validators (http-get.ts: timeout, retries, backoff); the cached bytes on 304. */
async function fetchIndex(
  url: string,
  cached: { data: Buffer; meta: CacheMeta } | undefined,
  opts: LoadRepositoryOptions,
): Promise<{ data: Buffer; meta: CacheMeta; fromCache: boolean }> {
  let result;
  try {
    result = await httpGet(url, {
      // an index, compressed, is never larger than it may expand to: a server sending more is refused
      maxBytes: EXPANSION_LIMITS.index,
      ...(opts.attempts !== undefined ? { attempts: opts.attempts } : {}),
      ...(opts.retryDelayMs !== undefined ? { retryDelayMs: opts.retryDelayMs } : {}),
      ...(cached
        ? {
            validators: {
              ...(cached.meta.etag ? { etag: cached.meta.etag } : {}),
              ...(cached.meta.lastModified ? { lastModified: cached.meta.lastModified } : {}),
            },
          }
        : {}),
      onRetry: (message) => opts.onProgress?.(`fetch ${message}`),
    });
  } catch (err) {
    if (err instanceof HttpError) throw new RepositoryError(url, err.message);
    throw err;
  }
  if (result.notModified && cached) return { data: cached.data, meta: cached.meta, fromCache: true };
  if (result.notModified) throw new RepositoryError(url, `${url}: answered 304 Not Modified without a cached copy`);
  return { data: result.body, meta: { url, ...result.validators }, fromCache: false };
}

function trustedKeys(opts: LoadRepositoryOptions): Map<string, Buffer> {
  if (opts.keys) return opts.keys;
  if (opts.keysDir) return loadKeysDir(opts.keysDir);
  return new Map();
}

interface ReadIndex {
  records: PackageRecord[];
  skipped: SkippedRecord[];
  signer?: string;
  verified: boolean;
  description?: string;
}

/** Verifies and parses an index's bytes (signed archive, or plain text when untrusted is allowed). */
function readIndexData(
  data: Buffer,
  source: string,
  keys: Map<string, Buffer>,
  opts: LoadRepositoryOptions,
): ReadIndex {
  let text: string;
  const result: Omit<ReadIndex, "records" | "skipped"> = { verified: false };
  if (data.subarray(0, 2).equals(GZIP_MAGIC)) {
    let archive;
    try {
      archive = readIndexArchive(data, { keys, allowUntrusted: opts.allowUntrusted, source });
    } catch (err) {
      if (err instanceof TrustError) throw err; // it names the index already, and its fix is the keys'
      throw new RepositoryError(
        source,
        (err as Error).message.startsWith(source) ? (err as Error).message : `${source}: ${(err as Error).message}`,
      );
    }
    text = archive.apkindexText;
    if (archive.signer !== undefined) result.signer = archive.signer;
    result.verified = archive.verified;
    if (archive.description !== undefined) result.description = archive.description;
  } else {
    if (!opts.allowUntrusted) {
      throw new TrustError(
        `${source}: is a plain, unsigned APKINDEX text`,
        "pass allowUntrusted (--allow-untrusted) to use it",
      );
    }
    text = data.toString("utf8");
  }
  return { ...result, ...readApkindex(text, source) };
}

/** Loads one repository's index; `order` is its position in the configured list (earlier wins ties). */
export async function loadRepository(
  spec: string,
  opts: LoadRepositoryOptions,
  order: number,
): Promise<LoadedRepository> {
  const url = trimSlashes(spec);
  const location = locateIndex(spec, opts.arch);
  const keys = trustedKeys(opts);
  let index: ReadIndex;
  if (location.kind === "remote") {
    const cacheDir = opts.cacheDir ?? indexCacheDir();
    const cached = readCache(cacheDir, location.url);
    opts.onProgress?.(`fetch ${location.url}`);
    let got = await fetchIndex(location.url, cached, opts);
    try {
      index = readIndexData(got.data, location.url, keys, opts);
    } catch (err) {
      if (!got.fromCache) throw err;
      // The server said "not modified" but the cached copy no longer verifies (a flipped byte):
      // it is dropped and the index fetched again, unconditionally.
      const paths = cachePaths(cacheDir, location.url);
      opts.onProgress?.(`cached index ${paths.data} is damaged (${(err as Error).message}): dropped, fetching again`);
      fs.rmSync(paths.data, { force: true });
      fs.rmSync(paths.meta, { force: true });
      got = await fetchIndex(location.url, undefined, opts);
      index = readIndexData(got.data, location.url, keys, opts);
    }
    // Replay/downgrade: refused unless the config allows it (then said in the progress).
    try {
      for (const note of checkIndexFreshness(cacheDir, location.url, index.records, {
        allowDowngrade: opts.allowDowngrade,
      }))
        opts.onProgress?.(`WARNING: ${note}`);
    } catch (err) {
      if (err instanceof IndexDowngradeError) throw new RepositoryError(location.url, err.message);
      throw err;
    }
    // Only a copy that verified (or was explicitly allowed) reaches the cache.
    if (!got.fromCache) writeCache(cacheDir, got.meta, got.data);
  } else {
    index = readIndexData(fs.readFileSync(location.file), location.url, keys, opts);
  }

  // A record that cannot be used costs only itself (apkindex.ts); the rest of the index is read.
  for (const s of index.skipped) opts.onProgress?.(`WARNING: ${s.message}`);
  const packages: RepositoryPackage[] = index.records.map((r) => ({ ...r, repository: url, repositoryOrder: order }));
  const loaded: LoadedRepository = {
    url,
    order,
    verified: index.verified,
    packages,
    skipped: index.skipped,
    indexUrl: location.url,
  };
  if (index.signer !== undefined) loaded.signer = index.signer;
  if (index.description !== undefined) loaded.description = index.description;
  return loaded;
}

/** Loads repositories in order; their packages keep that order for tie-breaking. */
export async function loadRepositories(
  specs: readonly string[],
  opts: LoadRepositoryOptions,
): Promise<LoadedRepository[]> {
  const repos: LoadedRepository[] = [];
  for (const [i, spec] of specs.entries()) repos.push(await loadRepository(spec, opts, i));
  return repos;
}

/** Where a package's .apk lives: beside the index, `<repo>/<arch>/<name>-<version>.apk`. */
export function packageUrl(repo: LoadedRepository, pkg: RepositoryPackage): string {
  const problem = packageNameProblem(pkg.name) ?? packageVersionProblem(pkg.name, pkg.version);
  if (problem) throw new RepositoryError(repo.url, `${repo.indexUrl}: ${problem}`);
  const dir = repo.indexUrl.slice(0, repo.indexUrl.lastIndexOf("/"));
  return `${dir}/${pkg.name}-${pkg.version}.apk`;
}

/** Where each package of these repositories is, for the installer. */
export function packageLocator(repos: readonly LoadedRepository[]): (pkg: RepositoryPackage) => string {
  const byUrl = new Map(repos.map((r) => [r.url, r]));
  return (pkg) => {
    const repo = byUrl.get(pkg.repository);
    if (!repo)
      throw new InternalError(`${pkg.name}-${pkg.version}: its repository ${pkg.repository} is not among those loaded`);
    return packageUrl(repo, pkg);
  };
}
