/**
 * apk's changeset (src/solver.c generate_changeset) over a solution: what is purged, installed,
 * upgraded, downgraded or replaced, in apk's order, and the order a set of packages installs in
 * (each after its dependencies, install_if packages after what triggers them).
 */
import type { PackageRecord } from "./package-record";
import type { Dependency } from "./dependency";
import {
  analyzeDependency,
  assignedEntries,
  providerSatisfies,
  tagOrder,
  type PackageUniverse,
  type Pkg,
  type Provider,
} from "./package-universe";
import { UNTAGGED, type SearchState } from "./solver-search";
import { compareOptional, VERSION_GREATER, VERSION_LESS } from "./version";

/** One line of apk's changeset: what happens to one package. */
export interface Change {
  /** apk's verb: Installing, Purging, Upgrading, Downgrading, Replacing, Updating pinning. */
  action: "Installing" | "Purging" | "Upgrading" | "Downgrading" | "Replacing" | "Updating pinning";
  name: string;
  /** The tag the new package comes with (`a@testing`), when not the untagged repositories. */
  tag?: string;
  oldVersion?: string;
  newVersion?: string;
}

/** apk's text for a change, without the "(i/n) " counter: `Upgrading a@testing (3 -> 3.1)`. */
export function formatChange(c: Change): string {
  const versions =
    c.oldVersion !== undefined && c.newVersion !== undefined && c.action !== "Updating pinning"
      ? `${c.oldVersion} -> ${c.newVersion}`
      : (c.newVersion ?? c.oldVersion);
  return `${c.action} ${c.name}${c.tag ? `@${c.tag}` : ""} (${versions})`;
}

export interface InstalledState {
  /** The installed database's records (lib/apk/db/installed), in its order. */
  installed: PackageRecord[];
  /** Per installed package name, the repository tag it was installed with (the db's s: line). */
  installedTags?: Map<string, string>;
}

/**
 * generate_changeset, over the solution the search found. A walk from the world names (then the
 * installed ones) that records each chosen package after its dependencies and removes installed
 * packages as they lose their last requirer: a package that provided a name now held by another,
 * one whose install_if condition is removed, and each installed package depending on one removed.
 */
export function generateChangeset(
  universe: PackageUniverse,
  solved: SearchState,
  worldDeps: Dependency[],
  state: InstalledState,
): Change[] {
  const order = tagOrder(universe);
  // the installed db's order (apk's installed list)
  const byChecksum = new Map(
    universe.pkgs.filter((p) => p.installed).map((p) => [p.rec.checksum ?? `${p.name}-${p.version}`, p] as const),
  );
  const installed = state.installed
    .map((r) => byChecksum.get(r.checksum ?? `${r.name}-${r.version}`))
    .filter((p): p is Pkg => p !== undefined);
  /** The installed package of each name (its own name only). */
  const installedPkg = new Map<string, Pkg>();
  /** The installed package's name that holds each name (its own, or a versioned provide). */
  const installedName = new Map<string, string>();
  for (const pkg of installed) {
    installedPkg.set(pkg.name, pkg);
    installedName.set(pkg.name, pkg.name);
    for (const p of pkg.provides) if (p.version !== undefined) installedName.set(p.name, pkg.name);
  }
  const chosenProvider = (name: string): Provider | undefined => solved.entries.get(name)?.[0];
  const chosen = (name: string): Pkg | undefined => chosenProvider(name)?.pkg;
  /** Names the walk has handled (apk's changeset_processed), names whose package it removed, packages it placed. */
  const processed = new Set<string>();
  const removed = new Set<string>();
  const placed = new Set<number>();
  const requirers = new Map<string, number>();
  const changes: Change[] = [];

  const tagOf = (pkg: Pkg): string => {
    const allowed = solved.allowedOf.get(pkg.id) ?? UNTAGGED;
    for (const t of order) if (allowed.has(t) && pkg.tags.has(t)) return t;
    return "";
  };
  const record = (old: Pkg | undefined, pkg: Pkg | undefined): void => {
    if (!pkg) {
      changes.push({ action: "Purging", name: old!.name, oldVersion: old!.version });
      return;
    }
    const tag = tagOf(pkg);
    if (!old) {
      changes.push({ action: "Installing", name: pkg.name, tag: tag || undefined, newVersion: pkg.version });
      return;
    }
    const oldTag = state.installedTags?.get(old.name) ?? "";
    if (old === pkg) {
      if (tag !== oldTag)
        changes.push({
          action: "Updating pinning",
          name: pkg.name,
          tag: tag || undefined,
          oldVersion: old.version,
          newVersion: pkg.version,
        });
      return;
    }
    const cmp = compareOptional(pkg.version, old.version);
    const action = cmp === VERSION_LESS ? "Downgrading" : cmp === VERSION_GREATER ? "Upgrading" : "Replacing";
    changes.push({ action, name: pkg.name, tag: tag || undefined, oldVersion: old.version, newVersion: pkg.version });
  };

  const trackAdded = (pkg: Pkg): void => {
    for (const d of pkg.depends) {
      const n = d.conflict ? undefined : installedName.get(d.name);
      if (n !== undefined) requirers.set(n, (requirers.get(n) ?? 0) + 1);
    }
  };
  const trackRemoved = (pkg: Pkg): void => {
    for (const d of pkg.depends) {
      const n = d.conflict ? undefined : installedName.get(d.name);
      if (n === undefined) continue;
      const left = (requirers.get(n) ?? 0) - 1;
      requirers.set(n, left);
      if (left > 0) continue;
      const pkg0 = installedPkg.get(d.name);
      if (pkg0) remove(pkg0);
    }
  };
  const removeIfUnrequired = (pkg: Pkg): void => {
    if ((requirers.get(pkg.name) ?? 0) === 0 && !chosen(pkg.name)) remove(pkg);
  };
  /** Calls `check` for every name with an install_if condition on a name `pkg` holds. */
  const forInstallIfOn = (pkg: Pkg | undefined, check: (name: string) => void): void => {
    if (!pkg) return;
    for (const e of assignedEntries(pkg)) {
      const names: string[] = [];
      for (const iif of universe.installIfByName.get(e.name) ?? []) if (!names.includes(iif.name)) names.push(iif.name);
      for (const n of names) check(n);
    }
  };
  const installByInstallIf = (name: string): void => {
    const pkg = chosen(name);
    if (!pkg || processed.has(name)) return;
    for (const d of pkg.installIf) {
      if (!d.conflict && !processed.has(d.name)) return;
      const p = chosenProvider(d.name);
      if (!(p ? providerSatisfies(d, pkg, p) : d.conflict)) return;
    }
    change(name);
  };
  const removeByInstallIf = (name: string): void => {
    const pkg = installedPkg.get(name);
    if (!pkg || chosen(name) || processed.has(name) || removed.has(name)) return;
    if (pkg.installIf.some((d) => removed.has(d.name) && !chosen(d.name))) removeIfUnrequired(pkg);
  };
  const remove = (pkg: Pkg): void => {
    if (placed.has(pkg.id) || chosen(pkg.name)?.name === pkg.name) return;
    removed.add(pkg.name);
    placed.add(pkg.id);
    // installed packages that depend on it go first
    for (const other of installed) {
      if (other.depends.some((d) => analyzeDependency(other, d, pkg) === "satisfies")) remove(other);
    }
    forInstallIfOn(pkg, removeByInstallIf);
    record(pkg, undefined);
    trackRemoved(pkg);
  };
  const preprocess = (name: string): void => {
    if (processed.has(name)) return;
    processed.add(name);
    // the package that held this name under another name goes, and so does any provider of it that is not kept
    const inst = installedPkg.get(name);
    if (inst && chosen(name)?.name !== name) remove(inst);
    for (const p of universe.existingProviders(name)) {
      if (installedPkg.get(p.pkg.name) === p.pkg && !chosen(p.pkg.name)) remove(p.pkg);
    }
  };
  const change = (name: string): void => {
    if (processed.has(name)) return;
    preprocess(name);
    const pkg = chosen(name);
    if (!pkg || placed.has(pkg.id)) return;
    placed.add(pkg.id);
    preprocess(pkg.name);
    for (const p of pkg.provides) preprocess(p.name);
    const old = installedPkg.get(pkg.name);
    forInstallIfOn(old, removeByInstallIf);
    for (const d of pkg.depends) change(d.name);
    record(old, pkg);
    forInstallIfOn(pkg, installByInstallIf);
    trackAdded(pkg);
    if (old) trackRemoved(old);
  };

  for (const pkg of installed) trackAdded(pkg);
  for (const pkg of installed) removeIfUnrequired(pkg);
  for (const d of worldDeps) change(d.name);
  for (const pkg of installed) change(pkg.name);
  return changes;
}

/**
 * The changeset order apk installs in: world names in order, each package after its dependencies
 * (a dependency cycle is cut where the walk first re-enters it), install_if packages right after the
 * last package that triggers them.
 */
export function changesetOrder(
  universe: PackageUniverse,
  chosen: (name: string) => Pkg | undefined,
  roots: string[],
): Pkg[] {
  const order: Pkg[] = [];
  const inChangeset = new Set<number>();
  const processed = new Set<string>();
  const visitName = (name: string): void => {
    processed.add(name);
    const pkg = chosen(name);
    if (!pkg || inChangeset.has(pkg.id)) return;
    inChangeset.add(pkg.id);
    processed.add(pkg.name);
    for (const p of pkg.provides) processed.add(p.name);
    for (const dep of pkg.depends) visitName(dep.name);
    order.push(pkg);
    for (const e of assignedEntries(pkg)) {
      for (const iif of universe.installIfByName.get(e.name) ?? []) {
        if (chosen(iif.name) !== iif || inChangeset.has(iif.id)) continue;
        if (iif.installIf.every((d) => d.conflict || processed.has(d.name))) visitName(iif.name);
      }
    }
  };
  for (const name of roots) visitName(name);
  return order;
}
