import { Worker } from "node:worker_threads";
import * as fs from "node:fs";

/** Owner, full mode and mtime given to a file once its content is in; each only when set. */
export interface FileFinish {
  chown?: { uid: number; gid: number };
  /** Mode bits (07777) given after the owner (chown clears setuid/setgid). */
  chmod?: number;
  mtime?: number;
}

/** One step of the writer thread, run in the order given. */
type WriteOp =
  | ({ kind: "file"; rel: string; host: string; mode: number; at: number; length: number } & FileFinish)
  | { kind: "open"; rel: string; id: number; host: string; mode: number }
  | { kind: "append"; rel: string; id: number; at: number; length: number }
  | ({ kind: "close"; rel: string; id: number } & FileFinish);

export interface BatchReply {
  batch: number;
  /** [path relative to the root, error message] of every file that failed. */
  errors: [string, string][];
}

const CREATE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

/**
 * The writer thread: it runs a batch's steps with synchronous calls, one after another, and
 * answers once per batch. Plain JavaScript in a string, so that it runs the same compiled,
 * under a test runner's transform or under coverage instrumentation.
 */
const WRITER_THREAD = `
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const streams = new Map();
function writeAll(fd, data, at, length) {
  for (let done = 0; done < length; ) done += fs.writeSync(fd, data, at + done, length - done);
}
function finish(fd, op) {
  if (op.chown) fs.fchownSync(fd, op.chown.uid, op.chown.gid);
  if (op.chmod !== undefined) fs.fchmodSync(fd, op.chmod);
  if (op.mtime !== undefined) fs.futimesSync(fd, op.mtime, op.mtime);
}
const broken = new Map();
parentPort.on("message", ({ batch, data, ops }) => {
  const content = Buffer.from(data);
  const errors = [];
  for (const op of ops) {
    try {
      if (op.kind === "file") {
        const fd = fs.openSync(op.host, workerData.createFlags, op.mode);
        try {
          writeAll(fd, content, op.at, op.length);
          finish(fd, op);
        } finally {
          fs.closeSync(fd);
        }
      } else if (op.kind === "open") {
        streams.set(op.id, fs.openSync(op.host, workerData.createFlags, op.mode));
      } else if (broken.has(op.id)) {
        // a streamed file that failed is reported with its closing step
        if (op.kind === "close") {
          errors.push([op.rel, broken.get(op.id)]);
          broken.delete(op.id);
        }
      } else if (op.kind === "append") {
        writeAll(streams.get(op.id), content, op.at, op.length);
      } else {
        const fd = streams.get(op.id);
        streams.delete(op.id);
        try {
          finish(fd, op);
        } finally {
          fs.closeSync(fd);
        }
      }
    } catch (err) {
      if (op.kind === "file" || op.kind === "close") errors.push([op.rel, err.message]);
      else {
        broken.set(op.id, err.message);
        if (streams.has(op.id)) fs.closeSync(streams.get(op.id));
        streams.delete(op.id);
      }
    }
  }
  parentPort.postMessage({ batch, errors });
});
`;

/** Steps or content bytes gathered before a batch goes to the writer thread. */
const BATCH_OPS = 64;
const BATCH_BYTES = 1 << 20;
/**
 * Content buffers shared with the thread and reused batch after batch (no buffer allocated and
 * collected per batch); a batch holds less than this unless one piece is larger.
 */
const SLOT_BYTES = 4 << 20;
/**
 * Batches in flight at most (`waitBelow`), so the slots in use stay few: each slot's pages stay
 * resident once written, and 8 measured ~4 MiB more peak RSS than 4 for no faster install.
 */
const MAX_BATCHES = 4;

/**
 * Creates files from a worker thread, in batches: the caller queues whole files (or a large
 * file's opening, pieces and closing) in order, and the thread runs each batch's steps with
 * synchronous calls, one message per batch instead of a thread-pool round trip per call
 * (open, write, fchown, fchmod, futimes, close). Each file's promise settles when its batch is
 * done; a failure is reported by its path. The content is copied into a buffer shared with the
 * thread (reused once its batch is written), so a piece may be reused once its batch is sent.
 * `close()` ends the thread.
 */
export class FileWriter {
  private worker: Worker | undefined;
  /** The batch being gathered. */
  private ops: WriteOp[] = [];
  private pieces: Buffer[] = [];
  private bytes = 0;
  private gathering: Pending | undefined;
  /** Batches sent and not yet answered, oldest first. */
  private readonly sent = new Map<number, Pending & { ops: WriteOp[]; bytes: number; slot: SharedArrayBuffer }>();
  /** Shared content buffers not in use. */
  private readonly freeSlots: SharedArrayBuffer[] = [];
  private nextBatch = 0;
  private nextStream = 0;
  private failed: Error | undefined;
  /** Content bytes sent and not yet written. */
  inFlightBytes = 0;

  /** Queues a whole file; settles (with the batch's errors by path) once written. */
  writeFile(rel: string, host: string, mode: number, content: Buffer[], finish: FileFinish): Promise<BatchReply> {
    const at = this.take(content);
    this.ops.push({ kind: "file", rel, host, mode, at, length: this.bytes - at, ...finish });
    return this.queued();
  }

  /** Queues the creation of a file whose content follows in pieces; returns its stream id. */
  openFile(rel: string, host: string, mode: number): number {
    const id = this.nextStream++;
    this.ops.push({ kind: "open", rel, id, host, mode });
    void this.queued();
    return id;
  }

  /** Queues pieces of a file opened with `openFile`. */
  append(rel: string, id: number, content: Buffer[]): void {
    const at = this.take(content);
    this.ops.push({ kind: "append", rel, id, at, length: this.bytes - at });
    void this.queued();
  }

  /** Queues the end of a streamed file; settles once it is closed. */
  closeFile(rel: string, id: number, finish: FileFinish): Promise<BatchReply> {
    this.ops.push({ kind: "close", rel, id, ...finish });
    return this.queued();
  }

  /** Sends what is queued to the writer thread. */
  flush(): void {
    const pending = this.gathering;
    if (!pending) return;
    const slot =
      this.bytes <= SLOT_BYTES
        ? (this.freeSlots.pop() ?? new SharedArrayBuffer(SLOT_BYTES))
        : new SharedArrayBuffer(this.bytes);
    const data = Buffer.from(slot);
    let at = 0;
    for (const piece of this.pieces) at += piece.copy(data, at);
    const number = this.nextBatch++;
    const ops = this.ops;
    this.sent.set(number, { ...pending, ops, bytes: at, slot });
    this.inFlightBytes += at;
    this.ops = [];
    this.pieces = [];
    this.bytes = 0;
    this.gathering = undefined;
    if (this.failed) this.answer(number, failedBatch(ops, this.failed));
    else this.thread().postMessage({ batch: number, data: slot, ops });
  }

  /** Waits until at most `bytes` of content (and a few batches) are in flight. */
  async waitBelow(bytes: number): Promise<void> {
    while (this.inFlightBytes > bytes || this.sent.size >= MAX_BATCHES) {
      const oldest = this.sent.values().next();
      if (oldest.done) return;
      await oldest.value.promise;
    }
  }

  /** Ends the writer thread once what was queued is written. */
  async close(): Promise<void> {
    this.flush();
    await Promise.all([...this.sent.values()].map((batch) => batch.promise));
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }

  private take(content: Buffer[]): number {
    const at = this.bytes;
    for (const piece of content) {
      this.pieces.push(piece);
      this.bytes += piece.length;
    }
    return at;
  }

  /** The promise of the batch being gathered; sends the batch once it is full. */
  private queued(): Promise<BatchReply> {
    if (!this.gathering) {
      let resolve!: (reply: BatchReply) => void;
      const promise = new Promise<BatchReply>((r) => (resolve = r));
      this.gathering = { promise, resolve };
    }
    const { promise } = this.gathering;
    if (this.ops.length >= BATCH_OPS || this.bytes >= BATCH_BYTES) this.flush();
    return promise;
  }

  private answer(number: number, reply: BatchReply): void {
    const batch = this.sent.get(number);
    if (!batch) return;
    this.sent.delete(number);
    this.inFlightBytes -= batch.bytes;
    if (batch.slot.byteLength === SLOT_BYTES) this.freeSlots.push(batch.slot);
    batch.resolve(reply);
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WRITER_THREAD, { eval: true, workerData: { createFlags: CREATE_FLAGS } });
    worker.on("message", (reply: BatchReply) => this.answer(reply.batch, reply));
    const fail = (err: Error) => {
      this.failed ??= err;
      for (const [number, batch] of [...this.sent]) this.answer(number, failedBatch(batch.ops, err));
    };
    worker.on("error", fail);
    worker.on("exit", (code) => {
      if (this.worker === worker) fail(new Error(`the file writer thread exited (code ${code})`));
    });
    this.worker = worker;
    return worker;
  }
}

interface Pending {
  promise: Promise<BatchReply>;
  resolve: (reply: BatchReply) => void;
}

/** Every file of a batch the thread could not run, failed with `err`. */
function failedBatch(ops: WriteOp[], err: Error): BatchReply {
  return {
    batch: -1,
    errors: ops.filter((op) => op.kind === "file" || op.kind === "close").map((op) => [op.rel, err.message]),
  };
}
