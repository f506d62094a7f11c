/**
 * A boot partition, wherever it is, by what it can do. Code outside the factory (target.ts)
 * uses these capabilities and never asks which kind a target is.
 */
import type { PartitionVolume } from "./fat-volume-id";
import type { TargetSpec } from "./target-spec";

/** A command's outcome; a non-zero exit is not an exception. */
export interface CommandResult {
  exitCode: number;
  stdout: Buffer;
  stderr: string;
}

/** A POSIX shell on the machine that boots from the partition (ssh targets). */
export interface MachineShell {
  /** Runs a shell script there; `input` goes to its stdin. */
  run(script: string, input?: Buffer | string): Promise<CommandResult>;
}

/**
 * Paths (`rel`) are relative to the partition root, with "/" separators; ".." and absolute
 * paths are refused. Every write is atomic: a temporary name in the same directory, flushed,
 * verified by hash, then renamed over the old file.
 */
export interface BootTarget {
  readonly spec: TargetSpec;
  /** e.g. "local /mnt/boot", "image disk.img (partition 1)", "ssh root@nas:/media/boot"; never includes secrets. */
  describe(): string;
  /**
   * The file's bytes, or undefined when it does not exist. With `maxBytes` a larger file is
   * refused (a file the machine itself writes, such as its health report, is read bounded).
   */
  readFile(rel: string, opts?: { maxBytes?: number }): Promise<Buffer | undefined>;
  /** Temp name + fsync + rename, with a read-back check of the hash. Parent directories are created. */
  writeFileAtomic(rel: string, data: Buffer | string): Promise<void>;
  /** Copies a local file in atomically; resolves to the sha256 (hex) read back from the target. */
  copyInAtomic(rel: string, localFile: string, onProgress?: (done: number, total: number) => void): Promise<string>;
  /** sha256 (hex) of the file as stored on the target, or undefined when it does not exist. */
  sha256(rel: string): Promise<string | undefined>;
  /**
   * `sha256` of several files read together, in the order given; where a look costs a round
   * trip (ssh), one for all of them.
   */
  sha256Many?(rels: readonly string[]): Promise<(string | undefined)[]>;
  /** Names (not paths) in a directory, sorted; [] when the directory does not exist. */
  list(relDir: string): Promise<string[]>;
  /**
   * `list` of several directories read together, in the order given; where a look costs a round
   * trip (ssh: a process and a session on the machine each), one look for all of them.
   */
  listMany?(relDirs: readonly string[]): Promise<string[][]>;
  /** Renames a file or directory over another name in the same directory (atomic where the filesystem is), durably. */
  rename(fromRel: string, toRel: string): Promise<void>;
  /** Removes a file or a directory tree; fine when it is already gone. */
  remove(rel: string): Promise<void>;
  /**
   * Creates the directory `rel` (its parent must exist) only when nothing has that name: true
   * when this call created it, false when it was there. Atomic against every other writer that
   * uses it (mkdir(2); on disk images under a lock of the image file): what a lease stands on.
   */
  makeDirectoryExclusive(rel: string): Promise<boolean>;
  /**
   * Writes `data` into the existing file `rel` at byte `offset`, in place: the file keeps its
   * blocks (a boot loader may have recorded where they are, as syslinux's boot sector records
   * ldlinux.sys's sectors), flushed and read back. The file must already reach `offset + data.length`.
   */
  overwriteInPlace(rel: string, offset: number, data: Buffer): Promise<void>;
  /** The kernel command line of the machine running from this partition, when it can be known (ssh: /proc/cmdline). */
  runningCmdline(): Promise<string | undefined>;
  /**
   * The FAT volume (serial, label) the target's root is on, and the root's directory inside it,
   * read from the filesystem's first sector wherever it is (fat-volume-id.ts); undefined when
   * the root is not on a FAT filesystem (a plain directory standing in for one).
   */
  bootVolume(): Promise<PartitionVolume | undefined>;
  /** A shell on the machine that boots from this partition, when there is one (ssh targets). */
  readonly machine?: MachineShell;
  /** Releases what the target holds (scratch files, temp key files, ssh master connections). */
  close(): Promise<void>;
}

/** The error of a `readFile` whose file is larger than `maxBytes`. */
export function tooLarge(target: string, rel: string, maxBytes: number): Error {
  return new Error(`${target}: ${rel} is larger than the ${maxBytes} bytes read of it; refused`);
}

/** `target.sha256Many` where the target has it, else one `sha256` after another. */
export async function hashFiles(target: BootTarget, rels: readonly string[]): Promise<(string | undefined)[]> {
  if (target.sha256Many) return target.sha256Many(rels);
  const out: (string | undefined)[] = [];
  for (const rel of rels) out.push(await target.sha256(rel));
  return out;
}

/** `target.listMany` where the target has it, else one `list` after another. */
export async function listDirectories(target: BootTarget, relDirs: readonly string[]): Promise<string[][]> {
  if (target.listMany) return target.listMany(relDirs);
  const out: string[][] = [];
  for (const dir of relDirs) out.push(await target.list(dir));
  return out;
}
