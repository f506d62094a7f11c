/** `ramroot init [dir]`: a repository of your own for one machine, with ramroot installed beside it. */
import * as path from "node:path";
import type { Command } from "commander";
import { execa } from "execa";
import { initRepository } from "../project/init-repository";
import { DISK_IMAGE } from "../project/owner-files";
import { RamrootError } from "../ramroot-error";

const collect = (value: string, previous: string[] = []) => [...previous, value];

interface InitFlags {
  stack: string;
  yaml?: boolean;
  ramroot?: string;
  repository?: string[];
  key?: string[];
  packages?: string;
  install: boolean;
}

/** Runs a command in `dir` with the terminal; false when it could not start or failed. */
async function step(dir: string, file: string, args: string[]): Promise<boolean> {
  const r = await execa(file, args, { cwd: dir, stdio: ["ignore", "inherit", "inherit"], reject: false });
  return r.exitCode === 0;
}

/** `git init` unless the directory is already in a git work tree (or there is no git). */
async function gitInit(dir: string): Promise<boolean> {
  const inside = await execa("git", ["rev-parse", "--is-inside-work-tree"], { cwd: dir, reject: false });
  // 0: already in a work tree; no exit code: no git to run
  if (inside.exitCode === 0 || inside.exitCode === undefined) return false;
  return (await execa("git", ["init", "--quiet"], { cwd: dir, reject: false })).exitCode === 0;
}

export function registerInitCommands(program: Command): void {
  program
    .command("init")
    .description(
      "make a repository of your own for one machine: Pulumi.yaml running the ramroot plugin from node_modules, " +
        "a program, stacks/Pulumi.<stack>.yaml with a disk-image target, root/, .gitignore and package.json; then npm install",
    )
    .argument("[dir]", "the repository's directory (made when missing; its name names the project)", ".")
    .option("--stack <name>", "the stack: stacks/Pulumi.<name>.yaml", "machine")
    .option("--yaml", "a Pulumi YAML program (in Pulumi.yaml) instead of index.ts")
    .option(
      "--ramroot <spec>",
      "how package.json names ramroot: a version range (default: this version, from the registry), " +
        "a packed tarball (npm pack; installed offline from npm's cache) or a git URL",
    )
    .option("--repository <url|dir>", "an APK repository instead of Alpine's for the release (repeat)", collect)
    .option("--key <file|dir>", "a public key that signs --repository (repeat)", collect)
    .option("--packages <names>", "comma-separated packages (default: alpine-base,openssh,syslinux)")
    .option("--no-install", "write the files only (run npm install yourself)")
    .action(async (dir: string, flags: InitFlags) => {
      const result = await initRepository({
        dir,
        stack: flags.stack,
        yaml: flags.yaml === true,
        ...(flags.ramroot !== undefined ? { ramroot: flags.ramroot } : {}),
        repositories: flags.repository ?? [],
        keys: flags.key ?? [],
        ...(flags.packages !== undefined ? { packages: flags.packages.split(",").filter((p) => p !== "") } : {}),
      });
      const out = (line: string) => process.stdout.write(`${line}\n`);
      out(`[init] wrote ${result.files.join(", ")} in ${result.dir}`);
      if (await gitInit(result.dir)) out("[init] git init: a new repository; commit when you like what you see");
      if (flags.install) {
        out(
          `[init] npm install: ramroot and its dependencies${result.locked ? " (from npm's cache, as package-lock.json pins them)" : ""}`,
        );
        if (!(await step(result.dir, "npm", ["install", "--no-audit", "--no-fund"])))
          throw new RamrootError(
            "input",
            `npm install failed in ${result.dir}`,
            "fix what npm says above, then run npm install there",
          );
      }
      const cd = path.relative(process.cwd(), result.dir);
      out("");
      out("Next:");
      if (cd !== "") out(`  cd ${cd}`);
      if (!flags.install) out("  npm install                  # ramroot and its dependencies");
      out("  npm run setup                # Debian tools, Node >= 22, the Pulumi engine (once)");
      out("  source .ramroot/env.sh       # pulumi and npx ramroot in this shell");
      out(`  npx ramroot disk create --size 512 ${DISK_IMAGE}   # the disk the stack's target names`);
      out(`  npm start                    # preview, then deploy to slot a of ${DISK_IMAGE} (asks first)`);
      out(`  npx ramroot qemu --stack ${result.stack}   # boot it (Ctrl-A X quits)`);
    });
}
