import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { archInfo, type Arch } from "../arch";
import { copyVarsStore, firmwareArgs } from "./firmware";
import { InternalError, RamrootError } from "../ramroot-error";

/**
 * What to boot: a kernel and initramfs directly, or a disk image through its own bootloader
 * (syslinux under the PC BIOS) or, with UEFI firmware, the EFI executable its ESP holds.
 */
export type BootMedia =
  { kind: "kernel"; kernel: string; initrd?: string | string[]; append?: string } | { kind: "disk"; image: string };

export interface BootOptions {
  media: BootMedia;
  /** Text that proves the boot worked; the run ends as soon as it appears on the serial console. */
  marker?: string;
  /** Give up after this long (default 120 s, generous: QEMU runs without KVM here). */
  timeoutMs?: number;
  /** Guest memory in MiB (default 512). */
  memoryMiB?: number;
  /** Pass -no-reboot (default true). A trial boot that must fall back by itself needs reboots allowed. */
  noReboot?: boolean;
  /** Stop once the marker has been seen this many times (default 1). Counts across reboots. */
  markerCount?: number;
  /** Called with every chunk of console output as it arrives. */
  onOutput?: (chunk: string) => void;
  /** The machine's architecture (default x86_64): QEMU's binary, machine, CPU and console come from the arch table. */
  arch?: Arch;
  /**
   * Boot through UEFI firmware (OVMF on x86_64, AAVMF on aarch64) with a variable store of its
   * own. Without it x86_64 boots through the PC BIOS and aarch64 only boots a kernel directly.
   */
  uefi?: boolean;
  /** With uefi: the variable store this run uses and keeps. Default: a fresh copy of the firmware's, removed afterwards. */
  varsFile?: string;
  /** Extra QEMU arguments. */
  extraArgs?: string[];
  /** Use KVM when /dev/kvm is usable (default false: results must not depend on it). */
  kvm?: boolean;
}

export interface BootResult {
  /** True when the marker was seen (markerCount times). */
  found: boolean;
  /** Why the run ended. */
  reason: "marker" | "timeout" | "exit";
  /** QEMU's exit code when it ended by itself, null otherwise. */
  exitCode: number | null;
  /** Everything the serial console printed. */
  log: string;
  durationMs: number;
}

/** The QEMU command line for a boot, exported so the CLI and docs show what is run. */
export function qemuArgs(opts: BootOptions): string[] {
  const arch = archInfo(opts.arch ?? "x86_64");
  const args = [
    "-machine",
    arch.qemu.machine,
    "-display",
    "none",
    "-serial",
    "stdio",
    "-monitor",
    "none",
    "-m",
    String(opts.memoryMiB ?? 512),
    "-smp",
    "1",
  ];
  if (opts.noReboot ?? true) args.push("-no-reboot");
  if (opts.kvm) args.push("-enable-kvm", "-cpu", "host");
  else if (arch.qemu.cpu) args.push("-cpu", arch.qemu.cpu);
  if (opts.uefi) {
    if (opts.varsFile === undefined) throw new InternalError("a UEFI boot needs its own variable store (varsFile)");
    args.push(...firmwareArgs(opts.arch ?? "x86_64", opts.varsFile));
  }
  const media = opts.media;
  if (media.kind === "kernel") {
    args.push("-kernel", media.kernel);
    const initrds = media.initrd === undefined ? [] : Array.isArray(media.initrd) ? media.initrd : [media.initrd];
    if (initrds.length > 0) args.push("-initrd", initrds.join(","));
    // The serial console is how the harness listens; panic=-1 turns a kernel panic into a reboot,
    // which -no-reboot turns into QEMU exiting, so a broken image ends the run at once.
    const append = [`console=${arch.qemu.console}`, ...arch.qemu.kernelArgs, "panic=-1", media.append ?? ""]
      .join(" ")
      .trim();
    args.push("-append", append);
  } else if (opts.uefi) {
    // The firmware finds the ESP and boots its EFI/BOOT/BOOT<arch>.EFI (or what its variables say).
    args.push(
      "-drive",
      `file=${media.image},format=raw,if=none,id=disk`,
      "-device",
      "virtio-blk-pci,drive=disk,bootindex=0",
    );
  } else {
    if (opts.arch === "aarch64")
      throw new RamrootError("input", "an aarch64 machine boots a disk through UEFI firmware only: set uefi (AAVMF)");
    args.push("-drive", `file=${media.image},format=raw,if=ide`, "-boot", "c");
  }
  args.push(...(opts.extraArgs ?? []));
  return args;
}

function countOccurrences(haystack: string, needle: string): number {
  let count = 0;
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) count++;
  return count;
}

/**
 * Boots under QEMU with the serial console on stdio and waits for a marker. The result is
 * judged by the marker, never by QEMU's exit code. QEMU is always killed before returning.
 */
export async function bootQemu(opts: BootOptions): Promise<BootResult> {
  if (!opts.uefi || opts.varsFile !== undefined) return runQemu(opts);
  // The run's own variable store, gone with the run.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-uefi-vars-"));
  try {
    const varsFile = path.join(dir, "vars.fd");
    copyVarsStore(opts.arch ?? "x86_64", varsFile);
    return await runQemu({ ...opts, varsFile });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function runQemu(opts: BootOptions): Promise<BootResult> {
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const wanted = opts.markerCount ?? 1;
  const qemu = archInfo(opts.arch ?? "x86_64").qemu;
  const child = spawn(qemu.binary, qemuArgs(opts), { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  let stderr = "";
  return new Promise<BootResult>((resolve, reject) => {
    let settled = false;
    const finish = (reason: BootResult["reason"], exitCode: number | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(lineGrace);
      if (child.exitCode === null) child.kill("SIGKILL");
      const found = opts.marker !== undefined && countOccurrences(log, opts.marker) >= wanted;
      resolve({ found, reason, exitCode, log, durationMs: Date.now() - started });
    };
    const timer = setTimeout(() => finish("timeout", null), timeoutMs);
    let lineGrace: NodeJS.Timeout | undefined;
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      log += chunk;
      opts.onOutput?.(chunk);
      if (opts.marker !== undefined && countOccurrences(log, opts.marker) >= wanted) {
        // Let the marker's line finish (it often carries values after the marker), briefly.
        if (/\n/.test(log.slice(log.lastIndexOf(opts.marker)))) finish("marker", null);
        else lineGrace ??= setTimeout(() => finish("marker", null), 2000);
      }
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`cannot start ${qemu.binary}: ${err.message} (install ${qemu.debianPackage})`));
    });
    child.on("close", (code) => {
      if (settled) return;
      if (code !== 0 && log.length === 0 && stderr.length > 0) {
        settled = true;
        clearTimeout(timer);
        reject(new Error(`qemu failed (exit ${code}): ${stderr.trim()}`));
        return;
      }
      finish("exit", code);
    });
  });
}

/** The last lines of a console log, for error messages. */
export function logTail(log: string, lines = 25): string {
  return log.replace(/\r/g, "").split("\n").slice(-lines).join("\n");
}
