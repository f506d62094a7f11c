/**
 * `pulumi preview` of the demo stack as it is deployed (no changes expected) against the
 * preview of an empty Pulumi program, same engine, same machine. Both run from copies in the
 * scratch directory with a copy of the state backend, so the developer's project and
 * .ramroot/state are never touched.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { alternate, timeCommand, type Variant } from "./harness";
import type { BenchContext, SectionResult } from "./section";

const DEMO_STACK = "demo";

/** The project as Pulumi runs it: Pulumi.yaml, stacks, overlay, demo files, the compiled program and plugin. */
function copyProject(repoRoot: string, compiled: string, dest: string): void {
  fs.mkdirSync(dest, { recursive: true });
  for (const p of ["Pulumi.yaml", "package.json", "stacks", "root", path.join(".ramroot", "demo"), path.join("provider", "plugin")]) {
    const src = path.join(repoRoot, p);
    if (fs.existsSync(src)) fs.cpSync(src, path.join(dest, p), { recursive: true });
  }
  // The program chdirs to dist/.. : dist must be a real directory inside the copy, not a link.
  fs.cpSync(compiled, path.join(dest, "dist"), { recursive: true });
  fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(dest, "node_modules"));
}

function emptyProject(repoRoot: string, dest: string): void {
  fs.mkdirSync(dest, { recursive: true });
  fs.writeFileSync(path.join(dest, "Pulumi.yaml"), "name: bench-empty\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n");
  fs.writeFileSync(path.join(dest, "package.json"), JSON.stringify({ name: "bench-empty", private: true, main: "index.js" }) + "\n");
  fs.writeFileSync(path.join(dest, "index.js"), "// an empty Pulumi program: no resources, no outputs\nmodule.exports = {};\n");
  fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(dest, "node_modules"));
}

export async function benchPreview(ctx: BenchContext, repoRoot: string, compiled: string): Promise<SectionResult> {
  const dir = path.join(ctx.scratch, "preview");
  const state = path.join(dir, "state");
  const demo = path.join(dir, "demo");
  const empty = path.join(dir, "empty");
  const source = path.join(repoRoot, ".ramroot", "state");
  if (!fs.existsSync(path.join(source, ".pulumi", "stacks", "ramroot", `${DEMO_STACK}.json`))) {
    throw new Error(`no deployed demo stack in ${source}; run \`npm start\` once first`);
  }
  fs.cpSync(source, state, { recursive: true });
  copyProject(repoRoot, compiled, demo);
  emptyProject(repoRoot, empty);
  const env = {
    PULUMI_BACKEND_URL: `file://${state}`,
    PULUMI_CONFIG_PASSPHRASE: process.env.PULUMI_CONFIG_PASSPHRASE ?? "ramroot-demo",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    RAMROOT_NODE: process.execPath,
  };
  await execa("pulumi", ["stack", "init", "bench-empty", "--non-interactive"], { cwd: empty, env });
  await execa("pulumi", ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", "bench-empty"], { cwd: empty, env });
  const preview = (cwd: string, stack: string) => () => timeCommand("pulumi", ["preview", "--stack", stack, "--non-interactive", "--expect-no-changes"], { cwd, env });
  const variants: Variant[] = [
    { label: "demo stack", command: "pulumi preview --stack demo --expect-no-changes", run: preview(demo, DEMO_STACK) },
    { label: "empty program", command: "pulumi preview --stack bench-empty --expect-no-changes  # index.js: module.exports = {}", run: preview(empty, "bench-empty") },
  ];
  ctx.log("preview: demo stack vs empty program");
  const rows = await alternate(variants, ctx.runs, ctx.log);
  return {
    id: "preview",
    title: "pulumi preview: demo stack vs empty program",
    intro:
      "`pulumi preview` of the deployed demo stack (stacks/Pulumi.demo.yaml with index.ts as compiled now; its AlpineImage plans the image from the local repository, " +
      "the boot target is read) and of an empty Node.js program, both with no changes (--expect-no-changes fails the run otherwise), from copies of the project and of the file backend.",
    tables: [{ caption: "preview", baseline: "empty program", rows, runs: ctx.runs }],
    notes: [],
  };
}
