/**
 * The package-lock.json of an owner's repository that installs ramroot from a packed tarball.
 * npm resolves a tarball's dependencies by asking the registry for each one's versions (it reads
 * a package's own shrinkwrap only when a registry says there is one), so without a lock such an
 * install needs the network. The lock places ramroot's own dependency tree, as ramroot's lock
 * pins it, beside it: npm then takes every package from its cache by integrity and asks the
 * registry nothing that is cached.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dev?: boolean;
  devOptional?: boolean;
  optional?: boolean;
  [key: string]: unknown;
}

export interface PackageLock {
  name?: string;
  lockfileVersion: number;
  requires?: boolean;
  packages: Record<string, LockEntry>;
}

/** What the lock needs of the tarball's package.json. */
export interface PackedManifest {
  name: string;
  version: string;
  license?: string;
  dependencies?: Record<string, string>;
  bin?: Record<string, string>;
  engines?: Record<string, string>;
}

function sameDependencies(a: Record<string, string> = {}, b: Record<string, string> = {}): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/** npm's integrity string for a file: sha512, base64. */
export function fileIntegrity(file: string): string {
  return `sha512-${createHash("sha512").update(fs.readFileSync(file)).digest("base64")}`;
}

/**
 * The owner's lock: their package (depending on ramroot by `spec`), the tarball as
 * node_modules/ramroot, and every package ramroot's lock needs outside development. Undefined
 * when ramroot's lock is not the one of the tarball's package.json (other dependencies): npm
 * then resolves them itself.
 */
export function ownerLock(args: {
  name: string;
  spec: string;
  integrity: string;
  packed: PackedManifest;
  ramrootLock: PackageLock;
}): PackageLock | undefined {
  const own = args.ramrootLock.packages[""];
  if (args.ramrootLock.lockfileVersion < 2 || !own) return undefined;
  if (!sameDependencies(own.dependencies as Record<string, string> | undefined, args.packed.dependencies))
    return undefined;
  const { packed } = args;
  const packages: Record<string, LockEntry> = {
    "": { name: args.name, dependencies: { [packed.name]: args.spec } },
    [`node_modules/${packed.name}`]: {
      version: packed.version,
      resolved: args.spec,
      integrity: args.integrity,
      ...(packed.license ? { license: packed.license } : {}),
      ...(packed.dependencies ? { dependencies: packed.dependencies } : {}),
      ...(packed.bin ? { bin: packed.bin } : {}),
      ...(packed.engines ? { engines: packed.engines } : {}),
    },
  };
  for (const [at, entry] of Object.entries(args.ramrootLock.packages)) {
    if (at === "" || entry.dev === true) continue;
    const { devOptional, ...rest } = entry;
    packages[at] = devOptional ? { ...rest, optional: true } : rest;
  }
  return { name: args.name, lockfileVersion: 3, requires: true, packages };
}
