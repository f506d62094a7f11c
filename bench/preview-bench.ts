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

function emptyProject(repoRoot: string, dest: string): void {
  fs.mkdirSync(dest, { recursive: true });
  fs.writeFileSync(
    path.join(dest, "Pulumi.yaml"),
    "name: bench-empty\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n",
  );
  fs.writeFileSync(
    path.join(dest, "package.json"),
    JSON.stringify({ name: "bench-empty", private: true, main: "index.js" }) + "\n",
  );
  fs.writeFileSync(
    path.join(dest, "index.js"),
    "// an empty Pulumi program: no resources, no outputs\nmodule.exports = {};\n",
  );
  fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(dest, "node_modules"));
}

export async function benchPreview(ctx: BenchContext, repoRoot: string): Promise<SectionResult> {
  const dir = path.join(ctx.scratch, "preview");
  const state = path.join(dir, "state");
  const empty = path.join(dir, "empty");
  const source = path.join(repoRoot, ".ramroot", "state");
  if (!fs.existsSync(path.join(source, ".pulumi", "stacks", "ramroot", `${DEMO_STACK}.json`))) {
    throw new Error(`no deployed demo stack in ${source}; run \`npm start\` once first`);
  }
  fs.cpSync(source, state, { recursive: true });
  emptyProject(repoRoot, empty);
  const env = {
    PULUMI_BACKEND_URL: `file://${state}`,
    PULUMI_CONFIG_PASSPHRASE: process.env.PULUMI_CONFIG_PASSPHRASE ?? "ramroot-demo",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    RAMROOT_NODE: process.execPath,
  };
  await execa("pulumi", ["stack", "init", "bench-empty", "--non-interactive"], { cwd: empty, env });
  await execa("pulumi", ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", "bench-empty"], {
    cwd: empty,
    env,
  });
  let demoSummary = "";
  const preview = (cwd: string, stack: string, expectNoChanges: boolean) => async () => {
    const s = await timeCommand(
      "pulumi",
      ["preview", "--stack", stack, "--non-interactive", ...(expectNoChanges ? ["--expect-no-changes"] : [])],
      { cwd, env },
    );
    if (stack === DEMO_STACK)
      demoSummary = s.stdout
        .slice(s.stdout.indexOf("Resources:"))
        .trim()
        .split("\n")
        .map((l) => l.trim())
        .join("; ");
    return s;
  };
  const variants: Variant[] = [
    {
      label: "demo stack",
      command: "PULUMI_BACKEND_URL=file://COPY pulumi preview --stack demo",
      run: preview(repoRoot, DEMO_STACK, false),
    },
    {
      label: "empty program",
      command: "pulumi preview --stack bench-empty --expect-no-changes  # index.js: module.exports = {}",
      run: preview(empty, "bench-empty", true),
    },
  ];
  ctx.log("preview: demo stack vs empty program");
  const rows = await alternate(variants, ctx.runs, ctx.log);
  return {
    id: "preview",
    title: "pulumi preview: demo stack vs empty program",
    intro:
      "`pulumi preview` of the deployed demo stack (stacks/Pulumi.demo.yaml, the program as compiled in dist/ now; its AlpineImage plans the image from the local repository, " +
      "the boot disk image is read) run in the project directory against a copy of the file backend, and of an empty Node.js program with no changes (--expect-no-changes). " +
      "The demo runs in place because the stack's inputs hold absolute paths (overlay, keys, repositories): a copied project previews as changed.",
    tables: [{ caption: "preview", baseline: "empty program", rows, runs: ctx.runs }],
    notes: [
      `The demo preview's summary in the last run: ${demoSummary || "(none)"}. When it proposes changes the project was edited since the last \`npm start\`; the preview still plans everything, so the timing stands.`,
    ],
  };
}
