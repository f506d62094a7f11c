/**
 * What a boot target is, as data: the spec of each kind, its zod schema (the one validation at
 * the edge) and the one place relative paths of non-ssh targets are resolved.
 */
import { z } from "zod";
import { parseInput } from "../input-error";
import * as path from "node:path";

/**
 * Where a boot partition is: a mounted directory, a FAT disk image file or block device (a whole
 * disk such as /dev/sdb or /dev/disk/by-id/..., or a partition such as /dev/sdb1), or a
 * directory on a remote machine.
 */
export type TargetSpec =
  | { kind: "local"; path: string }
  /** partition: 1-based MBR partition; absent = auto (superfloppy, or the first partition of an MBR disk). */
  | { kind: "image"; path: string; partition?: number }
  | {
      kind: "ssh";
      host: string;
      user?: string;
      port?: number;
      /** the boot partition's directory on the remote machine, e.g. /media/mmcblk0p1 */
      path: string;
      /** PEM/OpenSSH private key text, a secret: written to a 0600 temp file for the session only, never logged. */
      privateKey?: string;
      knownHostsFile?: string;
      /** default true: an unknown or changed host key is refused */
      strictHostKeyChecking?: boolean;
      sshConfigFile?: string;
    };

const noOption = (field: string) => (v: string) => !v.startsWith("-") || `${field} must not start with "-"`;
const nonEmpty = z.string().min(1, "expected a non-empty string");
const noControl = (v: string) => !/[\0\n\r]/.test(v);

const localSchema = z.strictObject({
  kind: z.literal("local"),
  path: nonEmpty.refine(noControl, "expected a directory path without control characters"),
});

const imageSchema = z.strictObject({
  kind: z.literal("image"),
  path: nonEmpty.refine(
    noControl,
    "expected a disk image file or block device path (/dev/sdX, /dev/disk/by-id/...) without control characters",
  ),
  partition: z
    .number()
    .int("expected a whole number")
    .min(1, "expected an MBR partition number 1-4")
    .max(4, "expected an MBR partition number 1-4")
    .optional(),
});

const sshSchema = z.strictObject({
  kind: z.literal("ssh"),
  host: nonEmpty
    .refine((v) => /^[A-Za-z0-9._:%\-\[\]]+$/.test(v), "expected a host name, IP address or ~/.ssh/config alias")
    .refine((v) => noOption("host")(v) === true, 'a host must not start with "-"'),
  user: nonEmpty
    .refine(
      (v) => /^[A-Za-z0-9._][A-Za-z0-9._\-]*$/.test(v),
      "expected a user name (letters, digits, . _ -, not starting with -)",
    )
    .optional(),
  port: z
    .number()
    .int("expected a whole number")
    .min(1, "expected a TCP port 1-65535")
    .max(65535, "expected a TCP port 1-65535")
    .optional(),
  path: nonEmpty.refine(
    (v) => v.startsWith("/") && noControl(v),
    "expected an absolute directory path on the remote machine",
  ),
  privateKey: z
    .string()
    .refine((v) => v.includes("PRIVATE KEY"), "expected the text of a private key (a PEM/OpenSSH block)")
    .optional()
    .meta({
      secret: true,
      description: "the private key text, a Pulumi secret: written to a 0600 file for the session only",
    }),
  knownHostsFile: nonEmpty.optional(),
  strictHostKeyChecking: z.boolean().optional(),
  sshConfigFile: nonEmpty.optional(),
});

/** zod schema of a target; `parseTargetSpec` wraps it with errors that name field, value and what is accepted. */
export const targetSpecSchema: z.ZodType<TargetSpec> = z.discriminatedUnion(
  "kind",
  [localSchema, imageSchema, sshSchema],
  {
    error: 'kind: expected one of "local", "image", "ssh"',
  },
);

/** Validates untrusted input (CLI flags, Pulumi inputs) into a TargetSpec, or throws a clear error. */
export function parseTargetSpec(input: unknown): TargetSpec {
  return parseInput(targetSpecSchema, input, "boot target");
}

/**
 * The spec with the path of a local or image target made absolute against `baseDir` (the
 * project directory), wherever the command runs from; for ssh, the local known_hosts and
 * config files (the remote path is remote and already absolute).
 */
export function resolveTargetSpec(spec: TargetSpec, baseDir: string): TargetSpec {
  if (spec.kind !== "ssh") return { ...spec, path: path.resolve(baseDir, spec.path) };
  // The remote path stays as it is; the local files ssh reads resolve against the project too.
  return {
    ...spec,
    ...(spec.knownHostsFile !== undefined ? { knownHostsFile: path.resolve(baseDir, spec.knownHostsFile) } : {}),
    ...(spec.sshConfigFile !== undefined ? { sshConfigFile: path.resolve(baseDir, spec.sshConfigFile) } : {}),
  };
}
