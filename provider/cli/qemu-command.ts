import type { Command } from "commander";
import { bootQemu, logTail, type BootMedia } from "../qemu/boot";
import { heartbeat, terminalSink } from "../progress";
import { ARCHES, isArch } from "../arch";
import { FieldError, MachineError, RamrootError } from "../ramroot-error";

interface BootTestFlags {
  kernel?: string;
  initrd?: string[];
  append?: string;
  disk?: string;
  expect: string;
  timeout: string;
  quiet?: boolean;
  arch: string;
  uefi?: boolean;
}

/** `ramroot boot-test`: boot under QEMU and exit 0 only when the marker shows on the serial console. */
export function registerQemuCommands(program: Command): void {
  program
    .command("boot-test")
    .description("boot a kernel + initramfs, or a disk image through its bootloader, in QEMU and wait for a marker")
    .option("--kernel <file>", "kernel image to boot directly")
    .option("--initrd <file...>", "initramfs (and microcode) images, in order")
    .option("--append <cmdline>", "extra kernel command line", "rdinit=/sbin/init")
    .option("--disk <image>", "raw disk image to boot through its bootloader (or, with --uefi, its ESP) instead")
    .option("--arch <arch>", `the machine's architecture: ${ARCHES.join(", ")}`, "x86_64")
    .option("--uefi", "boot through UEFI firmware (OVMF, AAVMF) with a variable store of this run's own")
    .requiredOption("--expect <marker>", "text that proves the boot worked")
    .option("--timeout <seconds>", "give up after this many seconds", "120")
    .option("--quiet", "do not echo the console")
    .action(async (flags: BootTestFlags) => {
      const media = bootMediaFromFlags(flags);
      if (!isArch(flags.arch))
        throw new FieldError("--arch", `got "${flags.arch}"; expected one of ${ARCHES.join(", ")}`);
      const timeoutS = Number(flags.timeout);
      if (!Number.isFinite(timeoutS) || timeoutS <= 0) {
        throw new FieldError("--timeout", `"${flags.timeout}" is not a positive number of seconds`);
      }
      // With the console hidden (or sent to a file), say every 10 s that the wait goes on.
      const sink = terminalSink();
      const waiting =
        flags.quiet || !process.stdout.isTTY
          ? heartbeat((s) => sink(`waiting for "${flags.expect}": ${s} of at most ${timeoutS} s`, true))
          : undefined;
      const result = await bootQemu({
        media,
        arch: flags.arch,
        uefi: flags.uefi === true,
        marker: flags.expect,
        timeoutMs: timeoutS * 1000,
        onOutput: flags.quiet ? undefined : (chunk) => process.stdout.write(chunk),
      }).finally(() => waiting?.stop());
      if (result.found) {
        process.stderr.write(
          `\nramroot: marker "${flags.expect}" seen after ${(result.durationMs / 1000).toFixed(1)} s\n`,
        );
        return;
      }
      const why =
        result.reason === "timeout"
          ? `not seen within ${timeoutS} s`
          : `QEMU exited (code ${result.exitCode}) before it appeared`;
      if (flags.quiet) process.stderr.write(logTail(result.log) + "\n");
      throw new MachineError(`boot-test: marker "${flags.expect}" ${why}`);
    });
}

function bootMediaFromFlags(flags: BootTestFlags): BootMedia {
  if (flags.disk !== undefined && flags.kernel !== undefined) {
    throw new RamrootError(
      "input",
      "boot-test: give either --kernel (direct boot) or --disk (through the bootloader), not both",
    );
  }
  if (flags.disk !== undefined) return { kind: "disk", image: flags.disk };
  if (flags.kernel !== undefined)
    return { kind: "kernel", kernel: flags.kernel, initrd: flags.initrd, append: flags.append };
  throw new RamrootError("input", "boot-test: one of --kernel <file> or --disk <image> is required");
}
