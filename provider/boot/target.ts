import { z } from "zod";
import { parseInput } from "../input-error";
import { ImageTarget } from "./image-target";
import { LocalTarget } from "./local-target";
import { SshTarget } from "./ssh-target";

/** Where a boot partition is: a mounted directory, a FAT disk image file, or a directory on a remote machine. */
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
  path: nonEmpty.refine(noControl, "expected a disk image file path without control characters"),
  partition: z.number().int("expected a whole number").min(1, "expected an MBR partition number 1-4").max(4, "expected an MBR partition number 1-4").optional(),
});

const sshSchema = z.strictObject({
  kind: z.literal("ssh"),
  host: nonEmpty
    .refine((v) => /^[A-Za-z0-9._:%\-\[\]]+$/.test(v), "expected a host name, IP address or ~/.ssh/config alias")
    .refine((v) => noOption("host")(v) === true, 'a host must not start with "-"'),
  user: nonEmpty
    .refine((v) => /^[A-Za-z0-9._][A-Za-z0-9._\-]*$/.test(v), "expected a user name (letters, digits, . _ -, not starting with -)")
    .optional(),
  port: z.number().int("expected a whole number").min(1, "expected a TCP port 1-65535").max(65535, "expected a TCP port 1-65535").optional(),
  path: nonEmpty.refine((v) => v.startsWith("/") && noControl(v), "expected an absolute directory path on the remote machine"),
  privateKey: z.string().refine((v) => v.includes("PRIVATE KEY"), "expected the text of a private key (a PEM/OpenSSH block)").optional(),
  knownHostsFile: nonEmpty.optional(),
  strictHostKeyChecking: z.boolean().optional(),
  sshConfigFile: nonEmpty.optional(),
});

/** zod schema of a target; `parseTargetSpec` wraps it with errors that name field, value and what is accepted. */
export const targetSpecSchema: z.ZodType<TargetSpec> = z.discriminatedUnion("kind", [localSchema, imageSchema, sshSchema], {
  error: 'kind: expected one of "local", "image", "ssh"',
});

/** Validates untrusted input (CLI flags, Pulumi inputs) into a TargetSpec, or throws a clear error. */
export function parseTargetSpec(input: unknown): TargetSpec {
  return parseInput(targetSpecSchema, input, "boot target");
}

/**
 * A boot partition, wherever it is. Paths (`rel`) are relative to the partition root, with "/"
 * separators; ".." and absolute paths are refused. Every write is atomic: a temporary name in
 * the same directory, flushed, verified by hash, then renamed over the old file.
 */
export interface BootTarget {
  readonly spec: TargetSpec;
  /** e.g. "local /mnt/boot", "image disk.img (partition 1)", "ssh root@nas:/media/boot"; never includes secrets. */
  describe(): string;
  /** The file's bytes, or undefined when it does not exist. */
  readFile(rel: string): Promise<Buffer | undefined>;
  /** Temp name + fsync + rename, with a read-back check of the hash. Parent directories are created. */
  writeFileAtomic(rel: string, data: Buffer | string): Promise<void>;
  /** Copies a local file in atomically; resolves to the sha256 (hex) read back from the target. */
  copyInAtomic(rel: string, localFile: string, onProgress?: (done: number, total: number) => void): Promise<string>;
  /** sha256 (hex) of the file as stored on the target, or undefined when it does not exist. */
  sha256(rel: string): Promise<string | undefined>;
  /** Names (not paths) in a directory, sorted; [] when the directory does not exist. */
  list(relDir: string): Promise<string[]>;
  /** Renames a file over another in the same directory (atomic where the filesystem is), durably. */
  rename(fromRel: string, toRel: string): Promise<void>;
  /** Removes a file or a directory tree; fine when it is already gone. */
  remove(rel: string): Promise<void>;
  /** Releases what the target holds (temp key files, ssh master connections). */
  close(): Promise<void>;
}

/** Opens a target. The spec is validated here (the edge), so callers may pass untrusted input. */
export async function openTarget(input: TargetSpec): Promise<BootTarget> {
  const spec = parseTargetSpec(input);
  switch (spec.kind) {
    case "local":
      return LocalTarget.open(spec);
    case "image":
      return ImageTarget.open(spec);
    case "ssh":
      return SshTarget.open(spec);
  }
}

/** Opens a target for the length of `fn`, and closes it whatever happens. */
export async function withTarget<T>(spec: TargetSpec, fn: (target: BootTarget) => Promise<T>): Promise<T> {
  const target = await openTarget(spec);
  try {
    return await fn(target);
  } finally {
    await target.close();
  }
}
