/**
 * Every replace of a local file goes through here: the bytes go to a temporary name in the same
 * directory, are flushed (fsync), renamed over the final name, and the directory is flushed so
 * the rename survives a power cut. A failure at any step removes the temporary file and leaves
 * the old file as it was. One naming scheme for temporary files, everywhere (boot targets too).
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/** Marks a temporary name; a leftover with it is garbage from a killed writer. */
export const TEMP_MARK = ".tmp-";

/**
 * The temporary name a file is written under before it is renamed over `file`, in the same
 * directory (posix or native separators are kept). Short, so FAT without long names still
 * works, and the name says what it is: `<base>.tmp-<pid><random>`.
 */
export function tempNameFor(file: string): string {
  const slash = file.lastIndexOf("/");
  const dir = slash >= 0 ? file.slice(0, slash + 1) : "";
  const base = file.slice(slash + 1);
  return `${dir}${base}${TEMP_MARK}${process.pid.toString(36)}${randomBytes(3).toString("hex")}`;
}

/**
 * A temporary name in `file`'s directory that is itself an 8.3 name (`~t1a2b3c.tmp`), for FAT
 * through mtools: renaming a long name to a lower-case 8.3 name stores the 8.3 name in capitals,
 * renaming a lower-case 8.3 name keeps its case flags (so `layers/3f9c01ab.cd2` lists as written).
 * The `t` makes sure the base has a letter: an all-digit base carries no lower-case flag, and the
 * name renamed from it would list in capitals.
 */
export function shortTempNameFor(file: string): string {
  const slash = file.lastIndexOf("/");
  return `${slash >= 0 ? file.slice(0, slash + 1) : ""}~t${randomBytes(3).toString("hex")}.tmp`;
}

/** True for a name `tempNameFor` or `shortTempNameFor` makes. */
export function isTempName(name: string): boolean {
  const base = path.basename(name);
  return base.includes(TEMP_MARK) || /^~t[0-9a-f]{6}\.tmp$/i.test(base);
}

/** Directory fsync errors that mean "this filesystem does not do that" (vfat, some FUSE): not failures. */
function unsupportedSync(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "EINVAL" || code === "EISDIR" || code === "EPERM" || code === "EBADF" || code === "ENOTSUP";
}

/** fsync a directory so a rename or create in it is durable. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(dir, "r");
    await handle.sync();
  } catch (err) {
    if (!unsupportedSync(err)) throw err;
  } finally {
    await handle?.close();
  }
}

export function syncDirectorySync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch (err) {
    if (!unsupportedSync(err)) throw err;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export interface ReplaceOptions {
  /** mode of the new file (default 0644, before the umask) */
  mode?: number;
  /** create the parent directory when missing (default true) */
  mkdir?: boolean;
}

/**
 * Replaces `file` with what `fill` writes into the open temporary file. `fill` may return a
 * value (a hash of what it wrote, say); `verify` runs on the flushed temporary file before the
 * rename and may throw to keep the old file.
 */
export async function replaceFile<T>(
  file: string,
  fill: (handle: fs.promises.FileHandle, tempPath: string) => Promise<T>,
  opts: ReplaceOptions & { verify?: (tempPath: string, filled: T) => Promise<void> } = {},
): Promise<T> {
  const dir = path.dirname(file);
  if (opts.mkdir !== false) await fs.promises.mkdir(dir, { recursive: true });
  const temp = tempNameFor(file);
  try {
    const handle = await fs.promises.open(temp, "wx", opts.mode ?? 0o644);
    let filled: T;
    try {
      filled = await fill(handle, temp);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await opts.verify?.(temp, filled);
    await fs.promises.rename(temp, file);
    await syncDirectory(dir);
    return filled;
  } catch (err) {
    await fs.promises.rm(temp, { force: true });
    throw err;
  }
}

/** Replaces `file` with `data` atomically and durably. */
export async function writeFileAtomic(file: string, data: Buffer | string, opts: ReplaceOptions = {}): Promise<void> {
  await replaceFile(file, (handle) => handle.writeFile(data), opts);
}

/** Writes `data` under a temporary name, flushes it, renames it over `file` and flushes the directory. */
function replaceFileSync(file: string, data: Buffer | string, opts: ReplaceOptions): void {
  const dir = path.dirname(file);
  if (opts.mkdir !== false) fs.mkdirSync(dir, { recursive: true });
  const temp = tempNameFor(file);
  try {
    const fd = fs.openSync(temp, "wx", opts.mode ?? 0o644);
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
    syncDirectorySync(dir);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
}

/** The synchronous twin of `writeFileAtomic`, for code paths that are synchronous. */
export function writeFileAtomicSync(file: string, data: Buffer | string, opts: ReplaceOptions = {}): void {
  replaceFileSync(file, data, opts);
}

/**
 * Renames `from` over `to` (a file or a directory already flushed by its writer) and flushes
 * both directories: how a finished temporary tree is published.
 */
export async function renameDurably(from: string, to: string): Promise<void> {
  await fs.promises.rename(from, to);
  await syncDirectory(path.dirname(to));
  if (path.dirname(from) !== path.dirname(to)) await syncDirectory(path.dirname(from));
}

export function renameDurablySync(from: string, to: string): void {
  fs.renameSync(from, to);
  syncDirectorySync(path.dirname(to));
  if (path.dirname(from) !== path.dirname(to)) syncDirectorySync(path.dirname(from));
}
