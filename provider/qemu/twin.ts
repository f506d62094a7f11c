/**
 * A machine twin in QEMU: the machine's boot disk (syslinux, A/B slots) plus a persistent data
 * disk, user-mode networking with SSH forwarded to 127.0.0.1:<port> only, the serial console
 * in a log file, reboots allowed (a reboot goes back through syslinux, as on the machine), and
 * optionally an emulated i6300esb watchdog that resets the machine when it stops being fed.
 * A stack whose ssh target is 127.0.0.1:<port> deploys to it exactly as to the real box.
 * Runs in the foreground (console on the terminal, Ctrl-A X quits) or detached with a pid file.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { renameDurablySync, tempNameFor } from "../atomic-file";
import { spawn } from "node:child_process";
import { execa } from "execa";
import { archInfo, type Arch } from "../arch";
import { ensureVarsStore, firmwareArgs } from "./firmware";
import { ConflictError, FieldError, HostError, MachineError, RamrootError, TargetError } from "../ramroot-error";

export interface TwinOptions {
  /** the boot disk image (MBR or superfloppy FAT with syslinux) */
  disk: string;
  /** the data disk image; made (ext4, labelled dataLabel) when missing */
  data: string;
  /** size of a new data disk, MiB (default 256) */
  dataSizeMiB?: number;
  /** filesystem label of a new data disk (default "data") */
  dataLabel?: string;
  /** host port forwarded to the machine's port 22, on 127.0.0.1 only */
  sshPort: number;
  /** the serial console is appended to this file */
  serialLog: string;
  /** guest memory, MiB (default 512) */
  memoryMiB?: number;
  /** an i6300esb watchdog whose expiry resets the machine */
  watchdog?: boolean;
  /** the machine's architecture (default x86_64): QEMU's binary, machine and CPU from the arch table */
  arch?: Arch;
  /**
   * boot through UEFI firmware (OVMF, AAVMF) instead of the PC BIOS; the twin's variable store
   * (its NVRAM: boot entries, BootNext) is `varsFile`, made from the firmware's on first start
   * and kept, as a machine keeps its own
   */
  uefi?: { varsFile: string };
}

/** Finds a free TCP port on 127.0.0.1 (the forwarded SSH port when none is given). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no free port on 127.0.0.1")),
      );
    });
  });
}

/**
 * Makes the data disk when it does not exist: a sparse file with an ext4 filesystem made by
 * mkfs.ext4 (no root, no loop device). An existing disk is never touched.
 */
export async function ensureDataDisk(file: string, sizeMiB = 256, label = "data"): Promise<{ created: boolean }> {
  if (fs.existsSync(file)) return { created: false };
  if (!Number.isInteger(sizeMiB) || sizeMiB < 16)
    throw new FieldError("data disk size", `got ${sizeMiB}; expected whole MiB, at least 16`);
  if (!/^[A-Za-z0-9_.-]{1,16}$/.test(label))
    throw new FieldError("data disk label", `got "${label}"; expected 1-16 letters, digits, _ . -`);
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const temp = tempNameFor(file);
  fs.writeFileSync(temp, "", { flag: "wx" });
  fs.truncateSync(temp, sizeMiB * 1024 * 1024);
  try {
    await execa("mkfs.ext4", ["-q", "-F", "-L", label, temp]);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    const e = err as { code?: string; stderr?: string; message: string };
    throw new HostError(
      `making the data disk ${file}: ${e.code === "ENOENT" ? "mkfs.ext4 is missing (install e2fsprogs)" : e.stderr?.trim() || e.message}`,
    );
  }
  renameDurablySync(temp, file); // mkfs.ext4 flushed what it wrote
  return { created: true };
}

/** The QEMU command line of the twin, without the console and daemon flags. */
export function twinArgs(opts: TwinOptions): string[] {
  const arch = opts.arch ?? "x86_64";
  const qemu = archInfo(arch).qemu;
  const args = [
    "-name",
    "ramroot-twin",
    "-machine",
    qemu.machine,
    ...(qemu.cpu ? ["-cpu", qemu.cpu] : []),
    "-m",
    String(opts.memoryMiB ?? 512),
    "-smp",
    "1",
    "-display",
    "none",
    // A reset ends QEMU, and the power-cycle loop starts it again (powerCycleLoop).
    ...(qemu.powerCycleOnReset ? ["-no-reboot"] : []),
    ...(opts.uefi ? firmwareArgs(arch, opts.uefi.varsFile) : []),
    // The boot disk first: SeaBIOS boots it (syslinux picks the slot), or UEFI firmware its ESP.
    "-drive",
    `file=${opts.disk},format=raw,if=none,id=boot`,
    "-device",
    "virtio-blk-pci,drive=boot,bootindex=0",
    "-drive",
    `file=${opts.data},format=raw,if=none,id=data`,
    "-device",
    "virtio-blk-pci,drive=data",
    // User-mode networking: DHCP from QEMU, SSH forwarded from 127.0.0.1 only.
    "-netdev",
    `user,id=net0,hostfwd=tcp:127.0.0.1:${opts.sshPort}-:22`,
    "-device",
    "virtio-net-pci,netdev=net0",
  ];
  if (opts.watchdog) args.push("-device", "i6300esb", "-action", "watchdog=reset");
  return args;
}

function check(opts: TwinOptions): void {
  if (!fs.existsSync(opts.disk))
    throw new TargetError(`boot disk ${opts.disk} does not exist; make one with \`ramroot disk create\``);
  if (!Number.isInteger(opts.sshPort) || opts.sshPort < 1 || opts.sshPort > 65535)
    throw new FieldError("ssh port", `got ${opts.sshPort}; expected 1-65535`);
  if (opts.arch === "aarch64" && !opts.uefi)
    throw new RamrootError(
      "input",
      "an aarch64 twin boots its disk through UEFI firmware only: give it a variable store (uefi)",
    );
}

/** The data disk and, under UEFI, the twin's own variable store, made when missing. */
async function prepare(opts: TwinOptions): Promise<void> {
  check(opts);
  await ensureDataDisk(opts.data, opts.dataSizeMiB, opts.dataLabel);
  if (opts.uefi) ensureVarsStore(opts.arch ?? "x86_64", opts.uefi.varsFile);
}

const qemuOf = (opts: TwinOptions) => archInfo(opts.arch ?? "x86_64").qemu;

export interface DetachedTwin {
  pid: number;
  pidFile: string;
}

/**
 * The shell loop that runs the QEMU of a twin whose resets are power cycles (the arch table's
 * powerCycleOnReset; QEMU has -no-reboot): when QEMU ends by itself and the console since the
 * firmware's last banner shows the kernel asking for a restart ("reboot: Restarting system", or
 * a panic's "Rebooting in N seconds"), it starts QEMU again on the same disks and variable store,
 * as a board's reset line cuts and restores power. Any other end (a poweroff, a QEMU error,
 * Ctrl-A X) ends the loop with QEMU's status; SIGTERM ends QEMU, then the loop.
 * Arguments: the serial log, then QEMU's binary and arguments.
 */
const POWER_CYCLE_LOOP = `log=$1; shift
exec 3<&0 # a background job's stdin would be /dev/null; QEMU keeps the terminal's (runTwin)
trap 'kill -TERM $q 2>/dev/null; wait $q; exit 143' TERM INT HUP
while :; do
  "$@" <&3 3<&- & q=$!
  wait $q; rc=$?
  [ $rc -eq 0 ] || exit $rc
  awk '/UEFI firmware \\(/ { boot = "" } { boot = boot $0 "\\n" } END { printf "%s", boot }' "$log" |
    grep -Eq 'reboot: Restarting system|Rebooting in [0-9]+ seconds' || exit 0
  echo "[ramroot twin] the machine reset itself: power-cycling QEMU" >> "$log"
done`;

/** The command that runs QEMU with `args`: QEMU itself, or the power-cycle loop around it. */
function qemuCommand(opts: TwinOptions, args: string[]): { file: string; args: string[] } {
  const qemu = qemuOf(opts);
  if (!qemu.powerCycleOnReset) return { file: qemu.binary, args };
  return {
    file: "sh",
    args: ["-c", POWER_CYCLE_LOOP, "ramroot-twin", path.resolve(opts.serialLog), qemu.binary, ...args],
  };
}

/**
 * Starts the twin in the background, the console going to the serial log: QEMU's -daemonize, or,
 * for a twin whose resets are power cycles, the power-cycle loop as a process of its own (the pid
 * file names the loop; stopping it stops QEMU, and QEMU's own messages go to the serial log).
 */
export async function startTwin(opts: TwinOptions, pidFile: string): Promise<DetachedTwin> {
  await prepare(opts);
  if (fs.existsSync(pidFile)) {
    const pid = Number(fs.readFileSync(pidFile, "utf8").trim());
    if (processAlive(pid))
      throw new ConflictError(`a twin already runs with pid ${pid} (${pidFile}); stop it with \`ramroot vm stop\``);
    fs.rmSync(pidFile, { force: true });
  }
  fs.mkdirSync(path.dirname(path.resolve(opts.serialLog)), { recursive: true });
  fs.mkdirSync(path.dirname(path.resolve(pidFile)), { recursive: true });
  const console = [
    "-chardev",
    `file,id=console,path=${path.resolve(opts.serialLog)},append=on`,
    "-serial",
    "chardev:console",
    "-monitor",
    "none",
  ];
  const qemu = qemuOf(opts);
  if (qemu.powerCycleOnReset) return startPowerCycled(opts, [...twinArgs(opts), ...console], pidFile);
  const args = [...twinArgs(opts), ...console, "-daemonize", "-pidfile", path.resolve(pidFile)];
  try {
    await execa(qemu.binary, args, { stdin: "ignore" });
  } catch (err) {
    const e = err as { code?: string; stderr?: string; message: string };
    throw new HostError(
      e.code === "ENOENT"
        ? `cannot start ${qemu.binary} (install ${qemu.debianPackage})`
        : `qemu failed: ${e.stderr?.trim() || e.message}`,
    );
  }
  const pid = Number(fs.readFileSync(pidFile, "utf8").trim());
  return { pid, pidFile };
}

/** The power-cycle loop, detached; a QEMU that fails at once (bad arguments, a missing binary) is reported. */
async function startPowerCycled(opts: TwinOptions, args: string[], pidFile: string): Promise<DetachedTwin> {
  const qemu = qemuOf(opts);
  const serialLog = path.resolve(opts.serialLog);
  const logFd = fs.openSync(serialLog, "a");
  const before = fs.fstatSync(logFd).size;
  const command = qemuCommand(opts, args);
  const loop = spawn(command.file, command.args, { detached: true, stdio: ["ignore", logFd, logFd] });
  fs.closeSync(logFd);
  const pid = loop.pid;
  if (pid === undefined) throw new HostError(`cannot start the twin's power-cycle loop (sh)`);
  let exited: number | null = null;
  loop.on("exit", (code) => (exited = code ?? 1));
  loop.unref();
  fs.writeFileSync(pidFile, `${pid}\n`);
  // QEMU refuses bad arguments and missing files within a second; the firmware's first words take longer.
  const deadline = Date.now() + 3000;
  while (exited === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (exited !== null) {
    fs.rmSync(pidFile, { force: true });
    const said = fs.readFileSync(serialLog, "utf8").slice(before).trim();
    throw new HostError(
      exited === 127
        ? `cannot start ${qemu.binary} (install ${qemu.debianPackage})`
        : `qemu failed (exit ${exited}): ${said || "no message"}`,
    );
  }
  return { pid, pidFile };
}

/** Runs the twin on this terminal: the serial console and QEMU's monitor share it (Ctrl-A X quits), and the console is also logged. */
export async function runTwin(opts: TwinOptions): Promise<number | null> {
  await prepare(opts);
  fs.mkdirSync(path.dirname(path.resolve(opts.serialLog)), { recursive: true });
  const args = [
    ...twinArgs(opts),
    "-chardev",
    `stdio,id=console,mux=on,signal=off,logfile=${path.resolve(opts.serialLog)},logappend=on`,
    "-serial",
    "chardev:console",
    "-mon",
    "chardev=console",
  ];
  const qemu = qemuOf(opts);
  const command = qemuCommand(opts, args);
  const child = spawn(command.file, command.args, { stdio: "inherit" });
  return new Promise((resolve, reject) => {
    child.on("error", (err) =>
      reject(new Error(`cannot start ${qemu.binary}: ${err.message} (install ${qemu.debianPackage})`)),
    );
    child.on("close", (code) => resolve(code));
  });
}

/**
 * True while the process runs. A QEMU that was killed (the power cut of a test, an OOM kill) is
 * a zombie until its parent reaps it, and a daemonized QEMU's parent may be slow to: a zombie
 * runs no machine, so it counts as gone (Linux's /proc says so; elsewhere signal 0 decides).
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; comm may hold spaces and parentheses.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return process.platform !== "linux";
  }
}

/**
 * Stops a detached twin: SIGTERM (QEMU exits as if the power were cut; the data disk is
 * whatever the guest last wrote), SIGKILL after `graceMs`. Returns false when none ran.
 */
export async function stopTwin(pidFile: string, graceMs = 10_000): Promise<boolean> {
  if (!fs.existsSync(pidFile)) return false;
  const pid = Number(fs.readFileSync(pidFile, "utf8").trim());
  if (!processAlive(pid)) {
    fs.rmSync(pidFile, { force: true });
    return false;
  }
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (processAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (processAlive(pid)) process.kill(pid, "SIGKILL");
  while (processAlive(pid)) await new Promise((r) => setTimeout(r, 50));
  fs.rmSync(pidFile, { force: true });
  return true;
}

/**
 * Waits until `pattern` has matched `count` times in the serial log (counted across reboots),
 * and returns the log. Rejects with the log's tail when `timeoutMs` passes first, or when the
 * pid file's QEMU is gone.
 */
export async function waitForConsole(
  serialLog: string,
  pattern: RegExp,
  opts: { count?: number; timeoutMs?: number; pidFile?: string } = {},
): Promise<string> {
  const wanted = opts.count ?? 1;
  const deadline = Date.now() + (opts.timeoutMs ?? 300_000);
  const global = new RegExp(pattern.source, pattern.flags.includes("g") ? pattern.flags : `${pattern.flags}g`);
  for (;;) {
    const log = fs.existsSync(serialLog) ? fs.readFileSync(serialLog, "utf8") : "";
    if ((log.match(global)?.length ?? 0) >= wanted) return log;
    const gone =
      opts.pidFile !== undefined &&
      !(fs.existsSync(opts.pidFile) && processAlive(Number(fs.readFileSync(opts.pidFile, "utf8").trim())));
    if (gone || Date.now() > deadline) {
      const tail = log.replace(/\r/g, "").split("\n").slice(-30).join("\n");
      throw new MachineError(
        `${gone ? "QEMU exited" : "timed out"} before ${pattern} showed ${wanted} time(s) on the console (${serialLog}); it ended with:\n${tail}`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
