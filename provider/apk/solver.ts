/**
 * Resolves a world (package names with constraints) against repository packages into a lock, with
 * apk-tools' rules (src/solver.c): one provider per name unless every provider of it is unversioned;
 * versioned provides are auto-selectable, unversioned ones only with provider_priority or when the
 * provider's own name is also required; among candidates prefer the higher version of the requested
 * name, then the higher version of the same package, then provider_priority, then the earlier
 * repository; install_if packages join when all their conditions hold in the solution; `!name`
 * conflicts. apk's solver is a deductive, non-backtracking one; this is a depth-first search with
 * backtracking over the same preference order, so it finds a solution whenever one exists. When none
 * exists, a greedy apk-like selection is made and analysed the way apk's error reporter
 * (src/commit.c) does, giving apk's "unable to select packages" text.
 */
import type { PackageRecord, RepositoryPackage } from "./package-record";
import {
  type Dependency,
  type Provide,
  dependencySatisfiedBy,
  formatDependency,
  formatProvide,
  parseDependency,
  parseProvide,
} from "./dependency";
import { compareOptional, VERSION_GREATER, VERSION_LESS } from "./version";

export interface LockEntry {
  name: string;
  version: string;
  arch?: string;
  checksum?: string;
  repository: string;
  size?: number;
  record: RepositoryPackage;
}

export interface Lock {
  /** Sorted by name. */
  packages: LockEntry[];
  /** The world as resolved: normalised dependency texts, sorted by name. */
  world: string[];
}

export class SolverError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SolverError";
  }
}

interface Pkg {
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

interface Provider {
  pkg: Pkg;
  /** The version the name is provided at; undefined for an unversioned (virtual) provide. */
  version: string | undefined;
}

interface Requirement {
  dep: Dependency;
  from: Pkg | null;
  /** Repository tags whose packages may satisfy it: the world entry's own tag and the untagged repositories, or what the requiring package was allowed (apk's pinning, inherited). */
  allowed: ReadonlySet<string>;
}

const UNTAGGED: ReadonlySet<string> = new Set([""]);

function worldRequirement(dep: Dependency): Requirement {
  return { dep, from: null, allowed: dep.tag !== undefined ? new Set(["", dep.tag]) : UNTAGGED };
}

/** The packages of the repositories, indexed by every name they provide. */
class PackageUniverse {
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
    const seen = new Set<string>();
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
function assignedEntries(pkg: Pkg): Array<{ name: string; version: string | undefined }> {
  return [{ name: pkg.name, version: pkg.version }, ...pkg.provides.map((p) => ({ name: p.name, version: p.version }))];
}

/** A package holding one name twice (its own name again, or two versions of a provide) conflicts with itself. */
function providesItselfTwice(pkg: Pkg): boolean {
  const seen = new Map<string, string | undefined>();
  for (const e of assignedEntries(pkg)) {
    if (seen.has(e.name) && !(e.version === undefined && seen.get(e.name) === undefined)) return true;
    seen.set(e.name, e.version);
  }
  return false;
}

function providerSatisfies(dep: Dependency, from: Pkg | null, p: Provider): boolean {
  return dependencySatisfiedBy(dep, { version: p.version, checksum: p.pkg.rec.checksum, self: from === p.pkg });
}

/**
 * apk's solver flags on a package (APK_SOLVERF_*): set on the providers of a name the command names
 * (`apk add --upgrade/--latest NAME`, `apk del NAME`) or on the whole world (`apk upgrade`), and
 * passed down to what those packages depend on (all but REMOVE).
 */
export const SOLVER_UPGRADE = 1;
export const SOLVER_LATEST = 2;
export const SOLVER_REMOVE = 4;
export const SOLVER_AVAILABLE = 8;
const INHERITABLE = SOLVER_UPGRADE | SOLVER_LATEST;

/** What the command asks for beyond the world: flags for the whole world and per name. */
export interface SolverFlags {
  /** For every package the world reaches (`apk upgrade`, `apk upgrade --latest`). */
  global?: number;
  /** For the providers of each name; a name listed here (even with 0) is decided before the others, as apk does with the names given to `apk add`/`del`. */
  names?: ReadonlyMap<string, number>;
}

/** What the choice for one name depends on beyond the providers themselves. */
interface PreferenceContext {
  /** The tag whose repositories are preferred: a world entry's own tag, else the untagged repositories (apk's pinning_preferred). */
  preferredTag: string;
  /** Whether the requirements allow a tagged repository (apk's --latest then keeps its usual preferences). */
  pinned: boolean;
  /** The solver flags a candidate carries (SOLVER_*). */
  flags: (p: Provider) => number;
  /** Whether a candidate meets every requirement; only --latest weighs a candidate that does not (then it loses to one that does of the same version). */
  fits?: (p: Provider) => boolean;
}

const NO_CONTEXT: PreferenceContext = { preferredTag: "", pinned: false, flags: () => 0 };

/** apk's --latest: versions decide before the installed package and the preferred tag do. */
function latestApplies(a: Provider, b: Provider, ctx: PreferenceContext): boolean {
  return !ctx.pinned && ((ctx.flags(a) | ctx.flags(b)) & SOLVER_LATEST) !== 0;
}

function tagPreferred(p: Pkg, ctx: PreferenceContext): boolean {
  return p.tags.has(ctx.preferredTag) || p.rec.installedSize === 0;
}

/** compare_providers: > 0 when `a` is preferred over `b`. */
function comparePreference(a: Provider, b: Provider, ctx: PreferenceContext = NO_CONTEXT): number {
  const flags = ctx.flags(a) | ctx.flags(b);
  // upgrade --available: a package some repository has over one only installed
  const byAvailable = flags & SOLVER_AVAILABLE ? Number(a.pkg.inRepo) - Number(b.pkg.inRepo) : 0;
  if (byAvailable !== 0) return byAvailable;
  // --latest (without a pinned tag): neither the preferred tag nor the installed package counts, only versions
  if (!latestApplies(a, b, ctx)) {
    const byTag = Number(tagPreferred(a.pkg, ctx)) - Number(tagPreferred(b.pkg, ctx));
    if (byTag !== 0) return byTag;
    if (!(flags & (SOLVER_UPGRADE | SOLVER_REMOVE))) {
      const byInstalled = Number(a.pkg.installed) - Number(b.pkg.installed);
      if (byInstalled !== 0) return byInstalled;
    }
  }
  const byRequested = compareOptional(a.version, b.version);
  if (byRequested === VERSION_GREATER) return 1;
  if (byRequested === VERSION_LESS) return -1;
  if (a.pkg.name === b.pkg.name) {
    const byPrincipal = compareOptional(a.pkg.version, b.pkg.version);
    if (byPrincipal === VERSION_GREATER) return 1;
    if (byPrincipal === VERSION_LESS) return -1;
  }
  // provider_priority, then the installed one of equal versions unless it is being removed (apk
  // del's hint); apk-tools 3 weighs the priority first (provides-prio4), 2.14 the installed package
  const prio = (a.pkg.rec.providerPriority ?? 0) - (b.pkg.rec.providerPriority ?? 0);
  if (prio !== 0) return prio;
  const installedNow = flags & SOLVER_REMOVE ? 0 : Number(a.pkg.installed) - Number(b.pkg.installed);
  if (installedNow !== 0) return installedNow;
  if (ctx.fits) {
    const byFit = Number(ctx.fits(a)) - Number(ctx.fits(b));
    if (byFit !== 0) return byFit;
  }
  const repo = b.pkg.rec.repositoryOrder - a.pkg.rec.repositoryOrder;
  if (repo !== 0) return repo;
  return b.pkg.id - a.pkg.id;
}

function byPreference(list: Provider[], ctx: PreferenceContext = NO_CONTEXT): Provider[] {
  return [...list].sort((a, b) => comparePreference(b, a, ctx));
}

const STEP_LIMIT = 200_000;

/** The mutable state of one search: selected packages, the names they hold, and the requirements met so far. */
class SearchState {
  readonly selected: Pkg[] = [];
  readonly selectedIds = new Set<number>();
  readonly entries = new Map<string, Provider[]>();
  readonly agenda: Requirement[] = [];
  /** Non-conflict requirement count per name (apk's "requirers"). */
  readonly requirers = new Map<string, number>();
  readonly blockedIif = new Set<number>();
  /** The repository tags each selected package was allowed (what its own dependencies inherit). */
  readonly allowedOf = new Map<number, ReadonlySet<string>>();
  /** The solver flags each selected package passes down to what it depends on. */
  readonly inheritedOf = new Map<number, number>();
  steps = 0;

  constructor(
    readonly universe: PackageUniverse,
    readonly flags: SolverFlags = {},
    /** Count a requirement on a name nothing provides as met (to explain a failure that is only that). */
    readonly ignoreMissing = false,
  ) {}

  /** Whether the command names `name` (apk decides such names first). */
  flagged(name: string): boolean {
    return this.flags.names?.has(name) ?? false;
  }

  /** The flags `pkg` has from the names it provides and from the whole world. */
  private ownFlags(pkg: Pkg): number {
    let f = this.flags.global ?? 0;
    for (const e of assignedEntries(pkg)) f |= this.flags.names?.get(e.name) ?? 0;
    return f;
  }

  /** The flags a provider carries: its own and those passed down by the packages whose requirements it meets. */
  providerFlags(p: Provider, reqs: readonly Requirement[]): number {
    let f = this.ownFlags(p.pkg);
    for (const r of reqs) if (r.from && providerSatisfies(r.dep, r.from, p)) f |= this.inheritedOf.get(r.from.id) ?? 0;
    return f;
  }

  push(req: Requirement): void {
    this.agenda.push(req);
    if (!req.dep.conflict) this.requirers.set(req.dep.name, (this.requirers.get(req.dep.name) ?? 0) + 1);
  }

  popTo(length: number): void {
    while (this.agenda.length > length) {
      const req = this.agenda.pop()!;
      if (!req.dep.conflict) this.requirers.set(req.dep.name, this.requirers.get(req.dep.name)! - 1);
    }
  }

  isRequired(name: string): boolean {
    return (this.requirers.get(name) ?? 0) > 0;
  }

  autoSelectable(p: Provider): boolean {
    return p.version !== undefined || (p.pkg.rec.providerPriority ?? 0) > 0 || this.isRequired(p.pkg.name);
  }

  /** Can `pkg` join the selection without breaking anything already decided or pending? */
  compatible(pkg: Pkg): boolean {
    if (pkg.uninstallable || this.selectedIds.has(pkg.id)) return false;
    if (providesItselfTwice(pkg)) return false;
    for (const e of assignedEntries(pkg)) {
      const held = this.entries.get(e.name) ?? [];
      // Two holders of a name are allowed only when both provide it without a version.
      if (held.length > 0 && !(e.version === undefined && held.every((h) => h.version === undefined))) return false;
      const provider: Provider = { pkg, version: e.version };
      for (const req of this.agenda) {
        if (req.dep.name !== e.name) continue;
        if (req.dep.conflict || held.length === 0) {
          if (!providerSatisfies(req.dep, req.from, provider)) return false;
        }
      }
    }
    for (const dep of pkg.depends) {
      const held = this.entries.get(dep.name);
      if (!held || held.length === 0) continue;
      if (
        dep.conflict
          ? !held.every((h) => providerSatisfies(dep, pkg, h))
          : !held.some((h) => providerSatisfies(dep, pkg, h))
      )
        return false;
    }
    return true;
  }

  select(pkg: Pkg, allowed: ReadonlySet<string> = UNTAGGED): void {
    let inherited = 0;
    for (const e of assignedEntries(pkg)) {
      const reqs = this.agenda.filter((r) => !r.dep.conflict && r.dep.name === e.name);
      inherited |= this.providerFlags({ pkg, version: e.version }, reqs);
    }
    this.inheritedOf.set(pkg.id, inherited & INHERITABLE);
    this.selected.push(pkg);
    this.selectedIds.add(pkg.id);
    this.allowedOf.set(pkg.id, allowed);
    for (const e of assignedEntries(pkg)) {
      const held = this.entries.get(e.name) ?? [];
      held.push({ pkg, version: e.version });
      this.entries.set(e.name, held);
    }
    for (const dep of pkg.depends) this.push({ dep, from: pkg, allowed });
  }

  unselect(pkg: Pkg, agendaLength: number): void {
    this.popTo(agendaLength);
    this.selected.pop();
    this.selectedIds.delete(pkg.id);
    this.allowedOf.delete(pkg.id);
    this.inheritedOf.delete(pkg.id);
    for (const e of assignedEntries(pkg)) {
      const held = this.entries.get(e.name)!;
      held.pop();
      if (held.length === 0) this.entries.delete(e.name);
    }
  }

  /** The tags a name's pending requirements allow, and the one they prefer. */
  pinning(name: string): { allowed: ReadonlySet<string>; ctx: PreferenceContext } {
    const reqs = this.agenda.filter((r) => r.dep.name === name && !r.dep.conflict);
    const allowed = new Set<string>();
    for (const r of reqs) for (const t of r.allowed) allowed.add(t);
    const fromWorld = reqs.find((r) => r.from === null);
    return {
      allowed,
      ctx: {
        preferredTag: fromWorld?.dep.tag ?? "",
        pinned: [...allowed].some((t) => t !== ""),
        flags: (p: Provider) => this.providerFlags(p, reqs),
      },
    };
  }

  /** apk's tag_ok: installed, or in a repository the requirement's pinning allows. */
  static tagOk(pkg: Pkg, allowed: ReadonlySet<string>): boolean {
    return pkg.installed || pkg.rec.installedSize === 0 || [...pkg.tags].some((t) => allowed.has(t));
  }

  /** Candidates for an unheld name, best first, that satisfy every pending requirement on it. */
  candidates(name: string): { providers: Provider[]; allowed: ReadonlySet<string> } {
    const reqs = this.agenda.filter((r) => r.dep.name === name && !r.dep.conflict);
    const { allowed, ctx } = this.pinning(name);
    const fits = (p: Provider): boolean =>
      reqs.every((r) => providerSatisfies(r.dep, r.from, p)) && this.compatible(p.pkg);
    const options = this.universe
      .existingProviders(name)
      .filter((p) => SearchState.tagOk(p.pkg, allowed) && this.autoSelectable(p));
    if (options.some((p) => latestApplies(p, p, ctx))) {
      // --latest: apk takes the newest even when something rules it out, and then fails (basic13)
      const best = byPreference(options, { ...ctx, fits })[0];
      return { providers: best && fits(best) ? [best] : [], allowed };
    }
    return { providers: byPreference(options.filter(fits), ctx), allowed };
  }

  /** The tags an install_if package may come from: what the packages that trigger it were allowed. */
  installIfAllowed(pkg: Pkg): ReadonlySet<string> {
    const allowed = new Set<string>([""]);
    for (const d of pkg.installIf)
      for (const h of this.entries.get(d.name) ?? [])
        for (const t of this.allowedOf.get(h.pkg.id) ?? []) allowed.add(t);
    return allowed;
  }

  /** Install-if packages whose every condition holds now, grouped by name in name order, best first. */
  triggeredInstallIf(): Pkg[][] {
    const byName = new Map<string, Provider[]>();
    const seen = new Set<number>();
    for (const name of [...this.entries.keys()].sort()) {
      for (const pkg of this.universe.installIfByName.get(name) ?? []) {
        if (seen.has(pkg.id)) continue;
        seen.add(pkg.id);
        if (this.selectedIds.has(pkg.id) || this.blockedIif.has(pkg.id) || this.entries.has(pkg.name)) continue;
        if (!this.installIfHolds(pkg) || !SearchState.tagOk(pkg, this.installIfAllowed(pkg))) continue;
        // upgrade --available drops install_if packages no repository has
        if ((this.flags.global ?? 0) & SOLVER_AVAILABLE && !pkg.inRepo) continue;
        const list = byName.get(pkg.name) ?? [];
        list.push({ pkg, version: pkg.version });
        byName.set(pkg.name, list);
      }
    }
    return [...byName.keys()].sort().map((n) =>
      byPreference(byName.get(n)!, {
        preferredTag: "",
        pinned: false,
        flags: (p) => this.providerFlags(p, []),
      }).map((p) => p.pkg),
    );
  }

  private installIfHolds(pkg: Pkg): boolean {
    return pkg.installIf.every((dep) => {
      const held = this.entries.get(dep.name) ?? [];
      if (held.length === 0) return dep.conflict;
      return dep.conflict
        ? held.every((h) => providerSatisfies(dep, pkg, h))
        : held.some((h) => providerSatisfies(dep, pkg, h));
    });
  }
}

class StepLimitReached extends Error {}

/**
 * The next requirement to decide, from agenda position `at` on: apk resolves names that are real
 * packages before purely virtual names (its order_id), so a requested package can satisfy a virtual
 * name before another provider is picked for it. Returns the new scan start (everything before it is
 * met), the requirement's index, or "dead" when a held name fails a requirement.
 */
function nextRequirement(state: SearchState, at: number): { at: number; index: number | undefined } | "dead" {
  let start = at;
  let real: number | undefined;
  /** Virtual names by rank: 0 with a provider that can be picked on its own and named by the command, 1 with such a provider, 2 named, 3 the rest. */
  const virtual: Array<number | undefined> = [];
  for (let i = at; i < state.agenda.length; i++) {
    const { dep, from } = state.agenda[i]!;
    const held = dep.conflict ? undefined : state.entries.get(dep.name);
    const met = dep.conflict || (held !== undefined && held.length > 0);
    if (met || (state.ignoreMissing && state.universe.existingProviders(dep.name).length === 0)) {
      if (held && held.length > 0 && !held.some((h) => providerSatisfies(dep, from, h))) return "dead";
      if (start === i) start = i + 1;
      continue;
    }
    // real packages before virtual names, and of those the ones a provider can be picked for on its
    // own (apk's selectable queue before its unresolved one); a name the command names
    // (apk's solver_flags_set) before the others
    const providers = state.universe.existingProviders(dep.name);
    const flagged = state.flagged(dep.name);
    if (providers.some((p) => p.pkg.name === dep.name)) {
      if (flagged) return { at: start, index: i };
      real ??= i;
      continue;
    }
    const rank = (providers.some((p) => state.autoSelectable(p)) ? 0 : 2) + (flagged ? 0 : 1);
    virtual[rank] ??= i;
  }
  return { at: start, index: real ?? virtual.find((i) => i !== undefined) };
}

/**
 * Depth-first search from agenda position `at`; true when every requirement is met. With
 * `strictInstallIf`, an install_if package whose conditions hold must join: when it cannot, the
 * search backtracks into earlier choices (apk's solver revisits a name's provider when a
 * triggered install_if package needs another one, installif10); without it, such a package is
 * left out, as apk disqualifies one that conflicts with everything possible.
 */
function search(state: SearchState, at: number, strictInstallIf: boolean): boolean {
  if (++state.steps > STEP_LIMIT) throw new StepLimitReached();
  const next = nextRequirement(state, at);
  if (next === "dead") return false;
  if (next.index !== undefined) {
    const { dep } = state.agenda[next.index]!;
    const { providers, allowed } = state.candidates(dep.name);
    for (const cand of providers) {
      const mark = state.agenda.length;
      state.select(cand.pkg, allowed);
      if (search(state, next.at, strictInstallIf)) return true;
      state.unselect(cand.pkg, mark);
    }
    return false;
  }
  // Every requirement is met: add install_if packages that the solution now triggers.
  for (const group of state.triggeredInstallIf()) {
    for (const pkg of group) {
      if (!state.compatible(pkg)) continue;
      const mark = state.agenda.length;
      state.select(pkg, state.installIfAllowed(pkg));
      if (search(state, mark, strictInstallIf)) return true;
      state.unselect(pkg, mark);
    }
    if (strictInstallIf) return false;
    // None of this name's install_if packages can join: leave them out, as apk disqualifies them.
    for (const pkg of group) state.blockedIif.add(pkg.id);
    const ok = search(state, state.agenda.length, strictInstallIf);
    for (const pkg of group) state.blockedIif.delete(pkg.id);
    return ok;
  }
  return true;
}

/** A solution in which every triggered install_if package joins when one exists, else one that leaves out those that cannot. */
function solve(
  universe: PackageUniverse,
  worldDeps: Dependency[],
  flags: SolverFlags = {},
  ignoreMissing = false,
): SearchState | undefined {
  for (const strict of [true, false]) {
    const state = new SearchState(universe, flags, ignoreMissing);
    for (const dep of worldDeps) state.push(worldRequirement(dep));
    try {
      if (search(state, 0, strict)) return state;
    } catch (err) {
      if (!(err instanceof StepLimitReached) || !strict) throw err;
    }
  }
  return undefined;
}

function parseWorld(world: readonly string[]): Dependency[] {
  // apk's words for a bad world entry (apk add), followed by what exactly is wrong with it.
  const invalid = (i: number, text: string, why: string): SolverError =>
    new SolverError(
      `world[${i}]: '${text}' is not a valid world dependency, format is name(@tag)([<>~=]version): ${why}`,
    );
  const deps = world.map((text, i) => {
    let dep: Dependency;
    try {
      dep = parseDependency(text);
    } catch (err) {
      throw invalid(i, text, (err as Error).message);
    }
    if (dep.broken)
      throw invalid(i, text, `invalid version ${JSON.stringify(dep.version)}; see "ramroot apk version -c"`);
    return dep;
  });
  // apk sorts the world by name before solving.
  return deps.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Resolves `world` against `packages`. Throws SolverError with apk's "unable to select packages"
 * report when no selection satisfies it.
 */
export function resolvePackages(world: string[], packages: RepositoryPackage[], opts: { arch?: string } = {}): Lock {
  const worldDeps = parseWorld(world);
  const universe = new PackageUniverse(packages, opts.arch);
  let state: SearchState | undefined;
  try {
    state = solve(universe, worldDeps);
  } catch (err) {
    if (err instanceof StepLimitReached) {
      throw new SolverError(
        `ERROR: unable to select packages: gave up after ${STEP_LIMIT} search steps for world [${world.join(" ")}]`,
      );
    }
    throw err;
  }
  if (!state) throw new SolverError(explainFailure(universe, worldDeps));
  const lockWorld = worldDeps.map(formatDependency);
  const entries = state.selected
    .map(lockEntry)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : 1));
  return { packages: entries, world: lockWorld };
}

function lockEntry(pkg: Pkg): LockEntry {
  const r = pkg.rec;
  const e: LockEntry = { name: r.name, version: r.version, repository: r.repository, record: r };
  if (r.arch !== undefined) e.arch = r.arch;
  if (r.checksum !== undefined) e.checksum = r.checksum;
  if (r.size !== undefined) e.size = r.size;
  return e;
}

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

export interface ChangeResolution {
  lock: Lock;
  /** In apk's order (removals where apk's changeset walk meets them). */
  changes: Change[];
}

/**
 * Resolves a world against repositories and an installed database, as `apk add`/`del`/`upgrade`
 * do: installed packages are kept unless the world or a newer preferred package needs otherwise
 * (`upgrade` drops their preference; `flags` carry apk's per-name hints: add --upgrade/--latest,
 * del), `name@tag` entries pin to tagged repositories, and the
 * result is apk's changeset (src/solver.c generate_changeset): what is purged, installed,
 * upgraded, downgraded or replaced, in apk's order.
 */
export function resolveChanges(
  world: string[],
  packages: RepositoryPackage[],
  state: InstalledState,
  opts: { arch?: string; upgrade?: boolean; flags?: SolverFlags } = {},
): ChangeResolution {
  const worldDeps = parseWorld(world);
  const universe = new PackageUniverse(packages, opts.arch, state.installed, state.installedTags);
  const flags: SolverFlags = {
    ...opts.flags,
    global: (opts.flags?.global ?? 0) | (opts.upgrade ? SOLVER_UPGRADE : 0),
  };
  let solved: SearchState | undefined;
  try {
    solved = solve(universe, worldDeps, flags);
  } catch (err) {
    if (err instanceof StepLimitReached)
      throw new SolverError(
        `ERROR: unable to select packages: gave up after ${STEP_LIMIT} search steps for world [${world.join(" ")}]`,
      );
    throw err;
  }
  if (!solved) throw new SolverError(explainFailure(universe, worldDeps, flags));
  const lock: Lock = {
    packages: solved.selected
      .map(lockEntry)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : 1)),
    world: worldDeps.map(formatDependency),
  };
  return { lock, changes: generateChangeset(universe, solved, worldDeps, state) };
}

/** apk's tag order: untagged first, then tags as the repositories name them. */
function tagOrder(universe: PackageUniverse): string[] {
  const tags = [""];
  for (const p of [...universe.pkgs].sort((a, b) => a.rec.repositoryOrder - b.rec.repositoryOrder))
    for (const t of p.tags) if (!tags.includes(t)) tags.push(t);
  return tags;
}

/**
 * generate_changeset, over the solution the search found. A walk from the world names (then the
 * installed ones) that records each chosen package after its dependencies and removes installed
 * packages as they lose their last requirer: a package that provided a name now held by another,
 * one whose install_if condition is removed, and each installed package depending on one removed.
 */
function generateChangeset(
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
function changesetOrder(universe: PackageUniverse, chosen: (name: string) => Pkg | undefined, roots: string[]): Pkg[] {
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

/** Orders a lock for installation: dependencies before dependents, deterministically, like apk's changeset. */
export function installOrder(lock: Lock): LockEntry[] {
  const universe = new PackageUniverse(lock.packages.map((e) => e.record));
  const byName = new Map<string, Pkg>();
  for (const pkg of universe.pkgs) if (!byName.has(pkg.name)) byName.set(pkg.name, pkg);
  const chosen = (name: string): Pkg | undefined => byName.get(name) ?? universe.existingProviders(name)[0]?.pkg;
  // World names first; anything a lock holds beyond them (not the case for a solver lock) follows by name.
  const roots = [...parseWorld(lock.world).map((d) => d.name), ...[...byName.keys()].sort()];
  const order = changesetOrder(universe, chosen, roots);
  const entryOf = new Map(lock.packages.map((e) => [e.record, e] as const));
  return order.map((p) => entryOf.get(p.rec)!);
}

// ---------------------------------------------------------------------------------------------
// Failure analysis, after apk's src/commit.c (apk_solver_print_errors).

function explainingSelection(
  universe: PackageUniverse,
  worldDeps: Dependency[],
  flags: SolverFlags,
): { chosen: Map<string, Pkg>; state: SearchState } {
  let solved: SearchState | undefined;
  try {
    solved = solve(universe, worldDeps, flags, true);
  } catch (err) {
    if (!(err instanceof StepLimitReached)) throw err;
  }
  if (!solved) return greedySelection(universe, worldDeps, flags);
  const chosen = new Map<string, Pkg>();
  for (const [name, held] of solved.entries) chosen.set(name, held[0]!.pkg);
  return { chosen, state: solved };
}

/** apk's greedy selection, used only to explain a failure: the best provider per name, problems kept. */
function greedySelection(
  universe: PackageUniverse,
  worldDeps: Dependency[],
  flags: SolverFlags = {},
): { chosen: Map<string, Pkg>; state: SearchState } {
  const state = new SearchState(universe, flags);
  const chosen = new Map<string, Pkg>();
  const unresolvable = new Set<string>();
  for (const dep of worldDeps) state.push(worldRequirement(dep));
  for (;;) {
    const open = state.agenda.filter(
      (r) => !r.dep.conflict && !chosen.has(r.dep.name) && !unresolvable.has(r.dep.name),
    );
    const req =
      open.find((r) => universe.existingProviders(r.dep.name).some((p) => p.pkg.name === r.dep.name)) ?? open[0];
    if (!req) break;
    const name = req.dep.name;
    const reqs = state.agenda.filter((r) => r.dep.name === name && !r.dep.conflict);
    const options = universe.existingProviders(name).filter((p) => state.autoSelectable(p));
    if (options.length === 0) {
      unresolvable.add(name);
      continue;
    }
    // apk disqualifies a package that a requirement rules out, or one with a dependency no provider
    // left can meet (one level of its deduction)
    const meetable = (pkg: Pkg, d: Dependency): boolean => {
      if (d.conflict) return true;
      const on = state.agenda.filter((r) => r.dep.name === d.name && !r.dep.conflict);
      return universe
        .existingProviders(d.name)
        .some((q) => providerSatisfies(d, pkg, q) && on.every((r) => providerSatisfies(r.dep, r.from, q)));
    };
    const fits = (p: Provider): number =>
      state.compatible(p.pkg) &&
      reqs.every((r) => providerSatisfies(r.dep, r.from, p)) &&
      p.pkg.depends.every((d) => meetable(p.pkg, d) || !universe.existingProviders(d.name).length)
        ? 1
        : 0;
    const { allowed, ctx } = state.pinning(name);
    const tagOk = (p: Provider): number => Number(SearchState.tagOk(p.pkg, allowed));
    // --latest takes the newest whatever rules it out (apk reports it as breaking the requirement);
    // otherwise one that fits comes first, then one the pinning allows (apk then reports it "masked in")
    const best = options.some((p) => latestApplies(p, p, ctx))
      ? byPreference(options, { ...ctx, fits: (p) => fits(p) === 1 })[0]!
      : [...options].sort((a, b) => fits(b) - fits(a) || tagOk(b) - tagOk(a) || comparePreference(b, a, ctx))[0]!;
    chosen.set(name, best.pkg);
    if (state.selectedIds.has(best.pkg.id)) continue;
    for (const e of assignedEntries(best.pkg)) if (!chosen.has(e.name)) chosen.set(e.name, best.pkg);
    state.select(best.pkg, allowed);
  }
  return { chosen, state };
}

/** apk wraps its error report at 50 columns when standard output is not a terminal. */
const REPORT_WIDTH = 50;

/**
 * Labelled groups of items, wrapped the way apk_print_indented does: items follow each other on a
 * line separated by a space until the next would reach the width, then continue under the first.
 */
class Report {
  readonly lines: string[] = [];
  labels = 0;
  private pending: string | undefined;
  private group: string | undefined;
  private line = "";
  private indent = 0;

  start(label: string): void {
    this.pending = label;
  }

  clear(): void {
    this.pending = undefined;
  }

  get open(): boolean {
    return this.pending !== undefined;
  }

  item(group: string, text: string): void {
    if (this.pending !== undefined) {
      this.endGroup();
      this.lines.push(`  ${this.pending}:`);
      this.pending = undefined;
      this.labels++;
    }
    if (this.group !== group) {
      this.endGroup();
      this.group = group;
      this.line = `    ${group} ${text}`;
      this.indent = group.length + 5;
    } else if (this.line.length + text.length + 1 >= REPORT_WIDTH) {
      this.lines.push(this.line);
      this.line = " ".repeat(this.indent) + text;
    } else {
      this.line += " " + text;
    }
  }

  /** Words of a sentence as items of one group. */
  words(group: string, sentence: string): void {
    for (const w of sentence.split(" ")) this.item(group, w);
    this.endGroup();
  }

  endGroup(): void {
    if (this.group !== undefined) this.lines.push(this.line);
    this.group = undefined;
    this.line = "";
  }
}

type Analysis = "satisfies" | "conflicts" | "irrelevant";

/** apk_dep_analyze: how `dep` (of `from`, null for world) relates to `pkg`. */
function analyzeDependency(from: Pkg | null, dep: Dependency, pkg: Pkg): Analysis {
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

function pkgText(pkg: Pkg): string {
  return `${pkg.name}-${pkg.version}`;
}

function explainFailure(universe: PackageUniverse, worldDeps: Dependency[], flags: SolverFlags = {}): string {
  // When only names nothing provides are wrong, apk's selection is otherwise a solution: explain
  // that one (only the missing names are reported); else apk's greedy selection with its problems.
  const { chosen, state } = explainingSelection(universe, worldDeps, flags);
  const tags = tagOrder(universe);
  const changeset = changesetOrder(
    universe,
    (n) => chosen.get(n),
    worldDeps.map((d) => d.name),
  );
  const marked = new Set(changeset.map((p) => p.id));
  const present = new Set<string>();
  for (const pkg of changeset) for (const e of assignedEntries(pkg)) present.add(e.name);
  const missing = new Set<string>();
  const report = new Report();

  const analyzeName = (name: string): void => {
    const providers = universe.existingProviders(name);
    if (providers.length > 0) {
      report.start(`${name} (virtual)`);
      report.words("note:", "please select one of the 'provided by' packages explicitly");
      // A provider's name is printed alone when all of its packages provide this name.
      const counts = new Map<string, number>();
      for (const p of providers) counts.set(p.pkg.name, (counts.get(p.pkg.name) ?? 0) + 1);
      for (const p of providers) {
        const refs = counts.get(p.pkg.name)!;
        if (refs === universe.existingProviders(p.pkg.name).length) {
          report.item("provided by:", p.pkg.name);
          counts.set(p.pkg.name, 0);
        } else if (refs > 0) {
          report.item("provided by:", pkgText(p.pkg));
          counts.set(p.pkg.name, refs - 1);
        }
      }
      report.endGroup();
    } else {
      report.start(`${name} (no such package)`);
    }
    for (const d of worldDeps)
      if (d.name === name && !d.conflict) report.item("required by:", `world[${formatDependency(d)}]`);
    for (const pkg of changeset) {
      const d = pkg.depends.find((x) => x.name === name && !x.conflict);
      if (d) report.item("required by:", `${pkgText(pkg)}[${formatDependency(d)}]`);
    }
    report.endGroup();
    report.clear();
  };

  const analyzeDeps = (deps: Dependency[]): void => {
    for (const d of deps) {
      if (d.conflict || present.has(d.name) || missing.has(d.name)) continue;
      missing.add(d.name);
      analyzeName(d.name);
    }
  };

  const printDeps = (pkg: Pkg, want: Analysis): void => {
    const group = want === "satisfies" ? "satisfies:" : "breaks:";
    for (const d of worldDeps)
      if (analyzeDependency(null, d, pkg) === want) report.item(group, `world[${formatDependency(d)}]`);
    // the selected packages that depend on a name it holds, as apk walks them: by the name each
    // dependent was read under, then that name's providers, each package once
    const seen = new Set<number>();
    for (const e of assignedEntries(pkg)) {
      for (const name0 of universe.rdepends.get(e.name) ?? []) {
        for (const p0 of universe.existingProviders(name0)) {
          const other = p0.pkg;
          if (!marked.has(other.id) || seen.has(other.id)) continue;
          seen.add(other.id);
          for (const d of other.depends)
            if (analyzeDependency(other, d, pkg) === want)
              report.item(group, `${pkgText(other)}[${formatDependency(d)}]`);
        }
      }
    }
    report.endGroup();
  };

  const analyzePackage = (pkg: Pkg): void => {
    report.start(pkgText(pkg));
    // print_pinning_errors: a package taken only from repositories whose tag nothing asked for
    const allowed = state.allowedOf.get(pkg.id) ?? UNTAGGED;
    if (!pkg.installed && pkg.inRepo && ![...pkg.tags].some((t) => t === "" || allowed.has(t))) {
      for (const t of tags) if (pkg.tags.has(t)) report.item("masked in:", `@${t}`);
      report.endGroup();
    }
    if (pkg.uninstallable) report.item("uninstallable:", pkg.uninstallable);
    report.endGroup();
    for (const p of universe.existingProviders(pkg.name)) {
      if (p.pkg === pkg || !marked.has(p.pkg.id)) continue;
      report.item("conflicts:", pkgText(p.pkg));
    }
    for (const d of pkg.provides) {
      let once = true;
      for (const p of universe.existingProviders(d.name)) {
        if (!marked.has(p.pkg.id)) continue;
        if (d.version === undefined && p.version === undefined) continue;
        if (once && p.pkg === pkg && p.version === d.version) {
          once = false;
          continue;
        }
        report.item("conflicts:", `${pkgText(p.pkg)}[${formatProvide(d)}]`);
      }
    }
    report.endGroup();
    printDeps(pkg, "conflicts");
    if (!report.open) printDeps(pkg, "satisfies");
  };

  analyzeDeps(worldDeps);
  for (const pkg of changeset) {
    analyzePackage(pkg);
    analyzeDeps(pkg.depends);
  }
  report.endGroup();
  if (report.labels === 0) report.lines.push("  Huh? Error reporter did not find the broken constraints.");
  return ["ERROR: unable to select packages:", ...report.lines].join("\n");
}
