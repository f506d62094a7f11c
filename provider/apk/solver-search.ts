/**
 * The search for a selection that meets a world: apk's solver is a deductive, non-backtracking
 * one; this is a depth-first search with backtracking over the same preference order
 * (provider-preference.ts), so it finds a solution whenever one exists. Install_if packages join
 * when all their conditions hold in the solution; `!name` conflicts; repository tags pin.
 */
import type { Dependency } from "./dependency";
import {
  assignedEntries,
  providerSatisfies,
  providesItselfTwice,
  type PackageUniverse,
  type Pkg,
  type Provider,
} from "./package-universe";
import {
  byPreference,
  INHERITABLE,
  latestApplies,
  SOLVER_AVAILABLE,
  type PreferenceContext,
  type SolverFlags,
} from "./provider-preference";

interface Requirement {
  dep: Dependency;
  from: Pkg | null;
  /** Repository tags whose packages may satisfy it: the world entry's own tag and the untagged repositories, or what the requiring package was allowed (apk's pinning, inherited). */
  allowed: ReadonlySet<string>;
}

export const UNTAGGED: ReadonlySet<string> = new Set([""]);

export function worldRequirement(dep: Dependency): Requirement {
  return { dep, from: null, allowed: dep.tag !== undefined ? new Set(["", dep.tag]) : UNTAGGED };
}

export const STEP_LIMIT = 200_000;

/** The mutable state of one search: selected packages, the names they hold, and the requirements met so far. */
export class SearchState {
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

export class StepLimitReached extends Error {}

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
export function solve(
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
