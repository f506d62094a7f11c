/**
 * Every write, delete, mkdir, chmod, link and copy into a staging root (the tree an image or
 * `ramroot apk install` is built in) goes through here. Paths are resolved inside the root
 * with openat2's RESOLVE_IN_ROOT semantics done in userspace: component by component with
 * lstat, a symlink's absolute target taken from the root (as the target system sees it once
 * booted), a ".." that would climb above the root refused. So a package shipping
 * `lib/apk/db -> /home/me` or `boot -> ../../..` makes ramroot's own later steps write inside
 * the root or fail; never on the host. The last component is never followed by writes (a
 * symlink standing there is replaced, not written through).
 *
 * As root, what is made here is owned by the sandbox's root (host id 2147352576, see
 * sandbox-ids.ts), as the packages' own files are: install scripts can change it, and it is
 * packed as root's.
 *
 * The walk is not atomic against a concurrent writer in the tree; nothing runs in the root
 * while ramroot works on it (install scripts run to completion first, in their sandbox).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { SANDBOX_ID_BASE } from "./sandbox-ids";

const MAX_SYMLINK_HOPS = 40;

/** Whether made entries are given the sandbox root's host id (lchown needs root). */
const OWN_MADE = process.getuid?.() === 0;

/** Gives an entry just made the sandbox root as owner (before any chmod: chown clears setuid). */
function ownMade(host: string): void {
  if (OWN_MADE) fs.lchownSync(host, SANDBOX_ID_BASE, SANDBOX_ID_BASE);
}

export class RootEscapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RootEscapeError";
  }
}

export interface StagingStat {
  host: string;
  stat: fs.Stats;
}

export class StagingRoot {
  /** `dir` is the root on the host; `label` names it in errors (default the directory). */
  constructor(
    readonly dir: string,
    readonly label: string = dir,
  ) {}

  private split(rel: string): string[] {
    if (rel.includes("\0"))
      throw new RootEscapeError(`${this.label}: path ${JSON.stringify(rel)} contains a NUL byte; refused`);
    return rel.split("/").filter((p) => p !== "" && p !== ".");
  }

  /**
   * The host path of `rel` (relative or rooted, "/" separated) inside the root. Every
   * directory component that is a symlink is followed inside the root; the last component
   * too when `follow` is set. The result is always `dir` joined with plain names.
   */
  resolve(rel: string, opts: { follow?: boolean } = {}): string {
    const pending = this.split(rel);
    const resolved: string[] = [];
    let hops = 0;
    while (pending.length > 0) {
      const part = pending.shift()!;
      const isLast = pending.length === 0;
      if (part === "..") {
        if (resolved.length === 0)
          throw new RootEscapeError(
            `${this.label}: ${JSON.stringify(rel)} goes through a symlink or ".." that leaves the root; refused`,
          );
        resolved.pop();
        continue;
      }
      const host = path.join(this.dir, ...resolved, part);
      if (isLast && !opts.follow) {
        resolved.push(part);
        break;
      }
      const st = fs.lstatSync(host, { throwIfNoEntry: false });
      if (st?.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS)
          throw new RootEscapeError(`${this.label}: too many symlinks resolving ${JSON.stringify(rel)}`);
        const target = fs.readlinkSync(host);
        if (target.startsWith("/")) resolved.length = 0;
        pending.unshift(...this.split(target));
        continue;
      }
      if (st && !isLast && !st.isDirectory()) {
        throw new RootEscapeError(
          `${this.label}: ${JSON.stringify(rel)} needs ${[...resolved, part].join("/")} to be a directory, but it is not`,
        );
      }
      resolved.push(part);
    }
    return path.join(this.dir, ...resolved);
  }

  /** lstat of the entry itself (the last component not followed); undefined when absent. */
  lstat(rel: string): fs.Stats | undefined {
    return fs.lstatSync(this.resolve(rel), { throwIfNoEntry: false });
  }

  /** stat through symlinks (followed inside the root); undefined when absent or dangling. */
  stat(rel: string): StagingStat | undefined {
    const host = this.resolve(rel, { follow: true });
    const stat = fs.lstatSync(host, { throwIfNoEntry: false });
    return stat ? { host, stat } : undefined;
  }

  exists(rel: string): boolean {
    return this.stat(rel) !== undefined;
  }

  /** Creates `rel` and its parents (symlinks to directories followed inside the root); returns the host path. */
  mkdirp(rel: string, mode = 0o755): string {
    const parts = this.split(rel);
    let host = this.dir;
    for (let i = 1; i <= parts.length; i++) {
      host = this.resolve(parts.slice(0, i).join("/"), { follow: true });
      const st = fs.lstatSync(host, { throwIfNoEntry: false });
      // Every existing component of `host` is a real directory (resolve checked it): recursive is safe.
      if (!st) {
        fs.mkdirSync(host, { mode, recursive: true });
        ownMade(host);
      } else if (!st.isDirectory())
        throw new RootEscapeError(
          `${this.label}: cannot make directory ${parts.slice(0, i).join("/")}: a file stands there`,
        );
    }
    return host;
  }

  /** The parent directory (created) and the host path of the entry itself, whatever stood there removed unless it is a directory. */
  private prepareEntry(rel: string, opts: { replaceDirectory?: boolean } = {}): string {
    const parts = this.split(rel);
    if (parts.length === 0)
      throw new RootEscapeError(
        `${this.label}: ${JSON.stringify(rel)} names the root itself; expected a path inside it`,
      );
    const base = parts.pop()!;
    if (base === "..") throw new RootEscapeError(`${this.label}: ${JSON.stringify(rel)} ends in ".."; refused`);
    const host = path.join(this.mkdirp(parts.join("/")), base);
    const st = fs.lstatSync(host, { throwIfNoEntry: false });
    if (st?.isDirectory()) {
      if (!opts.replaceDirectory)
        throw new RootEscapeError(
          `${this.label}: ${parts.concat(base).join("/")} is a directory; expected a file there`,
        );
      fs.rmSync(host, { recursive: true, force: true });
    } else if (st) {
      fs.unlinkSync(host);
    }
    return host;
  }

  /** Writes a new regular file at `rel` (a symlink standing there is replaced, never written through). */
  writeFile(rel: string, content: string | Buffer, mode = 0o644, opts: { replaceDirectory?: boolean } = {}): string {
    const host = this.prepareEntry(rel, opts);
    const fd = fs.openSync(
      host,
      fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
      mode & 0o777,
    );
    try {
      if (OWN_MADE) fs.fchownSync(fd, SANDBOX_ID_BASE, SANDBOX_ID_BASE);
      fs.writeFileSync(fd, content);
      fs.fchmodSync(fd, mode);
    } finally {
      fs.closeSync(fd);
    }
    return host;
  }

  /**
   * Opens a new regular file at `rel` for writing (created exclusively, never through a
   * symlink); the caller writes and closes the descriptor.
   */
  createFile(rel: string, mode = 0o644): { fd: number; host: string } {
    const host = this.prepareEntry(rel);
    const fd = fs.openSync(
      host,
      fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
      mode & 0o777,
    );
    if (OWN_MADE) fs.fchownSync(fd, SANDBOX_ID_BASE, SANDBOX_ID_BASE);
    return { fd, host };
  }

  /** Copies a host file (outside the root: an overlay file) to `rel` as a new file. */
  copyIn(hostSource: string, rel: string, mode: number, opts: { replaceDirectory?: boolean } = {}): string {
    const host = this.prepareEntry(rel, opts);
    fs.copyFileSync(hostSource, host, fs.constants.COPYFILE_EXCL);
    ownMade(host);
    this.chmod(rel, mode);
    return host;
  }

  /** Makes a symlink at `rel` pointing at `target` (stored as is; never followed here). */
  symlink(rel: string, target: string, opts: { replaceDirectory?: boolean } = {}): string {
    const host = this.prepareEntry(rel, opts);
    fs.symlinkSync(target, host);
    ownMade(host);
    return host;
  }

  /** A hard link at `rel` to the entry `existing` (neither followed if a symlink). */
  link(existing: string, rel: string): string {
    const from = this.resolve(existing);
    const host = this.prepareEntry(rel);
    fs.linkSync(from, host);
    return host;
  }

  /** Ensures a directory at `rel` (a non-directory there is replaced) with exactly `mode`. */
  directory(rel: string, mode: number): string {
    const st = this.lstat(rel);
    if (st && !st.isDirectory()) fs.unlinkSync(this.resolve(rel));
    const parts = this.split(rel);
    this.mkdirp(parts.slice(0, -1).join("/"));
    const host = this.mkdirp(rel, mode & 0o777);
    this.chmod(rel, mode);
    return host;
  }

  /** chmod of the entry itself; a symlink there is refused (chmod would follow it). */
  chmod(rel: string, mode: number): void {
    const host = this.resolve(rel);
    const st = fs.lstatSync(host);
    if (st.isSymbolicLink()) throw new RootEscapeError(`${this.label}: chmod of ${rel}, which is a symlink; refused`);
    fs.chmodSync(host, mode);
  }

  /** Removes the entry itself (recursively for a directory; a symlink is removed, not followed). */
  remove(rel: string): void {
    const parts = this.split(rel);
    if (parts.length === 0) throw new RootEscapeError(`${this.label}: refusing to remove the root itself`);
    fs.rmSync(this.resolve(rel), { recursive: true, force: true });
  }

  /** Reads a file (symlinks followed inside the root); undefined when absent. */
  readFile(rel: string): Buffer | undefined {
    const found = this.stat(rel);
    if (!found) return undefined;
    if (!found.stat.isFile()) throw new RootEscapeError(`${this.label}: ${rel} is not a regular file`);
    return fs.readFileSync(found.host);
  }

  /** Entries of a directory (symlinks followed inside the root); [] when absent. */
  readdir(rel: string): string[] {
    const found = this.stat(rel);
    if (!found) return [];
    if (!found.stat.isDirectory()) throw new RootEscapeError(`${this.label}: ${rel} is not a directory`);
    return fs.readdirSync(found.host);
  }

  /** Copies a regular file of the root (symlinks followed inside it) to a host path outside. */
  copyOut(rel: string, hostDest: string): void {
    const found = this.stat(rel);
    if (!found?.stat.isFile()) throw new RootEscapeError(`${this.label}: ${rel} is not a regular file in the root`);
    fs.copyFileSync(found.host, hostDest);
  }
}
