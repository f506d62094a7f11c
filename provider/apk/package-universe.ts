/**
 * The package universe a solve works over: the repositories' packages (and the installed
 * database's), each known once by its checksum as apk knows them (apk_db_pkg_add), parsed into
 * dependencies, provides and install_if rules, and indexed by every name they provide. What a
 * package holds when selected, and how a dependency relates to one (apk_dep_analyze), are
 * answered here for the search, the changeset and the failure report alike.
 */
import type { PackageRecord, RepositoryPackage } from "./package-record";
import { type Dependency, type Provide, dependencySatisfiedBy, parseDependency, parseProvide } from "./dependency";

export interface Pkg {
  id: number;
  rec: RepositoryPackage;
  name: string;
  version: string;
  depends: Dependency[];
  provides: Provide[];
  installIf: Dependency[];
  /** Why the package can never be selected (unknown upper-case field, malformed dependency). */
  uninstallable?: string;
  /** Tags of the repositories that hold it ("" for an untagged one). */
  tags: Set<string>;
  /** In the installed database. */
  installed: boolean;
  /** Available from a repository (an installed package may be in none). */
  inRepo: boolean;
}

export interface Provider {
  pkg: Pkg;
  /** The version the name is provided at; undefined for an unversioned (virtual) provide. */
  version: string | undefined;
}

/** The packages of the repositories, indexed by every name they provide. */
export class PackageUniverse {
  readonly pkgs: Pkg[] = [];
  readonly providers = new Map<string, Provider[]>();
  readonly installIfByName = new Map<string, Pkg[]>();
  /** Per name, the names of the packages that depend on it, in the order they were read (apk's rdepends). */
  readonly rdepends = new Map<string, string[]>();

  constructor(
    packages: readonly RepositoryPackage[],
    arch?: string,
    installed: readonly PackageRecord[] = [],
    installedTags: ReadonlyMap<string, string> = new Map(),
  ) {
    const ordered = packages
      .map((rec, i) => ({ rec, i }))
      .filter(({ rec }) => arch === undefined || rec.arch === undefined || rec.arch === arch || rec.arch === "noarch")
      .sort((a, b) => a.rec.repositoryOrder - b.rec.repositoryOrder || a.i - b.i);
    for (const { rec } of ordered) {
      // apk knows a package by its checksum (apk_db_pkg_add): a record whose checksum is already
      // known is the same package, whatever its name says, and the first one read (the earliest
      // repository) serves it. The checksum is compared decoded, so two texts that decode to the
      // same bytes (base64 differing only in padding bits) are one package too.
      const key =
        rec.checksum !== undefined ? `C\0${checksumIdentity(rec.checksum)}` : `P\0${rec.name}\0${rec.version}`;
      const known = this.byKey.get(key);
      if (known) {
        known.tags.add(rec.repositoryTag ?? "");
        continue;
      }
      this.byKey.set(key, this.add(rec, { installed: false, inRepo: true }));
    }
    // The installed database: a record whose checksum a repository has is that package, installed;
    // any other is an installed package no repository offers (kept while nothing replaces it).
    for (const rec of installed) {
      const key =
        rec.checksum !== undefined ? `C\0${checksumIdentity(rec.checksum)}` : `P\0${rec.name}\0${rec.version}`;
      const known =
        this.byKey.get(key) ??
        this.add(
          { ...rec, repository: "installed", repositoryOrder: Number.MAX_SAFE_INTEGER },
          { installed: true, inRepo: false },
        );
      this.byKey.set(key, known);
      known.installed = true;
      // apk counts an installed package as in the repositories of the tag it was installed with (get_pkg_repos)
      known.tags.add(installedTags.get(rec.name) ?? "");
    }
  }

  private readonly byKey = new Map<string, Pkg>();

  /** The installed packages, in the installed database's order. */
  installedPkgs(): Pkg[] {
    return this.pkgs.filter((p) => p.installed);
  }

  private add(rec: RepositoryPackage, state: { installed: boolean; inRepo: boolean }): Pkg {
    const tags = new Set<string>(state.inRepo ? [rec.repositoryTag ?? ""] : []);
    const pkg: Pkg = {
      id: this.pkgs.length,
      rec,
      name: rec.name,
      version: rec.version,
      depends: [],
      provides: [],
      installIf: [],
      tags,
      ...state,
    };
    if (rec.unknownUpperFields && rec.unknownUpperFields.length > 0) {
      pkg.uninstallable = `unknown field ${rec.unknownUpperFields.map((f) => f.slice(0, 1)).join(", ")}`;
    }
    for (const text of rec.depends) {
      try {
        const dep = parseDependency(text);
        if (dep.broken) pkg.uninstallable ??= `invalid version in dependency ${text}`;
        pkg.depends.push(dep);
      } catch {
        pkg.uninstallable ??= `malformed dependency ${text}`;
      }
    }
    for (const text of rec.provides) {
      try {
        pkg.provides.push(parseProvide(text));
      } catch {
        // apk skips a provides entry it cannot parse
      }
    }
    try {
      pkg.installIf = rec.installIf.map((t) => parseDependency(t));
    } catch {
      pkg.installIf = []; // apk disables a partial install_if rule
    }
    this.pkgs.push(pkg);
    for (const d of pkg.depends) {
      const list = this.rdepends.get(d.name) ?? [];
      if (!list.includes(pkg.name)) list.push(pkg.name);
      this.rdepends.set(d.name, list);
    }
    this.providersOf(pkg.name).push({ pkg, version: pkg.version });
    for (const p of pkg.provides) this.providersOf(p.name).push({ pkg, version: p.version });
    for (const d of pkg.installIf) {
      const list = this.installIfByName.get(d.name) ?? [];
      list.push(pkg);
      this.installIfByName.set(d.name, list);
    }
    return pkg;
  }

  providersOf(name: string): Provider[] {
    let list = this.providers.get(name);
    if (!list) {
      list = [];
      this.providers.set(name, list);
    }
    return list;
  }

  existingProviders(name: string): Provider[] {
    return this.providers.get(name) ?? [];
  }
}

/**
 * The bytes an index checksum stands for: "Q1" + 28 base64 characters is a SHA-1, 32 hex digits an
 * MD5. Text of any other shape (not a checksum apk would read) is compared as it is.
 */
function checksumIdentity(checksum: string): string {
  if (/^Q1[A-Za-z0-9+/]{27}=$/.test(checksum)) return Buffer.from(checksum.slice(2), "base64").toString("hex");
  if (/^[0-9a-fA-F]{32}$/.test(checksum)) return checksum.toLowerCase();
  return checksum;
}

/** The names a package assigns when selected: its own, then each provide. */
export function assignedEntries(pkg: Pkg): Array<{ name: string; version: string | undefined }> {
  return [{ name: pkg.name, version: pkg.version }, ...pkg.provides.map((p) => ({ name: p.name, version: p.version }))];
}

/** A package holding one name twice (its own name again, or two versions of a provide) conflicts with itself. */
export function providesItselfTwice(pkg: Pkg): boolean {
  const seen = new Map<string, string | undefined>();
  for (const e of assignedEntries(pkg)) {
    if (seen.has(e.name) && !(e.version === undefined && seen.get(e.name) === undefined)) return true;
    seen.set(e.name, e.version);
  }
  return false;
}

export function providerSatisfies(dep: Dependency, from: Pkg | null, p: Provider): boolean {
  return dependencySatisfiedBy(dep, { version: p.version, checksum: p.pkg.rec.checksum, self: from === p.pkg });
}

/** apk's tag order: untagged first, then tags as the repositories name them. */
export function tagOrder(universe: PackageUniverse): string[] {
  const tags = [""];
  for (const p of [...universe.pkgs].sort((a, b) => a.rec.repositoryOrder - b.rec.repositoryOrder))
    for (const t of p.tags) if (!tags.includes(t)) tags.push(t);
  return tags;
}

export type Analysis = "satisfies" | "conflicts" | "irrelevant";

/** apk_dep_analyze: how `dep` (of `from`, null for world) relates to `pkg`. */
export function analyzeDependency(from: Pkg | null, dep: Dependency, pkg: Pkg): Analysis {
  if (dep.name === pkg.name) {
    const ok = dependencySatisfiedBy(dep, { version: pkg.version, checksum: pkg.rec.checksum });
    return ok ? "satisfies" : "conflicts";
  }
  for (const p of pkg.provides) {
    if (p.name !== dep.name) continue;
    return providerSatisfies(dep, from, { pkg, version: p.version }) ? "satisfies" : "conflicts";
  }
  return "irrelevant";
}
