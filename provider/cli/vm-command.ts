import * as fs from "node:fs";
import * as path from "node:path";
import type { Command } from "commander";
import { parse as parseYaml } from "yaml";
import { findProjectDir, projectDirOr } from "../project-dir";
import { freePort, runTwin, startTwin, stopTwin, type TwinOptions } from "../qemu/twin";
import { ARCHES, isArch } from "../arch";
import { FieldError, RamrootError } from "../ramroot-error";

interface VmFlags {
  stack?: string;
  disk?: string;
  data?: string;
  dataSize: string;
  dataLabel: string;
  sshPort?: string;
  serialLog?: string;
  pidFile?: string;
  memory: string;
  watchdog?: boolean;
  detach?: boolean;
  arch: string;
  uefi?: boolean;
  vars?: string;
}

function wholeNumber(value: string, flag: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max)
    throw new FieldError(flag, `got "${value}"; expected a whole number from ${min} to ${max}`);
  return Number(value);
}

/** Where a twin keeps its state when no paths are given: .ramroot/vm/<name>/ in the project (else the working directory). */
function stateDir(name: string): string {
  return path.join(projectDirOr(process.cwd()), ".ramroot", "vm", name);
}

/**
 * The stack's boot disk: its `image` target's path, else `ramroot:twin.disk` in the project's
 * stacks/Pulumi.<stack>.yaml (a stack that deploys over ssh to the twin names the twin's disk
 * there). Relative paths mean paths in the project.
 */
function stackDisk(stack: string): string {
  const project = findProjectDir();
  const file = path.join(project, "stacks", `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file))
    throw new FieldError("--stack", `${file} does not exist; name a stack of this project or give --disk IMG`);
  const config =
    (parseYaml(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null)?.config ?? {};
  const target = config["ramroot:target"] as { kind?: string; path?: string } | undefined;
  if (target?.kind === "image" && typeof target.path === "string") return path.resolve(project, target.path);
  const twin = config["ramroot:twin"] as { disk?: unknown } | undefined;
  if (typeof twin?.disk === "string") return path.resolve(project, twin.disk);
  throw new RamrootError(
    "input",
    `--stack ${stack}: its target is not a disk image and it names no ramroot:twin.disk; give --disk IMG`,
  );
}

/** `ramroot vm`: the machine's twin in QEMU; `ramroot vm stop` stops a detached one. */
export function registerVmCommands(program: Command): void {
  program
    .command("vm")
    .argument("[action]", "stop: stop the twin started with --detach (found by --pid-file, --stack or --disk)")
    .description(
      "boot a machine twin in QEMU: boot disk + persistent data disk, SSH on 127.0.0.1:<port>, serial console logged (Ctrl-A X quits)",
    )
    .option("--stack <name>", "boot this stack's disk image (its image target, or ramroot:twin.disk)")
    .option("--disk <image>", "the boot disk image")
    .option("--data <image>", "the data disk image, made as ext4 when missing (default .ramroot/vm/<name>/data.img)")
    .option("--data-size <MiB>", "size of a new data disk", "256")
    .option("--data-label <label>", "filesystem label of a new data disk", "data")
    .option(
      "--ssh-port <port>",
      "host port on 127.0.0.1 forwarded to the machine's port 22 (default: a free port, printed)",
    )
    .option("--serial-log <file>", "the serial console is appended here (default .ramroot/vm/<name>/serial.log)")
    .option("--pid-file <file>", "with --detach: QEMU's pid (default .ramroot/vm/<name>/qemu.pid)")
    .option("--memory <MiB>", "guest memory", "512")
    .option("--watchdog", "add an i6300esb watchdog; when it expires the machine is reset")
    .option("--arch <arch>", `the machine's architecture: ${ARCHES.join(", ")}`, "x86_64")
    .option("--uefi", "boot through UEFI firmware (OVMF, AAVMF) instead of the PC BIOS; aarch64 always does")
    .option(
      "--vars <file>",
      "with UEFI: the twin's variable store (NVRAM), made when missing (default .ramroot/vm/<name>/vars.fd)",
    )
    .option("--detach", "run in the background; stop with `ramroot vm stop`")
    .action(async (action: string | undefined, flags: VmFlags) => {
      if (action !== undefined && action !== "stop")
        throw new RamrootError("input", `vm: got "${action}"; expected no action (start the twin) or "stop"`);
      if (action === "stop") {
        const name =
          flags.stack ?? (flags.disk !== undefined ? path.basename(flags.disk).replace(/\.[^.]*$/, "") : undefined);
        if (flags.pidFile === undefined && name === undefined)
          throw new RamrootError("input", "vm stop: give --pid-file <file>, --stack <name> or --disk <image>");
        const pidFile = path.resolve(flags.pidFile ?? path.join(stateDir(name!), "qemu.pid"));
        const stopped = await stopTwin(pidFile);
        process.stderr.write(
          stopped ? `[ramroot] twin stopped (${pidFile})\n` : `[ramroot] no twin runs for ${pidFile}\n`,
        );
        return;
      }
      if ((flags.stack === undefined) === (flags.disk === undefined))
        throw new RamrootError("input", "vm: give exactly one of --stack <name> or --disk <image>");
      const disk = flags.disk !== undefined ? path.resolve(flags.disk) : stackDisk(flags.stack!);
      const name = flags.stack ?? path.basename(disk).replace(/\.[^.]*$/, "");
      const state = stateDir(name);
      if (!isArch(flags.arch))
        throw new FieldError("--arch", `got "${flags.arch}"; expected one of ${ARCHES.join(", ")}`);
      const uefi = flags.uefi === true || flags.arch === "aarch64" || flags.vars !== undefined;
      const opts: TwinOptions = {
        arch: flags.arch,
        ...(uefi ? { uefi: { varsFile: path.resolve(flags.vars ?? path.join(state, "vars.fd")) } } : {}),
        disk,
        data: path.resolve(flags.data ?? path.join(state, "data.img")),
        dataSizeMiB: wholeNumber(flags.dataSize, "--data-size", 16, 1 << 20),
        dataLabel: flags.dataLabel,
        sshPort: flags.sshPort !== undefined ? wholeNumber(flags.sshPort, "--ssh-port", 1, 65535) : await freePort(),
        serialLog: path.resolve(flags.serialLog ?? path.join(state, "serial.log")),
        memoryMiB: wholeNumber(flags.memory, "--memory", 64, 65536),
        watchdog: flags.watchdog === true,
      };
      const where = `ssh on 127.0.0.1:${opts.sshPort}, data disk ${opts.data}, console log ${opts.serialLog}`;
      if (flags.detach) {
        const pidFile = path.resolve(flags.pidFile ?? path.join(state, "qemu.pid"));
        const twin = await startTwin(opts, pidFile);
        process.stdout.write(
          `${JSON.stringify({ pid: twin.pid, pidFile, sshPort: opts.sshPort, data: opts.data, serialLog: opts.serialLog })}\n`,
        );
        process.stderr.write(
          `[ramroot] twin of ${disk} running (pid ${twin.pid}): ${where}; \`ramroot vm stop --pid-file ${pidFile}\` stops it\n`,
        );
        return;
      }
      process.stderr.write(`[ramroot] twin of ${disk}: ${where}; Ctrl-A X quits\n`);
      await runTwin(opts);
    });
}
