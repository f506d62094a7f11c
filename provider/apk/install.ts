import * as fs from "node:fs";
import { replaceFile, tempNameFor } from "../atomic-file";
import { cacheDir } from "../cache-dir";
import { httpGetToFile } from "../http-get";
import * as path from "node:path";
import { parseDependency } from "./dependency";
import { expandDataTar, type FileManifest, type InstalledDir } from "./expand";
import { writeApkDatabase, type InstalledPackage } from "./installed-db";
import {
  matchTriggers,
  prepareScriptRoot,
  runInstallScript,
  type ScriptEnvironment,
  type ScriptOutcome,
  type ScriptRunner,
} from "./install-scripts";
import { fdSource } from "./byte-source";
import { FileWriter } from "./file-writer";
import { readPackage, type PackageFile, type ReadPackageOptions } from "./package-file";
import { canApplyOwnership, readBackOwnership } from "./root-ownership";
import { fromHostId, toHostId, translateOwners } from "./sandbox-ids";
import type { RepositoryPackage } from "./package-record";
import { installOrder, type Lock } from "./solver";
import { TrustError } from "../ramroot-error";

export interface InstallOptions {
  /** The staging root to install into (created when missing). */
  root: string;
  lock: Lock;
  /** The image's architecture: the repository subdirectory and what decides whether scripts run. */
  arch: string;
  /** Trusted keys; also written to /etc/apk/keys. */
  keys: Map<string, Buffer>;
  allowUntrusted?: boolean;
  /** /etc/apk/repositories; none is written when not given (as `apk add --initdb` writes none). */
  repositories?: string[];
  /** Default ~/.cache/ramroot/apk/packages (RAMROOT_CACHE moves ~/.cache/ramroot). */
  cacheDir?: string;
  /** Default true. */
  runScripts?: boolean;
  scriptRunner?: ScriptRunner;
  onProgress?: (message: string) => void;
  /** Where a package's .apk is (URL or path): `packageLocator(repositories)` from repository.ts. */
  locate: (record: RepositoryPackage) => string;
  /**
   * As root: leave the owners on disk as the sandbox's host ids (sandbox-ids.ts), for a staging
   * tree the image is packed from (the packer reads them back), rather than translate them
   * back at the end so that the root is as apk leaves it (the default). Either way the root's
   * owners are sandbox host ids while the install runs.
   */
  sandboxOwners?: boolean;
}

export interface InstallResult {
  /** path -> uid/gid/mode/type/target of everything packages installed: what cpio ownership comes from. */
  manifest: FileManifest;
  /** Every script outcome in the order run. */
  scripts: ScriptOutcome[];
  /** Scripts not run (architecture differs): the tree is NOT what apk would leave; warn loudly. */
  skippedScripts: ScriptOutcome[];
  /** Scripts that exited non-zero (apk goes on and reports them, so do we). */
  failedScripts: ScriptOutcome[];
  /** Files not installed because another package owns them and this one does not replace it (apk's "trying to overwrite"). */
  refusedFiles: { package: string; path: string; owner: string }[];
  /**
   * apk's error count: packages flagged in the db (`f:s` a script failed, `f:f` files not
   * installed). `apk add` exits with it; the root and its database are complete all the same.
   */
  errors: number;
  installed: { name: string; version: string; checksum: string }[];
}

export function defaultPackageCacheDir(): string {
  return cacheDir(path.join("apk", "packages"));
}

/** The local file a package location names, or undefined for a URL. */
function localFile(location: string): string | undefined {
  if (/^https?:\/\//.test(location)) return undefined;
  return location.startsWith("file://") ? new URL(location).pathname : location;
}

/**
 * The package read from an open descriptor: verified now (only the signature and control members
 * held; the data member hashed a chunk at a time), its data streamed later from the same
 * descriptor. The descriptor keeps the very file that was verified even when another build
 * replaces or removes it meanwhile (the cache is shared, and one package signed by two keys has
 * one cache name); streaming the data closes it, `release` does when it is never streamed.
 */
function readFromFd(fd: number, opts: ReadPackageOptions): PackageFile {
  let open = true;
  const close = () => {
    if (open) fs.closeSync(fd);
    open = false;
  };
  try {
    return readPackage(fdSource(fd), { ...opts, onDone: close });
  } catch (err) {
    close();
    throw err;
  }
}

/**
 * A verified package for a lock entry. A package in a local repository is read where it is; a
 * remote one from the content-addressed cache (named by the hex of its index checksum,
 * re-verified on every use) or downloaded, verified, then cached (temporary file + rename).
 * Either way only the package's head is held in memory, never its data.
 */
export async function fetchVerifiedPackage(
  record: RepositoryPackage,
  opts: {
    keys: Map<string, Buffer>;
    allowUntrusted?: boolean;
    cacheDir: string;
    locate: (record: RepositoryPackage) => string;
  },
): Promise<PackageFile> {
  const location = opts.locate(record);
  const readOpts: ReadPackageOptions = {
    source: location,
    keys: opts.keys,
    expected: record,
    allowUntrusted: opts.allowUntrusted,
  };
  const checkSize = (size: number) => {
    // The index's S: is verified (signed index): a file of another size is refused before anything is inflated.
    if (record.size !== undefined && record.size > 0 && size !== record.size)
      throw new TrustError(
        `${location}: is ${size} bytes but the index says ${record.size} for ${record.name}-${record.version}; the download is corrupt or not the indexed package`,
        undefined,
        "repositories",
      );
  };
  const file = localFile(location);
  if (file !== undefined) {
    let fd: number;
    try {
      fd = fs.openSync(file, "r");
    } catch (err) {
      throw new TrustError(
        `${location}: cannot read the package: ${(err as Error).message}`,
        undefined,
        "repositories",
      );
    }
    try {
      checkSize(fs.fstatSync(fd).size);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    return readFromFd(fd, readOpts);
  }
  const key = record.checksum?.startsWith("Q1")
    ? Buffer.from(record.checksum.slice(2), "base64").toString("hex")
    : undefined;
  const cached = key ? path.join(opts.cacheDir, key) : undefined;
  if (cached) {
    let fd: number | undefined;
    try {
      fd = fs.openSync(cached, "r");
    } catch {
      // not cached yet (or removed by another build since): downloaded below
    }
    if (fd !== undefined) {
      try {
        return readFromFd(fd, { ...readOpts, source: cached });
      } catch {
        fs.rmSync(cached, { force: true }); // a damaged (or otherwise signed) cache entry is fetched again
      }
    }
  }
  // Downloaded to a temporary file beside the cache entry, verified through its descriptor, renamed into place.
  fs.mkdirSync(opts.cacheDir, { recursive: true });
  if (cached) {
    let pkg: PackageFile | undefined;
    try {
      // The index's S: bounds the download: a server sending more (an endless body) is refused at once.
      const maxBytes = record.size !== undefined && record.size > 0 ? { maxBytes: record.size } : {};
      await replaceFile(cached, (handle) => httpGetToFile(location, handle, maxBytes), {
        verify: async (temp, size) => {
          checkSize(size);
          pkg = readFromFd(fs.openSync(temp, "r"), readOpts);
        },
      });
    } catch (err) {
      pkg?.release();
      throw err;
    }
    return pkg!;
  }
  const temp = tempNameFor(path.join(opts.cacheDir, "download"));
  try {
    const handle = await fs.promises.open(temp, "wx+");
    let size: number;
    try {
      size = await httpGetToFile(location, handle);
    } finally {
      await handle.close();
    }
    checkSize(size);
    // The descriptor keeps the file after its name is gone.
    return readFromFd(fs.openSync(temp, "r"), readOpts);
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

function dependencyNames(specs: string[]): Set<string> {
  const names = new Set<string>();
  for (const spec of specs) {
    try {
      names.add(parseDependency(spec).name);
    } catch {
      names.add(spec);
    }
  }
  return names;
}

/**
 * Installs a resolved lock into `root` as `apk add --root` would: in apk's install order each
 * package is fetched and verified (index checksum, datahash, signature) before anything is
 * unpacked, its pre-install runs, its data is unpacked (ownership recorded in the manifest),
 * its post-install runs; then triggers fire for the directories the transaction touched, and
 * the apk database is written (installed, scripts.tar, triggers, world, arch, repositories,
 * keys). Scripts run chrooted when the image's architecture is the host's, otherwise they are
 * returned in `skippedScripts`.
 */
export async function installPackages(opts: InstallOptions): Promise<InstallResult> {
  const root = path.resolve(opts.root);
  fs.mkdirSync(root, { recursive: true });
  if (canApplyOwnership()) {
    // What the root holds (the root itself at least) is owned as scripts can change it.
    if (opts.sandboxOwners) translateOwners(root, toHostId, { depth: 0 });
    else translateOwners(root, toHostId);
  }
  try {
    return await installInto(root, opts);
  } finally {
    if (canApplyOwnership() && !opts.sandboxOwners) translateOwners(root, fromHostId);
  }
}

async function installInto(root: string, opts: InstallOptions): Promise<InstallResult> {
  const progress = opts.onProgress ?? (() => {});
  const cacheDir = opts.cacheDir ?? defaultPackageCacheDir();
  // The root as `apk add --initdb` lays it out (tmp, dev nodes, proc, lib/apk/exec, var/cache).
  prepareScriptRoot(root);
  const manifest: FileManifest = new Map();
  const scriptEnv: ScriptEnvironment = { root: root, targetArch: opts.arch, runner: opts.scriptRunner };
  const runScripts = opts.runScripts ?? true;
  const outcomes: ScriptOutcome[] = [];
  const installed: InstalledPackage[] = [];
  const origins = new Map<string, string | undefined>();

  const brokenScript = new Set<string>();
  const refusedFiles: InstallResult["refusedFiles"] = [];
  const run = async (pkg: PackageFile, script: "pre-install" | "post-install") => {
    const body = pkg.scripts.get(script);
    if (!body || !runScripts) return;
    progress(`${script} ${pkg.record.name}-${pkg.record.version}`);
    const outcome = await runInstallScript(scriptEnv, pkg.record, script, body, [pkg.record.version]);
    if (outcome.outcome === "failed") brokenScript.add(pkg.record.name);
    outcomes.push(outcome);
  };

  const dirsByPackage = new Map<string, InstalledDir[]>();

  const order = installOrder(opts.lock);
  // Verify everything before the first byte is unpacked.
  const files: PackageFile[] = [];
  // One writer creates the files of every package.
  const writer = new FileWriter();
  try {
    for (const entry of order) {
      progress(`fetch ${entry.name}-${entry.version}`);
      files.push(
        await fetchVerifiedPackage(entry.record, {
          keys: opts.keys,
          allowUntrusted: opts.allowUntrusted,
          cacheDir,
          locate: opts.locate,
        }),
      );
    }

    for (const pkg of files) {
      const { record } = pkg;
      if (record.installedSize === 0) {
        // apk installs a package of zero installed size (only directories) without opening it:
        // nothing unpacked, no script kept or run, no trigger registered, no directory owned.
        progress(`install ${record.name}-${record.version} (no files: not unpacked, as apk does)`);
        installed.push({ record, dirs: [], scripts: new Map(), triggers: [] });
        continue;
      }
      await run(pkg, "pre-install");
      progress(`unpack ${record.name}-${record.version}`);
      const replaces = dependencyNames(record.replaces);
      // Streamed: inflated, unpacked and re-hashed as it is read; only the entries being written are in memory.
      const dirs = await expandDataTar((sink) => pkg.streamDataTar(sink), {
        root: root,
        manifest,
        packageName: record.name,
        source: `${record.name}-${record.version}.apk`,
        mayOverwrite: (owner) =>
          replaces.has(owner) || (record.origin !== undefined && origins.get(owner) === record.origin),
        onRefusedOverwrite: (file, owner) => {
          const ownerRecord = files.find((f) => f.record.name === owner)?.record;
          progress(
            `ERROR: ${record.name}-${record.version}: trying to overwrite ${file} owned by ${owner}${ownerRecord ? `-${ownerRecord.version}` : ""}.`,
          );
          refusedFiles.push({ package: record.name, path: file, owner });
        },
        // Owners, modes (setuid/sticky included) and mtimes on disk before post-install, so what it changes stays.
        applyOwnership: canApplyOwnership(),
        writer,
      });
      origins.set(record.name, record.origin);
      dirsByPackage.set(record.name, dirs);
      installed.push({ record, dirs, scripts: pkg.scripts, triggers: pkg.triggers });
      await run(pkg, "post-install");
    }
  } finally {
    // A failure part way leaves later packages unread: their cache files are let go of.
    for (const pkg of files) pkg.release();
    writer.close();
  }

  if (runScripts) {
    const changed = [...dirsByPackage.values()].flat().map((d) => `/${d.name}`);
    for (const { record, scripts, triggers } of installed) {
      const body = scripts.get("trigger");
      if (!body || triggers.length === 0) continue;
      const matched = matchTriggers(triggers, changed);
      if (matched.length === 0) continue;
      progress(`trigger ${record.name}-${record.version}: ${matched.join(" ")}`);
      const outcome = await runInstallScript(scriptEnv, record, "trigger", body, matched);
      if (outcome.outcome === "failed") brokenScript.add(record.name);
      outcomes.push(outcome);
    }
  }
  // What the scripts changed (owners, modes) is what the image must carry.
  readBackOwnership(root, manifest);

  const refusedBy = new Set(refusedFiles.map((r) => r.package));
  for (const pkg of installed) {
    const broken = { files: refusedBy.has(pkg.record.name), script: brokenScript.has(pkg.record.name) };
    if (broken.files || broken.script) pkg.broken = broken;
  }
  writeApkDatabase(root, {
    packages: installed,
    world: opts.lock.world,
    arch: opts.arch,
    repositories: opts.repositories,
    keys: opts.keys,
    manifest,
  });
  return {
    manifest,
    scripts: outcomes,
    skippedScripts: outcomes.filter((o) => o.outcome === "skipped"),
    failedScripts: outcomes.filter((o) => o.outcome === "failed"),
    refusedFiles,
    errors: installed.filter((p) => p.broken).length,
    installed: files.map((f) => ({ name: f.record.name, version: f.record.version, checksum: f.checksum })),
  };
}
