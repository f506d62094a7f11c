/**
 * What an image is made of: the inputs of `AlpineImage` and of `ramroot build CONFIG`.
 * Validated once here, with errors that name the field, the value and what is accepted.
 */
import { z } from "zod";
import { userAppendSchema } from "../machine/kernel-append";
import { parseDependency } from "../apk/dependency";
import { ARCHES } from "../arch";
import { COMPRESSIONS, COMPRESSION_LEVELS, type Compression } from "./compress";

export const LATEST_RELEASE = "v3.24";
export const KERNEL_FLAVORS = ["lts", "virt", "none"] as const;
export const MICROCODES = ["intel", "amd", "none"] as const;
export const RUNLEVELS = ["sysinit", "boot", "default", "shutdown"] as const;
export type Runlevel = (typeof RUNLEVELS)[number];

/** The release's main and community repositories on Alpine's CDN. */
export function defaultRepositories(release: string): string[] {
  return ["main", "community"].map((r) => `https://dl-cdn.alpinelinux.org/alpine/${release}/${r}`);
}

/**
 * What Alpine's own diskless setup enables, so the machine comes up with devices, modules,
 * hostname, networking and syslog. Services named here that no package installed are skipped;
 * services the config names must exist.
 */
export const DEFAULT_SERVICES: Readonly<Record<Runlevel, readonly string[]>> = {
  sysinit: ["devfs", "dmesg", "mdev", "hwdrivers"],
  boot: ["modules", "hwclock", "hostname", "sysctl", "bootmisc", "syslog", "networking"],
  default: [],
  shutdown: ["mount-ro", "killprocs"],
};

const packageSpec = z.string().superRefine((spec, ctx) => {
  try {
    const dep = parseDependency(spec);
    if (dep.conflict) throw new Error("a conflict (!name) cannot be installed");
    if (dep.broken) throw new Error(`${JSON.stringify(dep.version)} is not a valid apk version`);
  } catch (err) {
    ctx.addIssue({
      code: "custom",
      input: spec,
      message: `expected a package name with an optional constraint such as "busybox" or "linux-lts>=6.12" (${(err as Error).message})`,
    });
  }
});

const absolutePath = z
  .string()
  .regex(/^\/[A-Za-z0-9._@+\/-]*$/, "expected an absolute path of letters, digits and . _ @ + - /, such as /data")
  .refine((p) => !p.split("/").includes(".."), 'expected a path without ".."');
const ipv4 = z
  .string()
  .regex(
    /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/,
    "expected an IPv4 address such as 192.168.1.1",
  );
const FILESYSTEMS = ["ext4", "xfs", "btrfs", "vfat"] as const;

/** The first NIC (or `interface`) by DHCP (busybox udhcpc), or a static address. */
export const networkSchema = z
  .strictObject({
    interface: z
      .string()
      .regex(/^[a-z][a-z0-9._-]{0,14}$/, "expected a network interface name such as eth0")
      .default("eth0"),
    mode: z.enum(["dhcp", "static"], { error: 'expected "dhcp" or "static"' }),
    /** static: address/prefix */
    address: z
      .string()
      .regex(
        /^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/,
        "expected an IPv4 address with its prefix length such as 192.168.1.10/24",
      )
      .optional(),
    gateway: ipv4.optional(),
    dns: z.array(ipv4).optional(),
  })
  .superRefine((n, ctx) => {
    if (n.mode === "static" && n.address === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["address"],
        input: n.address,
        message: 'expected an address such as 192.168.1.10/24 when mode is "static"',
      });
    if (n.mode === "dhcp" && (n.address !== undefined || n.gateway !== undefined || n.dns !== undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["mode"],
        input: n.mode,
        message: 'expected "static" when address, gateway or dns are given (DHCP supplies them)',
      });
    }
  });

/** The persistent data disk, mounted by filesystem label. */
export const dataDiskSchema = z.strictObject({
  label: z.string().regex(/^[A-Za-z0-9_.-]{1,16}$/, "expected a filesystem label of 1-16 letters, digits, _ . -"),
  mountpoint: absolutePath.default("/data"),
  fs: z.enum(FILESYSTEMS, { error: `expected one of ${FILESYSTEMS.join(", ")}` }).default("ext4"),
  options: z
    .string()
    .regex(/^[A-Za-z0-9=,._-]+$/, "expected mount options such as defaults,noatime")
    .default("defaults"),
});

/** The boot partition (FAT, syslinux), mounted where the boot target's path expects it. */
export const bootPartitionSchema = z
  .strictObject({
    label: z
      .string()
      .regex(
        /^[A-Z0-9_-]{1,11}$/,
        "expected a FAT label of 1-11 upper-case letters, digits, _ or - (ramroot disk create's default is RAMROOT)",
      )
      .optional(),
    uuid: z
      .string()
      .regex(/^[0-9A-F]{4}-[0-9A-F]{4}$/, "expected a FAT volume id such as 5241-4D52")
      .optional(),
    mountpoint: absolutePath.default("/media/boot"),
  })
  .refine((b) => (b.label === undefined) !== (b.uuid === undefined), {
    message: "expected exactly one of label or uuid",
  });

/** SSH host keys kept on the data disk: made once on the machine, linked into place at every boot. */
export const sshHostKeysSchema = z.strictObject({
  dir: absolutePath.optional(),
});

/**
 * The machine's health checks (the on-machine guard, provider/image/machine-services.ts): shell
 * commands that must all exit 0 within `timeoutSeconds` of the kernel starting. The result is
 * published at /run/ramroot/health on every boot; on a trial boot an image that is not healthy
 * in time reboots itself, and the next boot is DEFAULT.
 */
export const healthSchema = z.strictObject({
  checks: z
    .array(
      z.strictObject({
        name: z
          .string()
          .regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, "expected a check name of 1-32 lower-case letters, digits, _ or -"),
        command: z
          .string()
          .min(1, "expected a shell command that exits 0 when the check passes")
          .refine((v) => !v.includes("\0"), "expected no NUL byte"),
      }),
    )
    .min(1, "expected at least one check, e.g. {name: sshd, command: 'nc -z 127.0.0.1 22'}")
    .refine((checks) => new Set(checks.map((c) => c.name)).size === checks.length, "expected unique check names"),
  timeoutSeconds: z
    .number()
    .int("expected whole seconds")
    .min(10, "expected at least 10 seconds after the kernel starts")
    .max(86400, "expected at most 86400 seconds")
    .default(300),
  intervalSeconds: z
    .number()
    .int("expected whole seconds")
    .min(1, "expected at least 1 second")
    .max(3600, "expected at most 3600 seconds")
    .default(5),
  /** arm the machine's watchdog (/dev/watchdog) on a trial boot, so a hung kernel reboots too */
  watchdog: z.boolean().default(true),
});

const serviceName = z
  .string()
  .regex(/^-?[A-Za-z0-9._@+-]+$/, 'expected an OpenRC service name, or "-name" to drop a default');

export const imageConfigSchema = z
  .strictObject({
    release: z
      .string()
      .regex(/^(v\d+\.\d+|edge)$/, 'expected an Alpine release such as "v3.24" or "edge"')
      .default(LATEST_RELEASE)
      .describe("Alpine release"),
    arch: z
      .enum(ARCHES, { error: `expected one of ${ARCHES.join(", ")}` })
      .default("x86_64")
      .describe("CPU architecture"),
    repositories: z
      .array(z.string().min(1, "expected a repository URL or directory"))
      .min(1, "expected at least one repository")
      .optional()
      .describe(
        "repository URLs (https://, file://) or directories in Alpine's layout; default the release's main and community",
      ),
    /** trusted public keys: key files or directories of them; default: Alpine's pinned keys */
    keys: z
      .array(z.string().min(1))
      .optional()
      .describe("trusted public key files or directories; default Alpine's pinned keys"),
    allowUntrusted: z.boolean().default(false).describe("accept unsigned indexes"),
    /** build the image even when an install script fails (apk flags the package and goes on) or cannot run (another architecture the kernel cannot run); default: the build fails */
    allowScriptFailures: z.boolean().default(false),
    /** accept a remote index older than one seen before, or one offering a lower version of a package (replay/downgrade protection) */
    allowDowngrade: z.boolean().default(false),
    packages: z
      .array(packageSpec)
      .min(1, "expected at least one package, e.g. alpine-base")
      .describe("package names with optional constraints (linux-lts>=6.12)"),
    /** the overlay directory (root/): every file lands at the same path in the image */
    overlay: z
      .string()
      .min(1, "expected a directory path")
      .optional()
      .describe("directory whose files land at the same paths in the image"),
    files: z
      .array(
        z.strictObject({
          path: z
            .string()
            .regex(/^\/?[^\0]+$/, "expected an absolute path in the image")
            .refine((p) => !p.split("/").includes(".."), 'expected a path without ".."')
            .refine(
              (p) => p.split("/").some((part) => part !== "" && part !== "."),
              'expected a file path such as "/etc/motd", not the root itself',
            ),
          content: z.string(),
          mode: z.number().int().min(0).max(0o7777, "expected permission bits such as 0o644 (420)").optional(),
        }),
      )
      .default([])
      .describe("inline files {path, content, mode}"),
    kernel: z
      .enum(KERNEL_FLAVORS, { error: `expected one of ${KERNEL_FLAVORS.join(", ")}` })
      .default("lts")
      .describe("kernel flavor: adds linux-<flavor>"),
    /** firmware files to keep under /lib/firmware (names or globs); absent keeps all that packages installed */
    firmware: z
      .array(z.string().min(1))
      .optional()
      .describe("names or globs under /lib/firmware to keep; absent keeps all"),
    microcode: z
      .enum(MICROCODES, { error: `expected one of ${MICROCODES.join(", ")}` })
      .default("none")
      .describe("CPU microcode loaded before the initramfs"),
    services: z
      .partialRecord(z.enum(RUNLEVELS, { error: `expected a runlevel: ${RUNLEVELS.join(", ")}` }), z.array(serviceName))
      .default({})
      .describe("OpenRC services per runlevel, added to the diskless defaults; -name drops a default"),
    hostname: z
      .string()
      .regex(/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})?$/, "expected a host name (letters, digits, -; at most 63)")
      .optional()
      .describe("/etc/hostname"),
    cmdline: userAppendSchema.default("").describe("kernel command line for the boot entries"),
    /** also emit the image as a Unified Kernel Image (uki.efi); systemd-efistub is added for its stub */
    uki: z
      .boolean({ error: "expected true or false" })
      .default(false)
      .describe(
        "also emit a Unified Kernel Image: kernel, initramfs, command line and os-release in one EFI executable",
      ),
    /** sign the UKI for Secure Boot (secure-boot-signing.ts); the key is a secret, only the certificate's hash is in the plan */
    secureBoot: z
      .strictObject({
        privateKey: z.string().min(1, "expected the private key's PEM text, or the path of its PEM file").meta({
          secret: true,
          description:
            "the RSA private key that signs the UKI: PEM text or the path of a PEM file, a Pulumi secret; it reaches sbsign through a pipe and is never written",
        }),
        certificate: z
          .string()
          .min(1, "expected the certificate's PEM text, or the path of its PEM file")
          .describe("the X.509 certificate of that key (PEM text or path), enrolled in the machine's db"),
      })
      .optional()
      .describe("sign uki.efi with sbsign for UEFI Secure Boot; a slot write checks it with sbverify first"),
    compression: z
      .enum(COMPRESSIONS as [Compression, ...Compression[]], { error: `expected one of ${COMPRESSIONS.join(", ")}` })
      .default("gzip")
      .describe("initramfs compression"),
    /** the compression's level; default per compression (COMPRESSION_LEVELS) */
    compressionLevel: z
      .number({ error: "expected a whole number" })
      .int("expected a whole number")
      .optional()
      .describe("the compression's level; default per compression"),
    /** every timestamp in the image, seconds since 1970 */
    epoch: z
      .number()
      .int()
      .min(0, "expected seconds since 1970")
      .max(0xffffffff)
      .default(0)
      .describe("every timestamp in the image, seconds since 1970"),
    /** machine services (provider/image/machine-services.ts) */
    network: networkSchema.optional(),
    dataDisk: dataDiskSchema.optional(),
    bootPartition: bootPartitionSchema.optional(),
    sshHostKeys: sshHostKeysSchema.optional(),
    health: healthSchema.optional().describe("health checks the machine runs at boot; a trial boot needs them to pass"),
  })
  .superRefine((c, ctx) => {
    if (c.sshHostKeys === undefined) return;
    if (c.dataDisk === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["sshHostKeys"],
        input: c.sshHostKeys,
        message: "expected a dataDisk too: host keys are kept on it so they survive deploys",
      });
      return;
    }
    const dir = c.sshHostKeys.dir;
    if (dir !== undefined && !dir.startsWith(`${c.dataDisk.mountpoint.replace(/\/+$/, "")}/`)) {
      ctx.addIssue({
        code: "custom",
        path: ["sshHostKeys", "dir"],
        input: dir,
        message: `expected a directory under the data disk's mountpoint ${c.dataDisk.mountpoint}`,
      });
    }
  })
  .superRefine((c, ctx) => {
    if (c.uki && c.kernel === "none")
      ctx.addIssue({
        code: "custom",
        path: ["uki"],
        input: c.uki,
        message: 'expected a kernel (kernel: "lts" or "virt") with uki: a Unified Kernel Image holds one',
      });
    if (c.secureBoot !== undefined && !c.uki)
      ctx.addIssue({
        code: "custom",
        path: ["uki"],
        input: c.uki,
        message: "expected true with secureBoot: what is signed is the Unified Kernel Image",
      });
  })
  .superRefine((c, ctx) => {
    if (c.compressionLevel === undefined) return;
    if (c.compression === "none") {
      ctx.addIssue({
        code: "custom",
        path: ["compressionLevel"],
        input: c.compressionLevel,
        message: 'expected no level with compression "none"',
      });
      return;
    }
    const { min, max } = COMPRESSION_LEVELS[c.compression];
    if (c.compressionLevel < min || c.compressionLevel > max) {
      ctx.addIssue({
        code: "custom",
        path: ["compressionLevel"],
        input: c.compressionLevel,
        message: `expected ${min} to ${max} for ${c.compression}`,
      });
    }
  })
  .transform((c) => ({ ...c, repositories: c.repositories ?? defaultRepositories(c.release) }));

export type ImageConfig = z.output<typeof imageConfigSchema>;
export type ImageConfigInput = z.input<typeof imageConfigSchema>;

/** The package that ships systemd's EFI stub, which a UKI is made from (Alpine's community repository). */
export const EFI_STUB_PACKAGE = "systemd-efistub";

/** The world: the requested packages plus what the kernel flavor, microcode and uki choices imply. */
export function worldOf(config: ImageConfig): string[] {
  const world = [...config.packages];
  const names = new Set(world.map((p) => parseDependency(p).name));
  if (config.kernel !== "none" && !names.has(`linux-${config.kernel}`)) world.push(`linux-${config.kernel}`);
  if (config.microcode !== "none" && !names.has(`${config.microcode}-ucode`)) world.push(`${config.microcode}-ucode`);
  if (config.uki && !names.has(EFI_STUB_PACKAGE)) world.push(EFI_STUB_PACKAGE);
  return world;
}

/** Services per runlevel: the defaults, plus what the config adds, minus its "-name" entries. */
export function servicesOf(config: ImageConfig): Record<Runlevel, { name: string; required: boolean }[]> {
  const out = {} as Record<Runlevel, { name: string; required: boolean }[]>;
  for (const level of RUNLEVELS) {
    const asked = config.services[level] ?? [];
    const dropped = new Set(asked.filter((s) => s.startsWith("-")).map((s) => s.slice(1)));
    const added = asked.filter((s) => !s.startsWith("-"));
    const list = DEFAULT_SERVICES[level]
      .filter((s) => !dropped.has(s) && !added.includes(s))
      .map((name) => ({ name, required: false }));
    out[level] = [...list, ...added.map((name) => ({ name, required: true }))];
  }
  return out;
}
