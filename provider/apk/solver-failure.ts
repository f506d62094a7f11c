/**
 * Why a world has no solution, in apk's words: the selection apk would have made (the search's,
 * when only names nothing provides are wrong; else apk's greedy one) analysed the way apk's error
 * reporter does (src/commit.c apk_solver_print_errors), giving its "unable to select packages"
 * text.
 */
import { type Dependency, formatDependency, formatProvide } from "./dependency";
import {
  analyzeDependency,
  assignedEntries,
  providerSatisfies,
  tagOrder,
  type Analysis,
  type PackageUniverse,
  type Pkg,
  type Provider,
} from "./package-universe";
import { byPreference, comparePreference, latestApplies, type SolverFlags } from "./provider-preference";
import { SearchState, solve, StepLimitReached, UNTAGGED, worldRequirement } from "./solver-search";
import { changesetOrder } from "./changeset";

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

function pkgText(pkg: Pkg): string {
  return `${pkg.name}-${pkg.version}`;
}

export function explainFailure(universe: PackageUniverse, worldDeps: Dependency[], flags: SolverFlags = {}): string {
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
