import * as fs from "node:fs";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { execa } from "execa";
import picomatch from "picomatch";
import { StagingRoot } from "./staging-root";
import type { ScriptName } from "./package-file";
import { hostApkArch, isArch } from "../arch";
import { foreignRun } from "./binfmt";

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
  throw new Error(
    "install scripts run in a bubblewrap sandbox, and bwrap is not installed; install Debian's bubblewrap (scripts/setup.sh does), or build for another architecture where no script runs",
  );
}

/**
 * Capabilities the script keeps inside its user namespace when ramroot runs as root: what
 * `chown`, `chmod`, `adduser` and friends need on the root's files. Never CAP_SYS_ADMIN,
 * CAP_MKNOD, CAP_NET_* or CAP_SYS_PTRACE; and being in a user namespace, none of these
 * reaches beyond the sandbox's own mounts.
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
 * The bubblewrap command line for one script: only the staging root, bound as "/", its own
 * /proc (a new pid namespace) and a minimal /dev (null, zero, full, random, urandom, tty,
 * and /dev/console as another /dev/null), no network (a new, empty net namespace), new ipc
 * and uts namespaces, a new session, killed with ramroot (--die-with-parent; the pid
 * namespace takes every process the script started with it), PATH as apk sets it and
 * nothing else in the environment, cwd "/".
 */
export function sandboxArgs(root: string, command: string[], opts: { privileged: boolean }): string[] {
  return [
    "--unshare-ipc",
    "--unshare-pid",
    "--unshare-net",
    "--unshare-uts",
    "--unshare-cgroup-try",
    // Unprivileged, bwrap makes the user namespace itself and maps the caller to root.
    ...(opts.privileged
      ? ["--cap-drop", "ALL", ...SCRIPT_CAPABILITIES.flatMap((c) => ["--cap-add", c])]
      : ["--unshare-user", "--uid", "0", "--gid", "0"]),
    "--die-with-parent",
    "--new-session",
    "--bind",
    root,
    "/",
    "--proc",
    "/proc",
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `command` in the sandbox. As root, the sandbox's user namespace maps every uid and gid
 * to itself (written by this process before the sandbox starts: bwrap alone would map only
 * uid 0), so a script's `chown 1234:1234 f` lands on disk as apk's would, and is read back for
 * the image; its capabilities, though, count only inside the namespace (no mknod of a host
 * disk, no mount outside its own). Unprivileged, bwrap maps the caller to uid 0; a chown to
 * another id then fails as it would for apk run without root.
 */
async function runSandboxed(
  root: string,
  command: string[],
): Promise<{ exitCode?: number; output: string; shortMessage?: string }> {
  const bwrap = bwrapPath();
  const privileged = process.getuid?.() === 0;
  const args = sandboxArgs(root, command, { privileged });
  const options = { env: { PATH: SCRIPT_PATH }, extendEnv: false, cwd: root, reject: false, all: true } as const;
  if (!privileged) {
    const result = await execa(bwrap, args, { ...options, stdin: "ignore" });
    return { exitCode: result.exitCode, output: result.all ?? "", shortMessage: result.shortMessage };
  }
  // A user namespace first (unshare), held on a read of stdin until its maps are written.
  const child = execa("unshare", ["--user", "--", "/bin/sh", "-c", 'read -r go && exec "$@"', "sh", bwrap, ...args], {
    ...options,
    stdin: "pipe",
  });
  try {
    const pid = child.pid;
    if (pid === undefined) throw new Error("unshare did not start");
    const own = fs.readlinkSync("/proc/self/ns/user");
    let ready = false;
    for (let waited = 0; ; waited += 5) {
      let ns: string | undefined;
      try {
        ns = fs.readlinkSync(`/proc/${pid}/ns/user`);
      } catch {
        break; // unshare is gone: its exit code and message say why
      }
      if (ns !== own) {
        ready = true;
        break;
      }
      if (waited > 30_000) throw new Error("the script sandbox's user namespace did not appear within 30 s");
      await sleep(5);
    }
    if (ready) {
      fs.writeFileSync(`/proc/${pid}/uid_map`, "0 0 4294967295\n");
      fs.writeFileSync(`/proc/${pid}/gid_map`, "0 0 4294967295\n");
    }
    child.stdin?.end("go\n");
  } catch (err) {
    child.kill("SIGKILL");
    await child;
    throw err;
  }
  const result = await child;
  return { exitCode: result.exitCode, output: result.all ?? "", shortMessage: result.shortMessage };
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
