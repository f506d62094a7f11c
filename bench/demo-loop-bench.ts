/**
 * The demo's edit-to-booted loop: edit root/etc/ramroot/message, run `npm start`, until the
 * machine prints its marker. Run in a scratch clone of the project (its own state, disk and
 * image cache; the project's node_modules linked), so the developer's .ramroot is untouched.
 * Setup as it is now (its slow steps run again only when their inputs changed: the compiled
 * sources by content, the pulumi smoke tests once per engine) is alternated with setup as it
 * was (those steps every time: their stamps removed before the run).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { alternate, timeShell, type Variant } from "./harness";
import type { BenchContext, SectionResult } from "./section";

/**
 * The environment of a new shell: none of this process's pulumi or ramroot settings but the cache
 * (set to undefined: the commands extend this process's environment, and Node leaves those out).
 */
function shellEnv(images: string): Record<string, string> {
  const env: Record<string, string | undefined> = { RAMROOT_IMAGE_CACHE: images };
  for (const k of Object.keys(process.env))
    if (k.startsWith("PULUMI_") || (k.startsWith("RAMROOT_") && k !== "RAMROOT_CACHE")) env[k] ??= undefined;
  return env as Record<string, string>;
}

export async function benchDemoLoop(ctx: BenchContext, repoRoot: string): Promise<SectionResult> {
  const clone = path.join(ctx.scratch, "demo-loop");
  await execa("git", ["clone", "--quiet", repoRoot, clone]);
  fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(clone, "node_modules"));
  // The linked node_modules is the project's: setup must not reinstall it (its stamp says it is current).
  fs.mkdirSync(path.join(clone, ".ramroot", "stamps"), { recursive: true });
  fs.copyFileSync(path.join(repoRoot, ".ramroot", "stamps", "npm"), path.join(clone, ".ramroot", "stamps", "npm"));
  const env = shellEnv(path.join(ctx.scratch, "demo-loop-images"));
  const message = path.join(clone, "root", "etc", "ramroot", "message");
  ctx.log("demo loop: the first npm start in the clone (compile, repository, disk, first deployment)");
  await execa("bash", ["scripts/demo.sh"], { cwd: clone, env });

  let edits = 0;
  const edit = () => fs.writeFileSync(message, `demo loop edit ${++edits}\n`);
  const forgetStamps = () => {
    for (const stamp of ["tsc", "pulumi-smoke"])
      fs.rmSync(path.join(clone, ".ramroot", "stamps", stamp), { force: true });
  };
  const booted = async () => {
    const console = fs.readFileSync(path.join(clone, ".ramroot", "demo", "console.log"), "utf8");
    if (!console.includes(`message=demo loop edit ${edits}`))
      throw new Error(`the machine did not print the edited message (edit ${edits}):\n${console.slice(-1000)}`);
  };
  const loop = (label: string, before: () => void): Variant => ({
    label,
    command: "edit root/etc/ramroot/message; npm start  # until RAMROOT-DEMO ... message=<the edit> on the console",
    before: () => {
      before();
      edit();
    },
    run: () => timeShell("bash scripts/demo.sh", { cwd: clone, env }),
    check: booted,
  });
  const setup = (label: string, before: () => void): Variant => ({
    label,
    command: "bash scripts/setup.sh  # what npm start runs first",
    before,
    run: () => timeShell("bash scripts/setup.sh", { cwd: clone, env }),
  });

  ctx.log("demo loop: setup alone, nothing changed, now vs as before");
  const setupRows = await alternate(
    [setup("setup now (stamps)", () => undefined), setup("setup as before (slow steps every time)", forgetStamps)],
    ctx.runs,
    ctx.log,
  );
  ctx.log("demo loop: edit to booted, setup now vs as before");
  const loopRows = await alternate(
    [loop("edit to booted, setup now", () => undefined), loop("edit to booted, setup as before", forgetStamps)],
    ctx.heavyRuns,
    ctx.log,
  );
  return {
    id: "demo-loop",
    title: "The demo loop: edit to booted",
    intro:
      "`npm start` after an edit of root/etc/ramroot/message, in a scratch clone of the project (its own state, boot disk and image cache): setup, " +
      "the preview, `pulumi up` (the overlay layer rebuilt, the boot test in QEMU, the idle slot written, DEFAULT switched), the disk booted through " +
      "syslinux in QEMU until the machine prints the edited message, then `ramroot status`. Setup as it is now, where its slow steps run again only " +
      "when their inputs changed (TypeScript when a source, tsconfig.json or package-lock.json changed by content; the pulumi smoke tests once per " +
      "engine; npm ci when package-lock.json changed by content), alternated with setup as it was (the compile and the smoke tests every time: their " +
      "stamps removed before each run).",
    tables: [
      {
        caption: "setup alone, nothing changed",
        baseline: "setup as before (slow steps every time)",
        rows: setupRows,
        runs: ctx.runs,
      },
      { caption: "edit to booted", baseline: "edit to booted, setup as before", rows: loopRows, runs: ctx.heavyRuns },
    ],
    notes: [
      "The loop before this change was 51 s, 27 s of it setup (issue #22, measured by hand); the table above measures both ways in one run.",
    ],
  };
}
