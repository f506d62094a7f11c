import { createHash, type Hash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { FileWriter, type FileFinish, type WriteReply } from "./file-writer";
import { toHostId } from "./sandbox-ids";
import { StagingRoot } from "./staging-root";
import { TarStreamParser, type TarHeader, type TarReadType, type TarSink } from "./tar-reader";
import { RamrootError, TrustError } from "../ramroot-error";

/** One path of the built tree, with the ownership and mode the image must give it. */
export interface ManifestEntry {
  /** Relative to the root, no leading or trailing "/" ("usr/bin/busybox"). */
  path: string;
  type: TarReadType;
  /** Permission bits including setuid/setgid/sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Symlink target, or for hard links the path (relative to the root) of the file linked to. */
  target?: string;
  /** hex SHA-1 of the content (files, hard links) or of the target (symlinks). */
  sha1?: string;
  size: number;
  /** The entry's mtime in the package (apk gives installed files their package mtime). */
  mtime?: number;
  devmajor?: number;
  devminor?: number;
  /** The package that installed it. */
  package: string;
}

/** path -> entry, for every path packages installed. */
export type FileManifest = Map<string, ManifestEntry>;

export interface Acl {
  uid: number;
  gid: number;
  mode: number;
}

/** A file a package owns, as the installed db lists it under its directory. */
export interface InstalledFile {
  /** Base name. */
  name: string;
  acl: Acl;
  /** hex SHA-1 (apk's Z:), when apk records one (files, hard links, symlinks). */
  sha1?: string;
}

/** A directory a package owns (F:) with its files (R:), in the order apk meets them. */
export interface InstalledDir {
  /** Relative path, "" for the root. */
  name: string;
  acl: Acl;
  files: InstalledFile[];
}

export interface ExpandOptions {
  /** The staging root. */
  root: string;
  /** Manifest of everything installed so far; updated in place. */
  manifest: FileManifest;
  packageName: string;
  /** Names the package in errors. */
  source: string;
  /** Whether this package may overwrite a file another package installed (apk: replaces / same origin). */
  mayOverwrite?: (owner: string) => boolean;
  /**
   * Told about a file another package owns that this one may not overwrite; the file is then
   * skipped and the rest installed, as apk does (it flags the package). Without it, such a
   * file is an error.
   */
  onRefusedOverwrite?: (path: string, owner: string) => void;
  /** Give what is made its owner, full mode and (files) mtime on disk, as apk running as root does (needs root). */
  applyOwnership?: boolean;
  /** What creates files: one for a whole install; made and closed here when not given. */
  writer?: FileWriter;
}

export const DEFAULT_DIR_ACL: Acl = { uid: 0, gid: 0, mode: 0o755 };
export const DEFAULT_FILE_ACL: Acl = { uid: 0, gid: 0, mode: 0o644 };

/** name -> id from the root's /etc/passwd or /etc/group, as apk's id cache resolves owners. */
function readIds(root: StagingRoot, file: string, idField: number): Map<string, number> {
  const ids = new Map<string, number>();
  let text: string;
  try {
    text = root.readFile(`etc/${file}`)?.toString("utf8") ?? "";
  } catch {
    return ids;
  }
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    const id = Number(fields[idField]);
    if (fields[0] && Number.isInteger(id) && !ids.has(fields[0])) ids.set(fields[0], id);
  }
  return ids;
}

/**
 * Normalises a tar entry name to a relative path, refusing what could leave the root:
 * absolute paths and ".." components. Returns "" for the root itself ("./").
 */
export function safeEntryPath(name: string, source: string): string {
  if (name.includes("\0"))
    throw new TrustError(
      `${source}: entry ${JSON.stringify(name)} contains a NUL byte; refused`,
      undefined,
      "repositories",
    );
  if (name.startsWith("/"))
    throw new TrustError(
      `${source}: entry ${JSON.stringify(name)} is an absolute path; package entries must be relative, refused`,
      undefined,
      "repositories",
    );
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes(".."))
    throw new TrustError(
      `${source}: entry ${JSON.stringify(name)} contains "..", which could leave the root; refused`,
      undefined,
      "repositories",
    );
  return parts.join("/");
}

function sha1(data: Buffer | string): string {
  return createHash("sha1").update(data).digest("hex");
}

/**
 * The file's SHA-1 as its PAX record `APK-TOOLS.checksum.SHA1` states it, when that is 40 hex
 * digits. apk-tools records this value (its db Z:) without hashing the content: the record is
 * part of the data member, which the signed datahash covers, so it is as trusted as the content.
 * A file without a well-formed record is hashed, as apk does then.
 */
function paxSha1(header: TarHeader): string | undefined {
  const claimed = header.pax["APK-TOOLS.checksum.SHA1"];
  return claimed !== undefined && /^[0-9a-fA-F]{40}$/.test(claimed) ? claimed.toLowerCase() : undefined;
}

/**
 * A data tar given whole, or fed in pieces (each awaited) by its producer, e.g.
 * `PackageFile.streamDataTar`; the producer may reuse a piece's memory once its sink call settles.
 */
export type TarFeed = (sink: (piece: Buffer) => void | Promise<void>) => Promise<void>;

/** Files larger than this are written as their content arrives; smaller ones whole. */
const STREAMED_FILE = 1 << 20;

/** An entry as the parser delivered it, waiting to be written. */
interface Pending {
  header: TarHeader;
  pieces: Buffer[];
  bytes: number;
  ended: boolean;
  started: boolean;
  /** Set once started; undefined for an entry that is skipped (the root itself, a refused overwrite). */
  work?: EntryWork;
}

interface EntryWork {
  rel: string;
  parent: string;
  base: string;
  /** The entry's host path (its directories resolved inside the root). */
  host: string;
  acl: Acl;
  current: fs.Stats | undefined;
  /** Hashes a file's content when its PAX record gives no SHA-1. */
  hash?: Hash;
  /** The SHA-1 the file's PAX record gives. */
  sha1?: string;
  /** A large file being written as its content arrives: its writer stream. */
  stream?: number;
}

/** Owner, full mode and mtime, applied to what an entry made when this process may (root). */
interface Ownership {
  uid: number;
  gid: number;
  mode: number;
  mtime?: number;
}

/** The process's umask, read once (it is not changed while ramroot runs). */
const UMASK = process.umask();

/** What the file writer gives a new file after its content: owner, full mode, mtime. */
function fileFinish(createMode: number, own: Ownership | undefined): FileFinish {
  const finalMode = own ? own.mode & 0o7777 : createMode;
  return {
    chown: own ? { uid: own.uid, gid: own.gid } : undefined,
    // open's mode lost what the umask masks; chown cleared setuid/setgid: the mode goes after it
    chmod: finalMode !== (createMode & 0o777 & ~UMASK) ? finalMode : undefined,
    mtime: own?.mtime,
  };
}

/**
 * Unpacks one package's data tar as it streams in: metadata (directories, symlinks, links,
 * checks) and files (by the file writer, as their content arrives) in order; an entry that
 * touches a path whose write has not reported back yet waits for that first.
 */
class DataTarExpander implements TarSink {
  readonly dirs: InstalledDir[] = [];
  private readonly dirIndex = new Map<string, InstalledDir>();
  private readonly staging: StagingRoot;
  private readonly users: Map<string, number>;
  private readonly groups: Map<string, number>;
  /** Directories (relative) known to be real directories, and their host paths. */
  private readonly knownDirs = new Map<string, string>();
  /** Directories this unpack made: nothing stands in them but what this package put there. */
  private readonly madeDirs = new Set<string>();
  /** Entries parsed and not yet written, in order. */
  private readonly queue: Pending[] = [];
  /** Writes not yet reported back, by relative path. */
  private readonly writing = new Map<string, Promise<void>>();
  private failure: unknown;
  /** Directories the package made or owns, given their owner and mode once its files are in. */
  private readonly ownedDirs: { host: string; own: Ownership }[] = [];

  constructor(
    private readonly opts: ExpandOptions,
    private readonly applyOwnership: boolean,
    private readonly writer: FileWriter,
  ) {
    this.staging = new StagingRoot(opts.root, opts.source);
    this.users = readIds(this.staging, "passwd", 2);
    this.groups = readIds(this.staging, "group", 2);
  }

  entry(header: TarHeader): void {
    this.queue.push({ header, pieces: [], bytes: 0, ended: false, started: false });
  }

  content(piece: Buffer): void {
    const last = this.queue[this.queue.length - 1]!;
    last.pieces.push(piece);
    last.bytes += piece.length;
  }

  entryEnd(): void {
    this.queue[this.queue.length - 1]!.ended = true;
  }

  private dirFor(name: string): InstalledDir {
    let dir = this.dirIndex.get(name);
    if (!dir) {
      dir = { name, acl: DEFAULT_DIR_ACL, files: [] };
      this.dirIndex.set(name, dir);
      this.dirs.push(dir);
    }
    return dir;
  }

  /** Waits for writes to `rel` or to any of its parents to report back. */
  private async settle(rel: string): Promise<void> {
    if (this.writing.size === 0) return;
    for (let at = rel.length; at > 0; at = rel.lastIndexOf("/", at - 1)) {
      const write = this.writing.get(rel.slice(0, at));
      if (write) await write;
    }
  }

  /** The host path of directory `rel`, made (with its parents) when missing. */
  private directoryHost(rel: string): string {
    const known = this.knownDirs.get(rel);
    if (known !== undefined) return known;
    const host = this.staging.mkdirp(rel);
    this.knownDirs.set(rel, host);
    return host;
  }

  /** Removes what stands at `host` (not a directory); a symlink removed may have been a known directory's way. */
  private unlink(host: string, st: fs.Stats): void {
    fs.unlinkSync(host);
    if (!st.isFile()) {
      this.knownDirs.clear();
      this.madeDirs.clear();
    }
  }

  /** On disk an owner is a sandbox host id (sandbox-ids.ts): install scripts can change it, the host's ids are never used. */
  private ownership(acl: Acl, mtime?: number): Ownership | undefined {
    return this.applyOwnership ? { uid: toHostId(acl.uid), gid: toHostId(acl.gid), mode: acl.mode, mtime } : undefined;
  }

  /** Writes what the parser delivered, in order, as far as it can. */
  async drain(): Promise<void> {
    if (this.failure) throw this.failure;
    while (this.queue.length > 0) {
      const item = this.queue[0]!;
      if (!item.started) {
        item.started = true;
        item.work = await this.start(item.header);
      }
      const work = item.work;
      if (work?.stream !== undefined) {
        if (work.hash) for (const piece of item.pieces) work.hash.update(piece);
        this.writer.append(work.rel, work.stream, item.pieces);
        item.pieces = [];
        item.bytes = 0;
      } else if (!work) {
        item.pieces = []; // a skipped entry's content is not kept
      }
      if (!item.ended) return;
      this.queue.shift();
      if (work) await this.finish(item, work);
    }
  }

  /**
   * Lets go of every piece given so far, as the feed reuses a piece's memory once its sink call
   * returns: a file still arriving is handed to the writer as a stream (its pieces so far, the
   * rest as it comes), which the writer writes at once. Copying the held
   * pieces instead made ~60 MiB of short-lived buffers over a kernel's module tree.
   */
  handOverPieces(): void {
    for (const item of this.queue) {
      const work = item.work;
      if (item.pieces.length === 0 || !work) continue;
      if (work.stream === undefined) this.openStream(work);
      if (work.hash) for (const piece of item.pieces) work.hash.update(piece);
      this.writer.append(work.rel, work.stream!, item.pieces);
      item.pieces = [];
      item.bytes = 0;
    }
  }

  /** Creates the file of `work` now, its content to follow in pieces (whatever stood there removed). */
  private openStream(work: EntryWork): void {
    if (work.current) this.unlink(work.host, work.current);
    work.stream = this.writer.openFile(work.rel, work.host, work.acl.mode & 0o777);
  }

  /** Everything written and every directory given its owner and mode. */
  async close(): Promise<void> {
    await this.drain();
    await Promise.all(this.writing.values());
    if (this.failure) throw this.failure;
    for (const { host, own } of this.ownedDirs) {
      fs.lchownSync(host, own.uid, own.gid);
      fs.chmodSync(host, own.mode & 0o7777);
    }
  }

  /** After a failure: nothing left in flight, no descriptor left open. */
  async abandon(): Promise<void> {
    for (const item of this.queue) {
      const work = item.work;
      if (work?.stream !== undefined) this.track(work.rel, this.writer.closeFile(work.rel, work.stream, {}));
    }
    this.queue.length = 0;
    await Promise.allSettled(this.writing.values());
  }

  private async start(header: TarHeader): Promise<EntryWork | undefined> {
    const { manifest, source } = this.opts;
    const rel = safeEntryPath(header.name, source);
    if (rel === "") return undefined;
    const uid = (header.uname ? this.users.get(header.uname) : undefined) ?? header.uid;
    const gid = (header.gname ? this.groups.get(header.gname) : undefined) ?? header.gid;
    const acl: Acl = { uid, gid, mode: header.mode & 0o7777 };
    const existing = manifest.get(rel);
    if (
      existing &&
      existing.package !== this.opts.packageName &&
      (existing.type !== "directory" || header.type !== "directory")
    ) {
      if (!(this.opts.mayOverwrite?.(existing.package) ?? false)) {
        if (this.opts.onRefusedOverwrite) {
          this.opts.onRefusedOverwrite(rel, existing.package);
          return undefined;
        }
        throw new RamrootError(
          "input",
          `${source}: trying to overwrite ${rel} owned by ${existing.package}; the package must list it in replaces`,
        );
      }
    }
    await this.settle(rel);
    const slash = rel.lastIndexOf("/");
    const parent = slash < 0 ? "" : rel.slice(0, slash);
    const base = slash < 0 ? rel : rel.slice(slash + 1);
    const host = path.join(this.directoryHost(parent), base);
    const current =
      this.madeDirs.has(parent) && !manifest.has(rel) ? undefined : fs.lstatSync(host, { throwIfNoEntry: false });
    if (current?.isDirectory() && header.type !== "directory")
      throw new RamrootError(
        "input",
        `${source}: ${rel} is a directory on disk but a ${header.type} in the package; refused`,
      );
    const work: EntryWork = { rel, parent, base, host, acl, current };
    if (header.type === "file") {
      work.sha1 = paxSha1(header);
      if (work.sha1 === undefined) work.hash = createHash("sha1");
      if (header.size > STREAMED_FILE) this.openStream(work);
    }
    return work;
  }

  private async finish(item: Pending, work: EntryWork): Promise<void> {
    const { header } = item;
    const { manifest, source } = this.opts;
    const { rel, host, acl, current } = work;

    if (header.type === "directory") {
      const dir = this.dirFor(rel);
      dir.acl = acl;
      if (current?.isSymbolicLink() && this.staging.stat(rel)?.stat.isDirectory()) {
        // A symlink to a directory stands where the package has a directory (usr-merge style):
        // the link stays, files go through it (inside the root), as apk's mkdir() finding it leaves it.
        return;
      }
      if (current && !current.isDirectory()) this.unlink(host, current);
      if (!current?.isDirectory()) {
        fs.mkdirSync(host);
        this.madeDirs.add(rel);
      }
      this.knownDirs.set(rel, host);
      const own = this.ownership(acl);
      // As root the mode is given once the package's files are in; otherwise now, writable for them.
      if (own) this.ownedDirs.push({ host, own });
      else fs.chmodSync(host, (acl.mode & 0o777) | 0o700);
      manifest.set(rel, {
        path: rel,
        type: "directory",
        mode: acl.mode,
        uid: acl.uid,
        gid: acl.gid,
        size: 0,
        mtime: header.mtime,
        package: this.opts.packageName,
      });
      return;
    }

    const record: ManifestEntry = {
      path: rel,
      type: header.type,
      mode: acl.mode,
      uid: acl.uid,
      gid: acl.gid,
      size: 0,
      mtime: header.mtime,
      package: this.opts.packageName,
    };
    const own = this.ownership(acl, header.mtime);
    switch (header.type) {
      case "file": {
        let digest = work.sha1;
        if (digest === undefined) {
          const hash = work.hash!;
          for (const piece of item.pieces) hash.update(piece);
          digest = hash.digest("hex");
        }
        const mode = (acl.mode & 0o777) | 0o200;
        if (work.stream !== undefined) {
          const stream = work.stream;
          work.stream = undefined;
          const finish: FileFinish = own
            ? { chown: { uid: own.uid, gid: own.gid }, chmod: own.mode & 0o7777, mtime: own.mtime }
            : { chmod: mode };
          this.track(rel, this.writer.closeFile(rel, stream, finish));
        } else {
          if (current) this.unlink(host, current);
          await this.write(rel, host, item.pieces, mode, own);
        }
        record.sha1 = digest;
        record.size = header.size;
        break;
      }
      case "symlink": {
        const target = header.linkTarget ?? "";
        if (current) this.unlink(host, current);
        fs.symlinkSync(target, host);
        if (own) fs.lchownSync(host, own.uid, own.gid);
        record.target = target;
        record.sha1 = sha1(target);
        break;
      }
      case "hardlink": {
        const targetRel = safeEntryPath(header.linkTarget ?? "", source);
        const linked = manifest.get(targetRel);
        if (!linked || linked.type !== "file")
          throw new TrustError(
            `${source}: hard link ${rel} points to ${JSON.stringify(header.linkTarget)}, which is no file installed before it; refused`,
            undefined,
            "repositories",
          );
        await this.settle(targetRel);
        const from = this.staging.resolve(targetRel);
        if (current) this.unlink(host, current);
        fs.linkSync(from, host);
        if (own) {
          fs.lchownSync(host, own.uid, own.gid);
          fs.chmodSync(host, own.mode & 0o7777);
          if (own.mtime !== undefined) fs.utimesSync(host, own.mtime, own.mtime);
        }
        record.target = targetRel;
        record.sha1 = linked.sha1;
        record.size = linked.size;
        break;
      }
      default:
        // Device nodes and FIFOs are recorded for the image (cpio can carry them); creating
        // them would need root, so nothing is made on disk; whatever stood there goes.
        if (current) this.unlink(host, current);
        record.devmajor = header.devmajor;
        record.devminor = header.devminor;
        break;
    }
    manifest.set(rel, record);
    this.dirFor(work.parent).files.push({ name: work.base, acl, sha1: record.sha1 });
  }

  /** Hands a whole file to the writer. */
  private async write(rel: string, host: string, content: Buffer[], mode: number, own: Ownership | undefined) {
    if (this.failure) throw this.failure;
    this.track(rel, this.writer.writeFile(rel, host, mode & 0o777, content, fileFinish(mode, own)));
  }

  /** Remembers a write to `rel` until it reports back; a failure fails the unpack. */
  private track(rel: string, reply: Promise<WriteReply>): void {
    const done: Promise<void> = reply.then((answer) => {
      if (this.writing.get(rel) === done) this.writing.delete(rel);
      for (const [failed, message] of answer.errors)
        this.failure ??= new Error(`${this.opts.source}: cannot write ${failed}: ${message}`);
    });
    this.writing.set(rel, done);
  }
}

/**
 * Unpacks a package's data tar into the staging root without needing root: content, modes
 * (permission bits; setuid and ownership are recorded, not applied), symlinks and hard links
 * land on disk, and every path goes into `manifest` with the uid/gid/mode the image needs.
 * With `applyOwnership` (as root) owners, full modes and file mtimes
 * are given on disk too, as apk running as root does. Owners are resolved by name through the
 * root's /etc/passwd and /etc/group (as apk does, so users a pre-install script made are
 * honoured), falling back to the numeric ids in the tar. Each file's PAX
 * APK-TOOLS.checksum.SHA1 is checked against its content. Refuses absolute paths, "..", writes
 * through symlinks that leave the root, and overwriting another package's file unless
 * `mayOverwrite` allows it. The tar streams through: only the entries being written are in
 * memory. Returns the directories and files for the installed db.
 */
export async function expandDataTar(data: Buffer | TarFeed, opts: ExpandOptions): Promise<InstalledDir[]> {
  const writer = opts.writer ?? new FileWriter();
  const expander = new DataTarExpander(opts, opts.applyOwnership ?? false, writer);
  const parser = new TarStreamParser(`${opts.source} (data member)`, expander);
  const feed: TarFeed = Buffer.isBuffer(data) ? (sink) => Promise.resolve(sink(data)) : data;
  try {
    await feed(async (piece) => {
      parser.push(piece);
      await expander.drain();
      expander.handOverPieces();
    });
    parser.end();
    await expander.close();
  } catch (err) {
    await expander.abandon();
    throw err;
  } finally {
    if (!opts.writer) writer.close();
  }
  return expander.dirs;
}
