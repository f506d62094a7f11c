import * as fs from "node:fs";

/** Owner, full mode and mtime given to a file once its content is in; each only when set. */
export interface FileFinish {
  chown?: { uid: number; gid: number };
  /** Mode bits (07777) given after the owner (chown clears setuid/setgid). */
  chmod?: number;
  mtime?: number;
}

export interface WriteReply {
  /** [path relative to the root, error message] of the file, when it failed. */
  errors: [string, string][];
}

const CREATE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

function writeAll(fd: number, content: Buffer[]): void {
  let pieces = content.filter((piece) => piece.length > 0);
  while (pieces.length > 0) {
    let done = fs.writevSync(fd, pieces);
    // a short write (rare) goes on from where it stopped
    while (pieces.length > 0 && done >= pieces[0]!.length) done -= pieces.shift()!.length;
    if (done > 0) pieces = [pieces[0]!.subarray(done), ...pieces.slice(1)];
  }
}

function finish(fd: number, op: FileFinish): void {
  if (op.chown) fs.fchownSync(fd, op.chown.uid, op.chown.gid);
  if (op.chmod !== undefined) fs.fchmodSync(fd, op.chmod);
  if (op.mtime !== undefined) fs.futimesSync(fd, op.mtime, op.mtime);
}

const failed = (rel: string, message: string): Promise<WriteReply> => Promise.resolve({ errors: [[rel, message]] });

/** Writes `content` to `fd`, gives it its finish and closes it (whatever fails): the reply for `rel`. */
function complete(rel: string, fd: number, content: Buffer[], done: FileFinish): Promise<WriteReply> {
  try {
    try {
      writeAll(fd, content);
      finish(fd, done);
    } finally {
      fs.closeSync(fd);
    }
    return Promise.resolve({ errors: [] });
  } catch (err) {
    return failed(rel, (err as Error).message);
  }
}

/**
 * Creates files with synchronous calls on the calling thread, each step as it is queued: a whole
 * file (open, write, fchown/fchmod/futimes, close) or a large file's opening, pieces and
 * closing. A piece may be reused as soon as the call returns. A failure is reported by the
 * file's path (a streamed file's with its closing step), and the files after it are still
 * written. Neither a thread-pool round trip per call (~20,000 per install, which queued the
 * data member's inflate behind them) nor a writer thread: a worker is a second Node
 * environment, ~10 MiB of an install's peak RSS, and had the content copied into buffers shared
 * with it (bench/analysis.md, "Install memory"); the inflate still runs on the thread pool
 * meanwhile. The returned promises are settled already. `close()` closes what a failure left open.
 */
export class FileWriter {
  private readonly streams = new Map<number, number>();
  /** Streamed files whose creation or a write failed: the message, reported when they close. */
  private readonly broken = new Map<number, string>();
  private nextStream = 0;

  /** Writes a whole file. */
  writeFile(rel: string, host: string, mode: number, content: Buffer[], done: FileFinish): Promise<WriteReply> {
    let fd: number;
    try {
      fd = fs.openSync(host, CREATE_FLAGS, mode);
    } catch (err) {
      return failed(rel, (err as Error).message);
    }
    return complete(rel, fd, content, done);
  }

  /** Creates a file whose content follows in pieces; returns its stream id. */
  openFile(_rel: string, host: string, mode: number): number {
    const id = this.nextStream++;
    try {
      this.streams.set(id, fs.openSync(host, CREATE_FLAGS, mode));
    } catch (err) {
      this.broken.set(id, (err as Error).message);
    }
    return id;
  }

  /** Writes pieces of a file opened with `openFile`. */
  append(_rel: string, id: number, content: Buffer[]): void {
    const fd = this.streams.get(id);
    if (fd === undefined) return; // broken: reported when it closes
    try {
      writeAll(fd, content);
    } catch (err) {
      this.broken.set(id, (err as Error).message);
      this.streams.delete(id);
      fs.closeSync(fd);
    }
  }

  /** Ends a streamed file. */
  closeFile(rel: string, id: number, done: FileFinish): Promise<WriteReply> {
    const why = this.broken.get(id);
    if (why !== undefined) {
      this.broken.delete(id);
      return failed(rel, why);
    }
    const fd = this.streams.get(id);
    this.streams.delete(id);
    if (fd === undefined) return failed(rel, `no open file (stream ${id})`);
    return complete(rel, fd, [], done);
  }

  /** Closes what is still open (files a failure left unfinished). */
  close(): void {
    for (const fd of this.streams.values()) fs.closeSync(fd);
    this.streams.clear();
    this.broken.clear();
  }
}
