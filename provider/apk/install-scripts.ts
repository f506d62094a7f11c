import * as fs from "node:fs";
import { execFileSync, spawn } from "node:child_process";
import * as path from "node:path";
import type { Readable, Writable } from "node:stream";
import picomatch from "picomatch";
import { openScratchDir } from "../scratch-dir";
import { canApplyOwnership } from "./root-ownership";
import { SANDBOX_ID_BASE, SANDBOX_ID_COUNT } from "./sandbox-ids";
import { StagingRoot } from "./staging-root";
import type { ScriptName } from "./package-file";
import { hostApkArch, isArch } from "../arch";
import { foreignRun } from "./binfmt";
import { HostError } from "../ramroot-error";

/**
 * How scripts run here: in a bubblewrap sandbox (new user, mount, pid, network, ipc and uts
 * namespaces; only the staging root visible), or not at all (another architecture the kernel
 * cannot run).
 */
export type ScriptRunner = "sandbox" | "none";

export interface ScriptOutcome {
  package: string;
  script: ScriptName;
  outcome: "ran" | "failed" | "skipped";
  /** Why it failed or was skipped, with the script's output when it failed. */
  detail?: string;
}

export interface ScriptEnvironment {
  root: string;
  /**
   * The image's architecture. Scripts execute the image's own binaries, so they run when it is
   * the host's, or when the kernel runs its programs through QEMU's user-mode emulator (binfmt.ts).
   */
  targetArch: string;
  /** Force a runner (tests); default: the sandbox. */
  runner?: ScriptRunner;
}

/** The runner that will be used, or why none can be. */
export function chooseRunner(env: ScriptEnvironment): { runner: ScriptRunner; reason?: string } {
  const host = hostApkArch();
  if (env.targetArch !== host && env.targetArch !== "noarch") {
    const foreign = isArch(env.targetArch) ? foreignRun(env.targetArch) : undefined;
    if (!foreign?.ok)
      return {
        runner: "none",
        reason: `target architecture ${env.targetArch} differs from the host's ${host}: the image's binaries cannot run here (${foreign?.reason ?? `ramroot does not build ${env.targetArch}`})`,
      };
  }
  return { runner: env.runner ?? "sandbox" };
}

const SCRIPT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

/** Where bubblewrap is; a clear error when it is missing (scripts never run unsandboxed). */
function bwrapPath(): string {
  for (const dir of ["/usr/bin", "/usr/local/bin", "/bin"]) {
    const candidate = path.join(dir, "bwrap");
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new HostError(
    "install scripts run in a bubblewrap sandbox, and bwrap is not installed",
    "install Debian's bubblewrap (scripts/setup.sh does), or build for another architecture where no script runs",
  );
}

/**
 * Capabilities the script keeps inside its user namespace: what `chown`, `chmod`, `adduser` and
 * friends need on the root's files. Never CAP_SYS_ADMIN, CAP_MKNOD, CAP_NET_* or CAP_SYS_PTRACE;
 * and being in a user namespace, none of these counts beyond the sandbox's own ids and mounts.
 */
const SCRIPT_CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_SETUID",
  "CAP_SETGID",
  "CAP_SETFCAP",
  "CAP_KILL",
];

/**
 * The bubblewrap command line for one script: a new user namespace in which the script is root,
 * only the staging root, bound as "/", its own /proc (a new pid namespace) with /proc/sys an
 * empty read-only directory and /proc/sysrq-trigger (where the kernel has it) read-only, a
 * minimal /dev (null, zero, full, random, urandom, tty, and /dev/console as another /dev/null),
 * no network (a new, empty net namespace), new ipc and uts namespaces, a new session, killed with
 * ramroot (--die-with-parent; the pid namespace takes every process the script started with it),
 * PATH as apk sets it and nothing else in the environment, cwd "/". With `idMapFds` the user
 * namespace's maps are written from outside (bwrap says its pid on the second fd and waits on the
 * first); otherwise bwrap maps the caller onto root.
 */
function sandboxArgs(root: string, command: string[], idMapFds?: { block: number; info: number }): string[] {
  return [
    "--unshare-user",
    ...(idMapFds ? ["--userns-block-fd", String(idMapFds.block), "--info-fd", String(idMapFds.info)] : []),
    "--uid",
    "0",
    "--gid",
    "0",
    ...SCRIPT_CAPABILITIES.flatMap((c) => ["--cap-add", c]),
    "--unshare-ipc",
    "--unshare-pid",
    "--unshare-net",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--die-with-parent",
    "--new-session",
    "--bind",
    root,
    "/",
    "--proc",
    "/proc",
    "--tmpfs",
    "/proc/sys",
    "--remount-ro",
    "/proc/sys",
    ...(fs.existsSync("/proc/sysrq-trigger") ? ["--ro-bind", "/dev/null", "/proc/sysrq-trigger"] : []),
    "--dev",
    "/dev",
    "--dev-bind",
    "/dev/null",
    "/dev/console",
    "--clearenv",
    "--setenv",
    "PATH",
    SCRIPT_PATH,
    "--chdir",
    "/",
    "--",
    ...command,
  ];
}

/** Where a staging root is bound for bwrap, which runs as a sandbox id and cannot reach a root under ~/.cache. */
const VIEW_PREFIX = "ramroot-sandbox-";

interface SandboxRun {
  exitCode?: number;
  output: string;
  shortMessage?: string;
}

/**
 * Runs `command` in the sandbox. Unprivileged, bwrap maps the caller to uid 0 (a chown to
 * another id then fails, as it would for apk run without root). As root, the script runs under
 * the sandbox's host ids (sandbox-ids.ts), never as host root: in a private mount namespace the
 * staging root is bound onto an empty 0711 directory under the temporary directory, bwrap starts
 * there as host id 2147352576 (setpriv) and makes the user namespace, and this process writes its
 * maps (ids 0-65535 onto 2147352576-2147418111; a multi-id map only the host's root may write)
 * before the script starts. Its capabilities count only for the staging tree's sandbox ids: no
 * sysctl, no mount outside its own, no device node, no signal or ptrace of a host process.
 */
async function runSandboxed(root: string, command: string[]): Promise<SandboxRun> {
  const bwrap = bwrapPath();
  const env = { PATH: SCRIPT_PATH };
  if (!canApplyOwnership()) {
    // Loaded here, where a process runs: execa (ESM, ~100 ms to load) would otherwise cost every
    // build, which runs no script when its package layer is cached.
    const { execa } = require("execa") as typeof import("execa");
    const result = await execa(bwrap, sandboxArgs(root, command), {
      env,
      extendEnv: false,
      cwd: root,
      reject: false,
      all: true,
      stdin: "ignore",
    });
    return { exitCode: result.exitCode, output: result.all ?? "", shortMessage: result.shortMessage };
  }
  const view = await openScratchDir(VIEW_PREFIX, { mode: 0o711, empty: true });
  try {
    const id = String(SANDBOX_ID_BASE);
    const child = spawn(
      "unshare",
      [
        ...["--mount", "--propagation", "private", "--", "/bin/sh", "-c"],
        'mount --bind -- "$1" "$2" || exit 125; shift 2; exec "$@"',
        ...["sh", root, view.dir, "setpriv", `--reuid=${id}`, `--regid=${id}`, "--clear-groups", "--", bwrap],
        ...sandboxArgs(view.dir, command, { block: 3, info: 4 }),
      ],
      { env, cwd: "/", stdio: ["ignore", "pipe", "pipe", "pipe", "pipe"] },
    );
    const output: Buffer[] = [];
    child.stdout!.on("data", (b: Buffer) => output.push(b));
    child.stderr!.on("data", (b: Buffer) => output.push(b));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
      child.on("error", (error) => resolve({ code: null, signal: null, error }));
      child.on("close", (code, signal) => resolve({ code, signal }));
    });
    const block = child.stdio[3] as Writable;
    const info = child.stdio[4] as Readable;
    block.on("error", () => {});
    // bwrap says the pid of its namespace's first process, then waits for the maps.
    let said = "";
    for await (const piece of info) said += String(piece);
    const pid = /"child-pid"\s*:\s*(\d+)/.exec(said)?.[1];
    if (pid !== undefined) {
      try {
        fs.writeFileSync(`/proc/${pid}/uid_map`, `0 ${SANDBOX_ID_BASE} ${SANDBOX_ID_COUNT}\n`);
        fs.writeFileSync(`/proc/${pid}/gid_map`, `0 ${SANDBOX_ID_BASE} ${SANDBOX_ID_COUNT}\n`);
      } catch (err) {
        child.kill("SIGKILL");
        await exited;
        throw new HostError(`the script sandbox's user namespace could not be mapped: ${(err as Error).message}`);
      }
      block.end("1");
    } else block.destroy();
    const { code, signal, error } = await exited;
    const text = Buffer.concat(output).toString("utf8");
    if (error) return { output: text, shortMessage: error.message };
    if (code === null) return { output: text, shortMessage: `killed by ${signal}` };
    return { exitCode: code, output: text };
  } finally {
    view.drop();
  }
}

/**
 * Runs one install script as apk-tools does, inside the sandbox: the script is written under
 * the root (/lib/apk/exec), executed as root of the sandbox with PATH=/usr/sbin:/usr/bin:/sbin:/bin
 * and nothing else in the environment, cwd "/", with `args` (the package version for install
 * scripts, the changed directories for triggers). A script that exits non-zero is reported as
 * failed (apk marks the package and goes on; the image build then fails unless told
 * otherwise); a script that cannot run because the architectures differ is reported skipped,
 * and the caller must warn loudly.
 */
export async function runInstallScript(
  env: ScriptEnvironment,
  pkg: { name: string; version: string },
  script: ScriptName,
  body: Buffer,
  args: string[],
): Promise<ScriptOutcome> {
  const base = { package: pkg.name, script };
  const { runner, reason } = chooseRunner(env);
  if (runner === "none") return { ...base, outcome: "skipped", detail: reason };
  const staging = new StagingRoot(env.root);
  prepareScriptRoot(env.root);
  const fileName = `${pkg.name}-${pkg.version}.${script}`;
  staging.writeFile(`lib/apk/exec/${fileName}`, body, 0o755);
  try {
    const result = await runSandboxed(env.root, [`/lib/apk/exec/${fileName}`, ...args]);
    const output = result.output.trim();
    if (result.exitCode === 0) return { ...base, outcome: "ran", detail: output || undefined };
    const why = result.exitCode !== undefined ? `exited with ${result.exitCode}` : `failed (${result.shortMessage})`;
    return {
      ...base,
      outcome: "failed",
      detail: `${pkg.name}-${pkg.version}.${script} ${why}${output ? `: ${output}` : ""}`,
    };
  } finally {
    staging.remove(`lib/apk/exec/${fileName}`);
  }
}

/** Character devices `apk add --initdb` makes in a new root: name -> mode, major, minor. */
const INITDB_DEVICES: Record<string, [number, number, number]> = {
  null: [0o666, 1, 3],
  zero: [0o666, 1, 5],
  random: [0o666, 1, 8],
  urandom: [0o666, 1, 9],
  console: [0o600, 5, 1],
};

/**
 * The layout `apk add --initdb` gives a new root and the directories scripts run with:
 * tmp (1777), dev with null, zero, random, urandom and console (device nodes need root: as
 * another user only the directory), proc (the sandbox mounts its own there), lib/apk/exec
 * (0700), var/cache/apk and var/cache/misc. What exists already is left as it is.
 */
export function prepareScriptRoot(root: string): void {
  const staging = new StagingRoot(root);
  if (!staging.lstat("tmp")) staging.directory("tmp", 0o1777);
  staging.mkdirp("dev");
  if (process.getuid?.() === 0) {
    for (const [name, [mode, major, minor]] of Object.entries(INITDB_DEVICES)) {
      if (staging.lstat(`dev/${name}`)) continue;
      const node = staging.resolve(`dev/${name}`);
      execFileSync("mknod", ["-m", mode.toString(8), node, "c", String(major), String(minor)]);
    }
  }
  if (!staging.lstat("proc")) staging.directory("proc", 0o555);
  if (!staging.lstat("lib/apk/exec")) staging.directory("lib/apk/exec", 0o700);
  staging.mkdirp("var/cache/apk");
  staging.mkdirp("var/cache/misc");
}

/**
 * The directories (rooted, "/usr/share/fonts") a package's trigger globs match among those
 * the transaction changed, as apk matches them with fnmatch(FNM_PATHNAME).
 */
export function matchTriggers(globs: string[], changedDirs: Iterable<string>): string[] {
  const matchers = globs.map((g) => picomatch(g, { dot: true }));
  return [...new Set(changedDirs)].filter((dir) => matchers.some((m) => m(dir))).sort();
}
