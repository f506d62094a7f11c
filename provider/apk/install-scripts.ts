import * as fs from "node:fs";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { execa } from "execa";
import picomatch from "picomatch";
import { StagingRoot } from "./staging-root";
import type { ScriptName } from "./package-file";

/** apk's architecture name for the machine this runs on. */
export function hostApkArch(): string {
  const map: Record<string, string> = { x64: "x86_64", arm64: "aarch64", ia32: "x86", arm: "armv7", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64", loong64: "loongarch64" };
  return map[process.arch] ?? process.arch;
}

/** How scripts can run here: chroot as root, a user namespace otherwise, or not at all. */
export type ScriptRunner = "chroot" | "userns" | "none";

export interface ScriptOutcome {
  package: string;
  script: ScriptName;
  outcome: "ran" | "failed" | "skipped";
  /** Why it failed or was skipped, with the script's output when it failed. */
  detail?: string;
}

export interface ScriptEnvironment {
  root: string;
  /** The image's architecture; scripts run only when it is the host's (they execute the image's own binaries). */
  targetArch: string;
  /** Force a runner (tests); default: chroot when root, else a user namespace. */
  runner?: ScriptRunner;
}

/** The runner that will be used, or why none can be. */
export function chooseRunner(env: ScriptEnvironment): { runner: ScriptRunner; reason?: string } {
  const host = hostApkArch();
  if (env.targetArch !== host && env.targetArch !== "noarch") {
    return { runner: "none", reason: `target architecture ${env.targetArch} differs from the host's ${host}: the image's binaries cannot run here` };
  }
  if (env.runner) return { runner: env.runner };
  return { runner: process.getuid?.() === 0 ? "chroot" : "userns" };
}

/**
 * Runs one install script as apk-tools does: the script is written under the root
 * (/lib/apk/exec), and executed chrooted into the root with PATH=/usr/sbin:/usr/bin:/sbin:/bin
 * and nothing else in the environment, cwd "/", with `args` (the package version for
 * install scripts, the changed directories for triggers). As root `chroot` is used; otherwise
 * `unshare -r -R` (a user namespace mapping the caller to root). /proc is not mounted (busybox
 * --install then links to its argv[0], /bin/busybox). A script that exits non-zero is
 * reported as failed (apk marks the package and goes on); a script that cannot run because the
 * architectures differ is reported skipped, and the caller must warn loudly.
 */
export async function runInstallScript(env: ScriptEnvironment, pkg: { name: string; version: string }, script: ScriptName, body: Buffer, args: string[]): Promise<ScriptOutcome> {
  const base = { package: pkg.name, script };
  const { runner, reason } = chooseRunner(env);
  if (runner === "none") return { ...base, outcome: "skipped", detail: reason };
  const staging = new StagingRoot(env.root);
  const execDir = staging.mkdirp("lib/apk/exec");
  const fileName = `${pkg.name}-${pkg.version}.${script}`;
  staging.writeFile(`lib/apk/exec/${fileName}`, body, 0o755);
  const inRoot = `/lib/apk/exec/${fileName}`;
  const [cmd, cmdArgs] = runner === "chroot" ? ["chroot", [env.root, inRoot, ...args]] : ["unshare", ["-r", `--root=${env.root}`, inRoot, ...args]];
  try {
    const result = await execa(cmd, cmdArgs, {
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
      extendEnv: false,
      cwd: env.root,
      reject: false,
      all: true,
      stdin: "ignore",
    });
    if (result.exitCode === 0) return { ...base, outcome: "ran", detail: result.all?.trim() || undefined };
    const why = result.exitCode !== undefined ? `exited with ${result.exitCode}` : `failed (${result.shortMessage})`;
    return { ...base, outcome: "failed", detail: `${pkg.name}-${pkg.version}.${script} ${why}${result.all ? `: ${result.all.trim()}` : ""}` };
  } finally {
    staging.remove(`lib/apk/exec/${fileName}`);
    try {
      fs.rmdirSync(execDir);
    } catch {
      // other scripts' files, or not empty: leave it
    }
  }
}

/**
 * The directories (rooted, "/usr/share/fonts") a package's trigger globs match among those
 * the transaction changed, as apk matches them with fnmatch(FNM_PATHNAME).
 */
export function matchTriggers(globs: string[], changedDirs: Iterable<string>): string[] {
  const matchers = globs.map((g) => picomatch(g, { dot: true }));
  return [...new Set(changedDirs)].filter((dir) => matchers.some((m) => m(dir))).sort();
}

/** Character devices scripts commonly use (`>/dev/null`, `/dev/urandom`): major, minor. */
const SCRIPT_DEVICES: Record<string, [number, number]> = { null: [1, 3], zero: [1, 5], random: [1, 8], urandom: [1, 9] };

/**
 * Gives chrooted scripts the few device nodes they redirect to, as the host's /dev would when
 * apk runs on a live system; without them `>/dev/null` would leave a regular file in the
 * image. Only as root (mknod); the returned function removes exactly what was added, so the
 * image's /dev stays what the packages and the image builder put there.
 */
export function provideScriptDevices(env: ScriptEnvironment): () => void {
  if (chooseRunner(env).runner !== "chroot") return () => undefined;
  // /dev itself stays: a package may own it, and every image has one anyway.
  const dev = new StagingRoot(env.root).mkdirp("dev");
  const made: string[] = [];
  for (const [name, [major, minor]] of Object.entries(SCRIPT_DEVICES)) {
    const node = path.join(dev, name);
    if (fs.lstatSync(node, { throwIfNoEntry: false })) continue;
    execFileSync("mknod", ["-m", "666", node, "c", String(major), String(minor)]);
    made.push(node);
  }
  return () => {
    // Whatever is at those paths now (a script may have replaced a node) goes.
    for (const node of made) fs.rmSync(node, { force: true });
  };
}
