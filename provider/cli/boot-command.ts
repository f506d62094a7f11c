import * as fs from "node:fs";
import type { Command } from "commander";
import { createDisk, parseDiskCreateOptions } from "../boot/disk-create";
import { schemeOf } from "../boot/schemes/registry";
import { promote, switchBootConfig } from "../boot/switch-config";
import { withLease, type Lease } from "../boot/lease";
import { assertLabelBootable, readSlot, slotEntry } from "../boot/slot";
import { layersOfSizes } from "../boot/layer-store";
import { writeSlotChecked } from "../deploy/slot-guard";
import { ukiCmdlineOf } from "../image/uki-cmdline";
import { openTarget, parseTargetSpec, type BootTarget, type TargetSpec } from "../boot/target";
import { openStack, stackTarget } from "./stack-command";
import { FieldError, RamrootError, TargetError } from "../ramroot-error";

export interface TargetFlags {
  /** the stack whose target is used when no --dir, --image or --ssh is given */
  stack: string;
  /** the stack's machine (AbSystem name) whose target is used; default: its only one */
  machine?: string;
  cwd?: string;
  dir?: string;
  image?: string;
  partition?: string;
  ssh?: string;
  port?: string;
  identity?: string;
  knownHosts?: string;
  sshConfig?: string;
}

/** The target flags; without --dir, --image or --ssh the verb works on the stack's target, as `status` does. */
export function addTargetOptions(cmd: Command): Command {
  return cmd
    .option("--stack <name>", "the stack whose target to use when no --dir, --image or --ssh is given", "demo")
    .option("--machine <name>", "the stack's machine whose target to use (default: the stack's only one)")
    .option("--cwd <dir>", "a directory in the Pulumi project (default: this one)")
    .option("--dir <path>", "a mounted boot partition")
    .option("--image <file>", "a FAT disk image file")
    .option("--partition <n>", "MBR partition of --image (default: superfloppy or the first FAT partition)")
    .option("--ssh <[user@]host:/path>", "a remote machine's boot directory, through OpenSSH")
    .option("--port <n>", "ssh port")
    .option("--identity <file>", "ssh private key file (default: ~/.ssh/config and the agent)")
    .option("--known-hosts <file>", "known_hosts file to check the host key against")
    .option("--ssh-config <file>", "ssh config file");
}

function int(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new FieldError(flag, `got "${value}"; expected a whole number`);
  return Number(value);
}

/** The target the flags name: --dir, --image or --ssh (at most one), else the stack's (its ramroot:target). */
export async function targetOf(flags: TargetFlags): Promise<TargetSpec> {
  if (flags.dir !== undefined || flags.image !== undefined || flags.ssh !== undefined)
    return targetSpecFromFlags(flags);
  const { stack, projectDir } = await openStack(flags);
  return stackTarget(stack, projectDir, flags.machine);
}

/** The target named by --dir, --image or --ssh (exactly one), validated like any other input. */
function targetSpecFromFlags(flags: TargetFlags): TargetSpec {
  const given = [flags.dir, flags.image, flags.ssh].filter((v) => v !== undefined);
  if (given.length !== 1)
    throw new RamrootError(
      "input",
      "target: give one of --dir <path>, --image <file> or --ssh <[user@]host:/path>, or none for the stack's",
    );
  if (flags.dir !== undefined) return parseTargetSpec({ kind: "local", path: flags.dir });
  if (flags.image !== undefined) {
    const partition = int(flags.partition, "--partition");
    return parseTargetSpec({ kind: "image", path: flags.image, ...(partition !== undefined ? { partition } : {}) });
  }
  const match = /^(?:([^@]+)@)?([^:]+):(\/.*)$/.exec(flags.ssh ?? "");
  if (!match) throw new FieldError("--ssh", `got "${flags.ssh}"; expected [user@]host:/absolute/path`);
  const port = int(flags.port, "--port");
  return parseTargetSpec({
    kind: "ssh",
    host: match[2],
    path: match[3],
    ...(match[1] !== undefined ? { user: match[1] } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(flags.identity !== undefined ? { privateKey: fs.readFileSync(flags.identity, "utf8") } : {}),
    ...(flags.knownHosts !== undefined ? { knownHostsFile: flags.knownHosts } : {}),
    ...(flags.sshConfig !== undefined ? { sshConfigFile: flags.sshConfig } : {}),
  });
}

async function withTarget<T>(flags: TargetFlags, use: (target: BootTarget) => Promise<T>): Promise<T> {
  const target = await openTarget(await targetOf(flags));
  try {
    return await use(target);
  } finally {
    await target.close();
  }
}

/** A target for a command that writes: under the target's lease for the whole command. */
async function withWriteTarget<T>(
  flags: TargetFlags,
  what: string,
  use: (target: BootTarget, lease: Lease) => Promise<T>,
): Promise<T> {
  return withTarget(flags, (target) =>
    withLease(target, { owner: `ramroot ${what}`, log: (m) => process.stderr.write(`${m}\n`) }, (lease) =>
      use(target, lease),
    ),
  );
}

/** Refuses to make `label` DEFAULT or boot-once unless its files are there and match their slot's manifest. */
async function assertBootable(target: BootTarget, label: string): Promise<void> {
  const config = await (await schemeOf(target)).readConfig(target);
  if (!config)
    throw new TargetError(`${target.describe()}: no boot config`, "write one first (ramroot syslinux write)");
  await assertLabelBootable(target, config.spec, label, config.path);
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** `ramroot disk create`, `ramroot slot write|show`, `ramroot syslinux show|write|set-default|once|clear-once`. */
export function registerBootCommands(program: Command): void {
  const disk = program.command("disk").description("bootable disks: image files and block devices");
  disk
    .command("create")
    .description(
      "make a bootable FAT disk with syslinux and empty slot directories: an image file to write to an SD card or USB stick, or the stick itself (a block device, with --yes)",
    )
    .argument("<out>", "image file to write, or a block device (/dev/sdX, /dev/disk/by-id/..., or a partition)")
    .option("--size <MiB>", "image size in MiB (required for a file; on a device the FAT's size, default all of it)")
    .option(
      "--layout <layout>",
      "mbr (syslinux mbr.bin + one active partition, the default) or superfloppy; a partition device is always superfloppy",
    )
    .option(
      "--scheme <scheme>",
      "syslinux (BIOS, the default) or uefi (an EFI system partition with systemd-boot from Debian's systemd-boot-efi)",
    )
    .option("--arch <arch>", "with --scheme uefi: whose systemd-boot, x86_64 (default) or aarch64")
    .option(
      "--secure-boot-key <file>",
      "with --scheme uefi and --secure-boot-cert: sign systemd-boot with this RSA private key (PEM), for firmware with Secure Boot on",
    )
    .option("--secure-boot-cert <file>", "the certificate (PEM) of --secure-boot-key, the one the firmware's db holds")
    .option("--slots <names>", "comma-separated slot directories", "a,b")
    .option("--volume-id <hex>", "FAT volume id and MBR disk signature (8 hex digits; default: a random one)")
    .option("--label <label>", "FAT volume label")
    .option("--force", "replace an existing file (it may hold deployed slots)")
    .option("--yes", "erase and write a block device (run without it first to see its model, size and serial)")
    .action(
      async (
        out: string,
        flags: {
          size?: string;
          layout?: string;
          scheme?: string;
          arch?: string;
          secureBootKey?: string;
          secureBootCert?: string;
          slots: string;
          volumeId?: string;
          label?: string;
          force?: boolean;
          yes?: boolean;
        },
        cmd: Command,
      ) => {
        // An image file needs a size; a block device (a /dev path, as disk-create.ts tells them apart) has one.
        if (flags.size === undefined && !out.startsWith("/dev/"))
          cmd.error(
            "required option '--size <MiB>' not specified (an image file needs one; a block device has its own)",
          );
        if (flags.volumeId !== undefined && !/^[0-9a-fA-F]{1,8}$/.test(flags.volumeId))
          throw new FieldError("--volume-id", `got "${flags.volumeId}"; expected up to 8 hex digits`);
        if ((flags.secureBootKey === undefined) !== (flags.secureBootCert === undefined))
          throw new FieldError(
            flags.secureBootKey === undefined ? "--secure-boot-key" : "--secure-boot-cert",
            "got nothing; expected both --secure-boot-key and --secure-boot-cert (the key and its certificate), or neither",
          );
        const sizeMiB = int(flags.size, "--size");
        const opts = parseDiskCreateOptions({
          output: out,
          ...(sizeMiB !== undefined ? { sizeMiB } : {}),
          ...(flags.layout !== undefined ? { layout: flags.layout } : {}),
          ...(flags.scheme !== undefined ? { scheme: flags.scheme } : {}),
          ...(flags.arch !== undefined ? { arch: flags.arch } : {}),
          ...(flags.secureBootKey !== undefined && flags.secureBootCert !== undefined
            ? { secureBoot: { privateKey: flags.secureBootKey, certificate: flags.secureBootCert } }
            : {}),
          slots: flags.slots.split(",").filter((s) => s !== ""),
          ...(flags.volumeId !== undefined ? { volumeId: Number.parseInt(flags.volumeId, 16) } : {}),
          ...(flags.label !== undefined ? { label: flags.label } : {}),
          ...(flags.force ? { force: true } : {}),
          ...(flags.yes ? { yes: true } : {}),
        });
        const result = await createDisk(opts);
        for (const note of result.notes ?? []) process.stderr.write(`note: ${note}\n`);
        print(result);
      },
    );

  const slot = program.command("slot").description("A/B boot slots on a boot target");
  addTargetOptions(
    slot
      .command("write")
      .description("copy kernel, initramfs (and microcode) into a slot: staged, verified by sha256, then renamed in")
      .requiredOption("--slot <name>", "slot to write")
      .requiredOption("--kernel <file>", "kernel image")
      .requiredOption("--initramfs <file>", "initramfs image")
      .option("--microcode <file>", "microcode initramfs")
      .option(
        "--layer-sizes <bytes,...>",
        "the initramfs is these layers (compressed sizes, in order): a layered slot, the layers kept in the partition's store",
      )
      .option("--image-id <id>", "image id for the manifest", "unknown")
      .option("--plan-id <id>", "plan id for the manifest", "unknown"),
  ).action(
    async (
      flags: TargetFlags & {
        slot: string;
        kernel: string;
        initramfs: string;
        microcode?: string;
        layerSizes?: string;
        imageId: string;
        planId: string;
      },
    ) => {
      const layers =
        flags.layerSizes === undefined
          ? undefined
          : await layersOfSizes(
              flags.initramfs,
              flags.layerSizes.split(",").map((n) => (/^\d+$/.test(n.trim()) ? Number(n) : NaN)),
            );
      await withWriteTarget(flags, `slot write --slot ${flags.slot}`, async (target, lease) => {
        const files = {
          kernel: flags.kernel,
          initramfs: flags.initramfs,
          ...(flags.microcode !== undefined ? { microcode: flags.microcode } : {}),
        };
        print(
          await writeSlotChecked(
            target,
            {
              slot: flags.slot,
              files,
              ...(layers ? { layers } : {}),
              manifest: { imageId: flags.imageId, planId: flags.planId },
              beforeCommit: () => lease.assertHeld(target),
            },
            (m) => process.stderr.write(`${m}\n`),
          ),
        );
      });
    },
  );
  addTargetOptions(
    slot.command("show").description("what a slot holds, re-hashed").requiredOption("--slot <name>", "slot to read"),
  ).action(async (flags: TargetFlags & { slot: string }) => {
    await withTarget(flags, async (target) =>
      print((await readSlot(target, flags.slot)) ?? { slot: flags.slot, empty: true }),
    );
  });

  const syslinux = program.command("syslinux").description("the syslinux config and one-time boots on a boot target");
  addTargetOptions(
    syslinux.command("show").description("the config syslinux will read, parsed, and any pending one-time boot"),
  ).action(async (flags: TargetFlags) => {
    await withTarget(flags, async (target) => {
      const scheme = await schemeOf(target);
      const config = await scheme.readConfig(target);
      print({
        scheme: scheme.name,
        path: config?.path,
        config: config?.spec,
        bootOnce: await scheme.readBootOnce(target).catch(() => undefined),
      });
    });
  });
  addTargetOptions(
    syslinux
      .command("write")
      .description("write a config with one entry per slot (atomic replace)")
      .requiredOption("--default <label>", "DEFAULT label")
      .option("--slots <names>", "comma-separated slots, one LABEL each", "a,b")
      .option("--append <cmdline>", "kernel command line", "rdinit=/sbin/init console=ttyS0 panic=5")
      .option("--timeout <deciseconds>", "TIMEOUT", "0")
      .option("--microcode", "slots carry a microcode image"),
  ).action(
    async (
      flags: TargetFlags & { default: string; slots: string; append: string; timeout: string; microcode?: boolean },
      command: Command,
    ) => {
      await withWriteTarget(flags, "syslinux write", async (target, lease) => {
        const entries = [];
        for (const s of flags.slots.split(",").filter((n) => n !== "")) {
          const manifest = (await readSlot(target, s))?.manifest;
          const uki = manifest?.files.uki;
          if (uki) {
            // A Secure Boot slot: its entry boots the slot's signed UKI, whose baked command line is
            // the only one its kernel gets (the stub ignores the entry's under Secure Boot); an entry
            // of its kernel and initrds would be refused by the firmware.
            const bytes = await target.readFile(uki.path);
            if (!bytes) throw new TargetError(`slot ${s}: its manifest names ${uki.path}, which is missing`);
            const baked = ukiCmdlineOf(bytes, `${target.describe()}: ${uki.path}`);
            if (command.getOptionValueSource("append") === "cli")
              process.stderr.write(
                `note: slot ${s} boots a signed UKI: its command line is the one baked into it, not --append\n`,
              );
            entries.push({
              ...slotEntry(s, { microcode: false, uki: true, append: "", menuLabel: `slot ${s}` }),
              append: baked,
            });
            continue;
          }
          // A layered slot's entry loads its layers, as its manifest names them.
          entries.push(
            slotEntry(s, {
              microcode: flags.microcode === true,
              append: flags.append,
              menuLabel: `slot ${s}`,
              layers: manifest?.layers,
            }),
          );
        }
        const spec = { defaultLabel: flags.default, timeout: int(flags.timeout, "--timeout") ?? 0, entries };
        print(
          await switchBootConfig(target, spec, {
            lease,
            onStaleOnce: (stale) =>
              process.stderr.write(`cleared a pending one-time boot of ${stale}: the new config has no such label\n`),
          }),
        );
      });
    },
  );
  addTargetOptions(
    syslinux.command("set-default").description("make LABEL the DEFAULT (promote)").argument("<label>"),
  ).action(async (label: string, flags: TargetFlags) => {
    await withWriteTarget(flags, `syslinux set-default ${label}`, async (target) => {
      await assertBootable(target, label);
      print(await promote(target, label));
    });
  });
  addTargetOptions(syslinux.command("once").description("boot LABEL on the next boot only").argument("<label>")).action(
    async (label: string, flags: TargetFlags) => {
      await withWriteTarget(flags, `syslinux once ${label}`, async (target) => {
        await assertBootable(target, label);
        const scheme = await schemeOf(target);
        await scheme.setBootOnce(target, label);
        print({ bootOnce: await scheme.readBootOnce(target) });
      });
    },
  );
  addTargetOptions(syslinux.command("clear-once").description("cancel a pending one-time boot")).action(
    async (flags: TargetFlags) => {
      await withWriteTarget(flags, "syslinux clear-once", async (target) => {
        const scheme = await schemeOf(target);
        await scheme.clearBootOnce(target);
        print({ bootOnce: await scheme.readBootOnce(target) });
      });
    },
  );
}
