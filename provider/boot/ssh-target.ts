import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { spawn, spawnSync } from "node:child_process";
import { execa } from "execa";
import { tempNameFor } from "../atomic-file";
import { openScratchDir } from "../scratch-dir";
import { sha256File } from "../file-hash";
import { type BootTarget, type CommandResult, type MachineShell, tooLarge } from "./boot-target";
import type { PartitionVolume } from "./fat-volume-id";
import { parseVolumeProbe, volumeProbeScript } from "./volume-probe";
import type { TargetSpec } from "./target-spec";
import { RemoteShell, REMOTE_SHELL_LOOP } from "./remote-shell";
import { shellQuote } from "./shell-quote";
import { targetRelPath } from "./target-path";
import { InternalError, TargetError } from "../ramroot-error";

type SshSpec = Extract<TargetSpec, { kind: "ssh" }>;

/** Exit code the remote scripts use for "no such file". */
const MISSING = 3;
/** Exit code of a read through the shell of a file larger than SHELL_OUTPUT_MAX. */
const TOO_LARGE = 7;
/** Bytes a read sends back through the session's shell; a larger file is read on a channel of its own. */
const SHELL_OUTPUT_MAX = 8 << 20;

const SESSION_PREFIX = "ramroot-ssh-";
/** Seconds an idle master connection stays after its last command: bounded, so a killed deploy leaves none. */
export const CONTROL_PERSIST_SECONDS = 5;

/** Seconds the session's agent keeps the key, whatever happens to this process (ssh-add -t). */
const AGENT_KEY_SECONDS = 60;
/** The exit code of AGENT_SCRIPT when ssh-add refuses the key. */
const AGENT_REFUSED_KEY = 97;
/**
 * Run by ssh-agent as its command ($0: where the public key goes; "$@": the master's ssh
 * arguments): the key from stdin into the agent, its public half out to select it, the master
 * started, the key deleted from the agent and the public half from the disk.
 */
const AGENT_SCRIPT = [
  `ssh-add -q -t ${AGENT_KEY_SECONDS} - || exit ${AGENT_REFUSED_KEY}`,
  `ssh-add -L > "$0" || exit ${AGENT_REFUSED_KEY}`,
  'ssh "$@"; rc=$?',
  'ssh-add -D >/dev/null 2>&1; rm -f "$0"',
  "exit $rc",
].join("\n");

/**
 * A boot directory on another machine, through the system's OpenSSH client: `~/.ssh/config`,
 * the agent and known_hosts work as they do for `ssh` itself. Host keys are checked strictly by
 * default. One master connection (ControlMaster) carries every command of the session.
 *
 * Nothing usable outlives the process, however it ends. A private key given as text never
 * lands on disk: a private ssh-agent of the session holds it while the master authenticates
 * (see startMaster); it never appears in arguments or messages. The master ends on close, on
 * exit and on SIGINT/SIGTERM/SIGHUP (exit-cleanup.ts), and by itself after
 * CONTROL_PERSIST_SECONDS without a command, so a SIGKILLed deploy leaves no live master: its
 * socket goes with it, and the empty session directory is swept by the next open. A master that
 * idled out is started again for the next command.
 */
export class SshTarget implements BootTarget {
  private readonly running = new Set<{ kill(signal: NodeJS.Signals): boolean }>();
  private readonly controlPath: string;
  /** One master start at a time. */
  private starting: Promise<void> | undefined;
  /** The remote shell that runs the session's commands (remote-shell.ts), started on first use. */
  private shell: RemoteShell | undefined;

  readonly machine: MachineShell = { run: (script, input) => this.runRemote(script, input) };

  private constructor(
    readonly spec: SshSpec,
    private readonly session: string,
    private readonly baseArgs: string[],
    /** The master told to exit, the directory (agent, socket) removed: also on every exit path. */
    private readonly dropSession: () => void,
  ) {
    this.controlPath = path.join(session, "cm");
  }

  static async open(spec: SshSpec): Promise<SshTarget> {
    const args: string[] = [];
    const session = await openScratchDir(SESSION_PREFIX, {
      beforeRemove: (dir) => {
        if (fs.existsSync(path.join(dir, "cm")))
          spawnSync("ssh", [...args, "-O", "exit", "--", spec.host], { stdio: "ignore", timeout: 5000 });
      },
    });
    args.push(
      "-o",
      "BatchMode=yes",
      "-o",
      `StrictHostKeyChecking=${spec.strictHostKeyChecking === false ? "accept-new" : "yes"}`,
    );
    // A machine that is rebooting behind a port forward (a NAT, QEMU's user network) accepts the
    // TCP connection but sends no banner: without a limit, ssh waits for it forever.
    args.push("-o", "ConnectTimeout=30");
    if (spec.sshConfigFile !== undefined) args.unshift("-F", spec.sshConfigFile);
    if (spec.knownHostsFile !== undefined) args.push("-o", `UserKnownHostsFile=${spec.knownHostsFile}`);
    if (spec.port !== undefined) args.push("-p", String(spec.port));
    if (spec.user !== undefined) args.push("-l", spec.user);
    args.push("-o", `ControlPath=${path.join(session.dir, "cm")}`);
    const target = new SshTarget(spec, session.dir, args, session.drop);
    try {
      await target.startMaster();
    } catch (err) {
      target.dropSession();
      throw err;
    }
    return target;
  }

  describe(): string {
    return `ssh ${this.spec.user ? `${this.spec.user}@` : ""}${this.spec.host}${this.spec.port ? `:${this.spec.port}` : ""}:${this.spec.path}`;
  }

  /** A master connection, started again when the last one idled out. */
  private async ensureMaster(): Promise<void> {
    if (fs.existsSync(this.controlPath)) return;
    this.starting ??= this.startMaster().finally(() => (this.starting = undefined));
    await this.starting;
  }

  /**
   * The master connection: authenticates once (and checks the host key), then backgrounds
   * itself. A `privateKey` never touches the disk: it goes through a pipe into an ssh-agent of
   * this session alone (its socket in the 0700 session directory), which holds it for at most
   * AGENT_KEY_SECONDS and only while the master authenticates (`ssh-add -D` after, and the agent
   * ends within seconds of its command); only its public half is written, to select it.
   */
  private async startMaster(): Promise<void> {
    traceSsh("connect");
    const log = path.join(this.session, "master.log");
    const publicKey = path.join(this.session, "identity.pub");
    const master = [
      ...this.baseArgs,
      "-o",
      "ControlMaster=yes",
      "-o",
      `ControlPersist=${CONTROL_PERSIST_SECONDS}`,
      "-f",
      "-N",
      "--",
      this.spec.host,
    ];
    const withKey = this.spec.privateKey !== undefined;
    const agent = path.join(this.session, "agent");
    const [command, args] = withKey
      ? [
          "ssh-agent",
          [
            ...["-a", agent, "/bin/sh", "-c", AGENT_SCRIPT, publicKey],
            ...["-o", `IdentityAgent=${agent}`, "-o", "IdentitiesOnly=yes", "-i", publicKey, ...master],
          ],
        ]
      : ["ssh", master];
    const fd = fs.openSync(log, "w", 0o600);
    try {
      // stdout/stderr go to a file, not a pipe: the backgrounded master keeps them open.
      // node's spawn, not execa: execa would pipe the output, and the master would hold the pipe open.
      const child = spawn(command, args, { stdio: [withKey ? "pipe" : "ignore", fd, fd] });
      if (withKey) {
        child.stdin!.on("error", () => {});
        const key = this.spec.privateKey!;
        child.stdin!.end(key.endsWith("\n") ? key : `${key}\n`);
      }
      const exitCode = await new Promise<number | null>((resolve, reject) => {
        child.on("error", (err) =>
          reject(
            (err as NodeJS.ErrnoException).code === "ENOENT"
              ? new Error(`${command} is missing: install openssh-client`)
              : err,
          ),
        );
        child.on("exit", (code) => resolve(code));
      });
      if (exitCode === AGENT_REFUSED_KEY) {
        const why = fs.readFileSync(log, "utf8").trim();
        throw new TargetError(
          `${this.describe()}: the privateKey is not a key ssh-add accepts${why ? `: ${why}` : ""}`,
          "give the private key's own text (OpenSSH or PEM, without a passphrase) as the target's privateKey",
        );
      }
      if (exitCode !== 0) {
        const why = fs.readFileSync(log, "utf8").trim() || `ssh exited ${exitCode}`;
        throw new TargetError(
          `${this.describe()}: cannot connect: ${why}`,
          "check the target's host, port and user, and that sshd there accepts this key (`ssh -p PORT USER@HOST true` with it must work)",
        );
      }
    } finally {
      fs.closeSync(fd);
      await fs.promises.rm(publicKey, { force: true });
      await fs.promises.rm(log, { force: true });
    }
  }

  /** Absolute remote path of a target-relative path. */
  remotePath(rel: string): string {
    const normal = targetRelPath(rel);
    const root = this.spec.path.replace(/\/+$/, "") || "/";
    return normal === "" ? root : `${root === "/" ? "" : root}/${normal}`;
  }

  /**
   * Runs a POSIX shell script on the remote machine: through the session's one remote shell (one
   * round trip, remote-shell.ts), or, for a stream or a large input, on an ssh channel of its own
   * over the same master connection. `input` is piped to its stdin. Resolves with the exit code
   * and output; never rejects on a non-zero exit.
   */
  async runRemote(script: string, input?: Buffer | string | fs.ReadStream): Promise<CommandResult> {
    await this.ensureMaster();
    if (!(input instanceof fs.ReadStream) && RemoteShell.fits(input)) {
      if (!this.shell?.alive) {
        const child = spawn(
          "ssh",
          [...this.baseArgs, "-o", "ControlMaster=no", "--", this.spec.host, REMOTE_SHELL_LOOP],
          {
            stdio: ["pipe", "pipe", "pipe"],
          },
        );
        this.running.add(child);
        child.on("close", () => this.running.delete(child));
        this.shell = new RemoteShell(child, this.describe());
        traceSsh("shell");
      }
      traceSsh("exchange", script);
      return this.shell.run(script, input);
    }
    return this.runOnChannel(script, input);
  }

  /** Runs a script on an ssh channel of its own (over the master): for bytes too many for the shell's framing. */
  private async runOnChannel(script: string, input?: Buffer | string | fs.ReadStream): Promise<CommandResult> {
    await this.ensureMaster();
    traceSsh("channel", script);
    const args = [...this.baseArgs, "-o", "ControlMaster=no", "--", this.spec.host, script];
    const common = { encoding: "buffer", reject: false, stripFinalNewline: false, maxBuffer: 1 << 30 } as const;
    const child = execa("ssh", args, { ...common, stdin: "pipe" });
    this.running.add(child);
    if (input instanceof fs.ReadStream) input.pipe(child.stdin);
    else child.stdin.end(input);
    // A remote command that exits before reading all input closes the pipe: not an error by itself.
    child.stdin.on("error", () => {});
    try {
      const result = await child;
      const stderr = Buffer.from(result.stderr).toString("utf8");
      if (result.exitCode === 255 || result.isTerminated) {
        throw new TargetError(
          `${this.describe()}: ssh failed${result.isTerminated ? ` (killed by ${result.signal})` : ""}: ${stderr.trim() || "connection lost"}`,
        );
      }
      return { exitCode: result.exitCode ?? 1, stdout: Buffer.from(result.stdout), stderr };
    } finally {
      this.running.delete(child);
    }
  }

  /** Kills the ssh processes of the commands in flight (SIGKILL); their operations fail and leave old files in place. */
  cancel(): void {
    for (const child of this.running) child.kill("SIGKILL");
  }

  private async check(
    script: string,
    what: string,
    input?: Buffer | string | fs.ReadStream,
  ): Promise<Buffer | undefined> {
    return this.checked(await this.runRemote(script, input), what);
  }

  /** The output of a command that succeeded, undefined when it said MISSING; else an error naming `what`. */
  private checked(result: CommandResult, what: string): Buffer | undefined {
    if (result.exitCode === MISSING) return undefined;
    if (result.exitCode !== 0)
      throw new TargetError(`${this.describe()}: ${what} failed (exit ${result.exitCode}): ${result.stderr.trim()}`);
    return result.stdout;
  }

  async readFile(rel: string, opts: { maxBytes?: number } = {}): Promise<Buffer | undefined> {
    const file = shellQuote(this.remotePath(rel));
    const read = opts.maxBytes === undefined ? `exec cat -- ${file}` : `exec head -c ${opts.maxBytes + 1} -- ${file}`;
    // Through the shell a reply is staged in a file on the machine (in its RAM): a large file is
    // read on a channel of its own instead.
    const size = `n=$(stat -c %s -- ${file} 2>/dev/null || wc -c < ${file}); [ "$n" -le ${SHELL_OUTPUT_MAX} ] || exit ${TOO_LARGE}`;
    const result = await this.runRemote(`if [ -f ${file} ]; then ${size}; ${read}; else exit ${MISSING}; fi`);
    const data =
      result.exitCode === TOO_LARGE
        ? this.checked(await this.runOnChannel(`${read}`), `reading ${rel}`)
        : this.checked(result, `reading ${rel}`);
    if (data && opts.maxBytes !== undefined && data.length > opts.maxBytes)
      throw tooLarge(this.describe(), rel, opts.maxBytes);
    return data;
  }

  async sha256(rel: string): Promise<string | undefined> {
    const file = shellQuote(this.remotePath(rel));
    const out = await this.check(
      `if [ -f ${file} ]; then sha256sum < ${file}; else exit ${MISSING}; fi`,
      `hashing ${rel}`,
    );
    return out === undefined ? undefined : parseSha256(out.toString("utf8"), rel);
  }

  /** One remote command for all: a line per file, its sha256sum line or "-" when it does not exist. */
  async sha256Many(rels: readonly string[]): Promise<(string | undefined)[]> {
    if (rels.length === 0) return [];
    const script = rels
      .map((rel) => {
        const file = shellQuote(this.remotePath(rel));
        return `if [ -f ${file} ]; then sha256sum < ${file} || exit 1; else echo -; fi`;
      })
      .join("; ");
    const out = await this.check(script, `hashing ${rels.join(", ")}`);
    const lines = (out?.toString("utf8") ?? "").split("\n").filter((l) => l !== "");
    if (lines.length !== rels.length)
      throw new TargetError(`${this.describe()}: hashing ${rels.length} files printed ${lines.length} lines`);
    return lines.map((line, i) => (line === "-" ? undefined : parseSha256(line, rels[i]!)));
  }

  async list(relDir: string): Promise<string[]> {
    const dir = shellQuote(this.remotePath(relDir));
    const out = await this.check(`if [ -d ${dir} ]; then ls -1A -- ${dir}; fi`, `listing ${relDir || "/"}`);
    return (out?.toString("utf8") ?? "")
      .split("\n")
      .filter((n) => n !== "")
      .sort();
  }

  /** One remote command for all: each directory's names follow a line "/<index>" ("/" is in no name). */
  async listMany(relDirs: readonly string[]): Promise<string[][]> {
    const script = relDirs
      .map((rel, i) => {
        const dir = shellQuote(this.remotePath(rel));
        return `echo /${i}; if [ -d ${dir} ]; then ls -1A -- ${dir} || exit 1; fi`;
      })
      .join("; ");
    const out = await this.check(script, `listing ${relDirs.map((d) => d || "/").join(", ")}`);
    const lists: string[][] = relDirs.map(() => []);
    let current: string[] | undefined;
    for (const line of (out?.toString("utf8") ?? "").split("\n")) {
      const marker = /^\/(\d+)$/.exec(line);
      if (marker) current = lists[Number(marker[1])];
      else if (line !== "") current?.push(line);
    }
    return lists.map((names) => names.sort());
  }

  async remove(rel: string): Promise<void> {
    if (targetRelPath(rel) === "") throw new InternalError(`remove: refusing to remove the root of ${this.describe()}`);
    // Synced like every other change on the partition: a released lease (or a removed file) must
    // stay gone when the machine loses power right after the deploy.
    await this.check(`rm -rf -- ${shellQuote(this.remotePath(rel))} && sync`, `removing ${rel}`);
  }

  async rename(fromRel: string, toRel: string): Promise<void> {
    const from = this.remotePath(fromRel);
    const to = this.remotePath(toRel);
    if (path.posix.dirname(from) !== path.posix.dirname(to))
      throw new InternalError(`rename: ${fromRel} and ${toRel} are in different directories; expected one directory`);
    await this.check(
      `set -e; [ -e ${shellQuote(from)} ]; [ ! -d ${shellQuote(to)} ]; mv -f -- ${shellQuote(from)} ${shellQuote(to)}; sync`,
      `renaming ${fromRel} over ${toRel}`,
    );
  }

  async writeFileAtomic(rel: string, data: Buffer | string): Promise<void> {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    await this.replace(rel, bytes.length, createHash("sha256").update(bytes).digest("hex"), bytes);
  }

  async copyInAtomic(
    rel: string,
    localFile: string,
    onProgress?: (done: number, total: number) => void,
  ): Promise<string> {
    const total = (await fs.promises.stat(localFile)).size;
    const expected = await sha256File(localFile);
    if (expected === undefined) throw new TargetError(`${localFile} disappeared while it was being sent`);
    const stream = fs.createReadStream(localFile, { highWaterMark: 1 << 20 });
    let done = 0;
    onProgress?.(0, total);
    stream.on("data", (chunk) => {
      done += chunk.length;
      onProgress?.(done, total);
    });
    return this.replace(rel, total, expected, stream);
  }

  /**
   * The remote side of an atomic replace, in one script: the bytes go to a temporary name in the
   * same directory; the size and sha256 are checked there (a cut stream is a short file, never a
   * replacement); then sync, rename, sync, and the file is hashed again under its final name.
   * The temporary file is removed on any failure.
   */
  private async replace(rel: string, size: number, expected: string, input: Buffer | fs.ReadStream): Promise<string> {
    const normal = targetRelPath(rel);
    if (normal === "") throw new InternalError("path: got the target root; expected a file path");
    const final = shellQuote(this.remotePath(normal));
    const temp = shellQuote(this.remotePath(tempNameFor(normal)));
    const dir = shellQuote(path.posix.dirname(this.remotePath(normal)));
    const script = [
      "set -e",
      "umask 022",
      `t=${temp}`,
      `trap 'rm -f -- "$t"' EXIT`,
      `if [ -d ${final} ]; then echo "is a directory" >&2; exit 4; fi`,
      `mkdir -p -- ${dir}`,
      `cat > ${temp}`,
      `got=$(wc -c < ${temp} | tr -d ' ')`,
      `if [ "$got" != ${size} ]; then echo "received $got of ${size} bytes" >&2; exit 5; fi`,
      `sum=$(sha256sum < ${temp} | cut -d' ' -f1)`,
      `if [ "$sum" != ${expected} ]; then echo "received bytes hash to $sum, expected ${expected}" >&2; exit 6; fi`,
      "sync",
      `mv -f -- ${temp} ${final}`,
      "sync",
      `sha256sum < ${final}`,
    ].join("\n");
    const out = await this.check(script, `writing ${normal}`, input);
    const readBack = parseSha256(out?.toString("utf8") ?? "", normal);
    if (readBack !== expected)
      throw new TargetError(`${this.describe()}: ${normal} read back as sha256 ${readBack} but ${expected} was sent`);
    return readBack;
  }

  async makeDirectoryExclusive(rel: string): Promise<boolean> {
    const dir = shellQuote(this.remotePath(rel));
    const result = await this.runRemote(
      `if mkdir -- ${dir} 2>/dev/null; then sync; exit 0; elif [ -e ${dir} ]; then exit ${MISSING}; else mkdir -- ${dir}; fi`,
    );
    if (result.exitCode === 0) return true;
    if (result.exitCode === MISSING) return false;
    throw new TargetError(
      `${this.describe()}: creating ${rel} failed (exit ${result.exitCode}): ${result.stderr.trim()}`,
    );
  }

  /** `dd conv=notrunc` on the machine (busybox has it), then the bytes are read back. */
  async overwriteInPlace(rel: string, offset: number, data: Buffer): Promise<void> {
    const file = shellQuote(this.remotePath(rel));
    const end = offset + data.length;
    const result = await this.runRemote(
      `[ "$(($(wc -c < ${file})))" -ge ${end} ] || exit ${MISSING}; dd of=${file} bs=1 seek=${offset} count=${data.length} conv=notrunc 2>/dev/null && sync && dd if=${file} bs=1 skip=${offset} count=${data.length} 2>/dev/null`,
      data,
    );
    if (result.exitCode === MISSING)
      throw new TargetError(`${this.describe()}: ${rel} is shorter than the ${end} bytes an in-place write needs`);
    if (result.exitCode !== 0 || !result.stdout.equals(data))
      throw new TargetError(
        `${this.describe()}: writing ${data.length} bytes into ${rel} in place failed (exit ${result.exitCode}): ${result.stderr.trim() || "it reads back differently"}`,
      );
  }

  /** The mount holding the boot directory on the machine and its device's first sector: one remote command (volume-probe.ts). */
  async bootVolume(): Promise<PartitionVolume | undefined> {
    const result = await this.runRemote(volumeProbeScript(this.remotePath("")));
    return parseVolumeProbe(result.exitCode, result.stdout);
  }

  async runningCmdline(): Promise<string | undefined> {
    const result = await this.runRemote("cat /proc/cmdline");
    return result.exitCode === 0 ? result.stdout.toString("utf8") : undefined;
  }

  async close(): Promise<void> {
    this.shell?.end();
    this.cancel();
    if (fs.existsSync(this.controlPath))
      await execa("ssh", [...this.baseArgs, "-O", "exit", "--", this.spec.host], { reject: false, stdin: "ignore" });
    this.dropSession();
  }
}

/**
 * With RAMROOT_SSH_TRACE set to a file, one line per remote event is appended to it: "connect"
 * (a master connection: TCP, key exchange, authentication), "shell" (the session's remote shell
 * started), "exchange" (a command through it: one round trip), "channel" (a command on a channel
 * of its own: a file's bytes). What the bench and the tests count.
 */
function traceSsh(event: "connect" | "shell" | "exchange" | "channel", script?: string): void {
  const file = process.env.RAMROOT_SSH_TRACE;
  const what = script === undefined ? "" : ` ${script.replace(/\s+/g, " ").slice(0, 100)}`;
  if (file) fs.appendFileSync(file, `${event}${what}\n`);
}

function parseSha256(text: string, rel: string): string {
  const match = /^([0-9a-f]{64})\b/.exec(text.trim());
  if (!match?.[1])
    throw new TargetError(`sha256sum of ${rel} printed ${JSON.stringify(text.slice(0, 80))}; expected a hex digest`);
  return match[1];
}
