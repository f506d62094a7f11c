/**
 * A lease on a boot target: one writer at a time. Taken before a writer's first check of what
 * the target holds and held to its last write, so no other deploy can change DEFAULT or a slot
 * between the check and the write (two deploys to one disk once overwrote each other's slot and
 * left it unbootable).
 *
 * On the partition: the directory `ramroot/lease` and, inside it, `holder.json` (owner, pid,
 * host, token, acquired, expires). Creating the directory is the lock: mkdir(2) is atomic on a
 * mounted partition and over ssh, and on a disk image every mtools command runs under an flock
 * of the image file, so `mmd` is atomic there too (BootTarget.makeDirectoryExclusive).
 *
 * A lease runs out (`expires`) unless its holder renews it; a holder renews on every use and,
 * while it works, every third of the time to live. An expired lease, or one whose holder process
 * is gone from this host, is taken over with a message: the directory is first renamed to a name
 * of the taker's own (only one rename of it succeeds), its record is checked to be the expired
 * one, and it is removed; then the takers race for a fresh mkdir like anyone else. A holder checks
 * its token before each commit point (`assertHeld`), so one that lost its lease stops before
 * changing anything.
 */
import { randomBytes } from "node:crypto";
import * as os from "node:os";
import { processAlive } from "../exit-cleanup";
import type { BootTarget } from "./boot-target";
import type { TargetSpec } from "./target-spec";
import { targetLocation } from "./target-identity";
import { ConflictError } from "../ramroot-error";

export const LEASE_DIR = "ramroot/lease";
export const LEASE_RECORD = `${LEASE_DIR}/holder.json`;

export interface LeaseRecord {
  /** what holds it, e.g. "pulumi up: BootSlot machine-slot-b" or "ramroot slot write" */
  owner: string;
  user: string;
  host: string;
  pid: number;
  token: string;
  /** ISO times */
  acquired: string;
  expires: string;
}

export interface LeaseOptions {
  owner: string;
  /** seconds the lease lasts without a renewal (default 120) */
  ttlSeconds?: number;
  /** seconds to wait for a lease someone else holds (default RAMROOT_LEASE_WAIT, else 0: fail at once) */
  waitSeconds?: number;
  /** told about waits and take-overs */
  log?: (message: string) => void;
}

/** Says who holds the lease: `holder`, until when. */
export class LeaseHeldError extends ConflictError {
  // One super call with the message made first: parameter properties are assigned right after
  // super, and a super call in each branch of an if runs them before it (a runtime error).
  constructor(
    readonly target: string,
    readonly holder: LeaseRecord | undefined,
  ) {
    super(...leaseHeldMessage(target, holder));
  }
}

/** The problem and the fix of a held lease. */
function leaseHeldMessage(target: string, holder: LeaseRecord | undefined): [string, string] {
  return holder
    ? [
        `${target} is leased by ${describeHolder(holder)} until ${holder.expires}: another deploy is writing this boot target`,
        "wait for it to finish (or set RAMROOT_LEASE_WAIT=<seconds> to wait); a lease whose process is gone from its host is taken over, any other after it expires",
      ]
    : [
        `${target} has a lease directory (${LEASE_DIR}) without a holder record: a writer is taking it right now, or one died while taking it`,
        `if no deploy is running, remove ${LEASE_DIR} from the partition`,
      ];
}

/** "ramroot slot write (user root, pid 1234 on host build1, since 2026-...)" */
export function describeHolder(h: LeaseRecord): string {
  return `"${h.owner}" (user ${h.user}, pid ${h.pid} on host ${h.host}, since ${h.acquired})`;
}

const hostName = os.hostname();

function userName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return String(process.getuid?.() ?? "?");
  }
}

function parseRecord(raw: Buffer | undefined): LeaseRecord | undefined {
  if (raw === undefined) return undefined;
  try {
    const r = JSON.parse(raw.toString("utf8")) as Partial<LeaseRecord>;
    if (
      typeof r.token !== "string" ||
      typeof r.expires !== "string" ||
      typeof r.pid !== "number" ||
      typeof r.host !== "string"
    )
      return undefined;
    return {
      owner: String(r.owner ?? "?"),
      user: String(r.user ?? "?"),
      host: r.host,
      pid: r.pid,
      token: r.token,
      acquired: String(r.acquired ?? "?"),
      expires: r.expires,
    };
  } catch {
    return undefined;
  }
}

/** The lease record on the target now, or undefined (none, or unreadable). */
export async function readLease(target: BootTarget): Promise<LeaseRecord | undefined> {
  return parseRecord(await target.readFile(LEASE_RECORD));
}

/** Why a lease no longer binds anyone (expired, or its process is gone from this host), or undefined when it is live. */
export function staleReason(record: LeaseRecord, now = Date.now()): string | undefined {
  if (Date.parse(record.expires) < now) return `it expired at ${record.expires}`;
  if (record.host === hostName && record.pid !== process.pid && !processAlive(record.pid))
    return `its process ${record.pid} on ${record.host} is gone`;
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A lease this process holds on one boot target. Steps of one deploy that run at the same time
 * (two BootSlots, say) share it: each use counts. When no use is left it is given back, unless
 * a use kept it for a later step (a slot write keeps it for the switch of DEFAULT) and none
 * failed; the next use that does not keep it (the switch) gives it back.
 */
export class Lease {
  private timer: NodeJS.Timeout | undefined;
  private lost: Error | undefined;
  /** uses in progress */
  users = 0;
  /** a use failed, or the switch is done: give the lease back when the last use ends */
  private closing = false;
  /** a use that ended since the lease was last idle asked to keep it for a later step (a slot write, for the switch) */
  private keeping = false;

  constructor(
    readonly identity: string,
    public record: LeaseRecord,
    private readonly ttlSeconds: number,
  ) {}

  /** Throws when the record on the target is no longer this lease's (taken over after it expired, or removed). */
  async assertHeld(target: BootTarget): Promise<void> {
    if (this.lost) throw this.lost;
    const now = await readLease(target);
    if (now?.token !== this.record.token) {
      this.lost = new Error(
        `${target.describe()}: this process lost its lease on the boot target (${now ? `now held by ${describeHolder(now)}` : "the lease was removed"}); nothing more is written`,
      );
      throw this.lost;
    }
  }

  /** Moves the expiry forward (after checking the lease is still this one). */
  async renew(target: BootTarget): Promise<void> {
    await this.assertHeld(target);
    const record = { ...this.record, expires: new Date(Date.now() + this.ttlSeconds * 1000).toISOString() };
    await target.writeFileAtomic(LEASE_RECORD, JSON.stringify(record, null, 2) + "\n");
    this.record = record;
  }

  /** Renews every third of the time to live while `target` is open for work; returns the stop function. */
  keepAlive(target: BootTarget): () => void {
    this.stopKeepAlive();
    const timer = setInterval(
      () => {
        this.renew(target).catch(() => undefined);
      },
      (this.ttlSeconds * 1000) / 3,
    );
    timer.unref();
    this.timer = timer;
    return () => {
      if (this.timer === timer) this.stopKeepAlive();
    };
  }

  private stopKeepAlive(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Ends one use. `keep`: the deploy goes on (a later step will use the lease again); `close`:
   * give it back (a failure, or the switch that ends the deploy) even if another use kept it.
   * When no use is left the lease is given back (only when the record on the target is still
   * this one) unless a use that ended meanwhile kept it and none closed it: a slot repair that
   * ends beside a slot write does not give back the lease the write keeps for the switch.
   */
  async end(target: BootTarget, keep: boolean, close = false): Promise<void> {
    this.users = Math.max(0, this.users - 1);
    if (close) this.closing = true;
    else if (keep) this.keeping = true;
    if (this.users > 0) return;
    this.stopKeepAlive();
    if (this.keeping && !this.closing) {
      this.keeping = false; // kept once; the next use that does not keep it gives it back
      return;
    }
    held.delete(this.identity);
    const now = await readLease(target);
    if (now?.token !== this.record.token) return;
    await target.remove(LEASE_DIR);
  }

  /** Ends one use and gives the lease back when it was the last (whatever other uses kept it for). */
  async release(target: BootTarget): Promise<void> {
    await this.end(target, false, true);
  }
}

/**
 * What the leases of this process are keyed by: the partition's identity, and for ssh the port it
 * is reached on. Steps of one deploy reach a partition the same way; two machines behind one host
 * name on two ports (forwarded twins) share an identity but not a lease.
 */
function leaseKey(spec: TargetSpec): string {
  return spec.kind === "ssh" ? `${targetLocation(spec)} port ${spec.port ?? 22}` : targetLocation(spec);
}

/** Leases this process holds, by lease key: one deploy's steps share one lease. */
const held = new Map<string, Lease>();
/** Leases being taken, so steps starting together wait for one taking instead of racing themselves. */
const taking = new Map<string, Promise<Lease>>();

async function ensureParent(target: BootTarget): Promise<void> {
  const parent = LEASE_DIR.slice(0, LEASE_DIR.lastIndexOf("/"));
  await target.makeDirectoryExclusive(parent);
}

/**
 * Takes an expired or orphaned lease away: renames its directory to a name of our own (one taker
 * wins), checks the record there is the stale one, and removes it. Resolves when the way is clear.
 */
async function takeOver(target: BootTarget, stale: LeaseRecord, why: string, log: (m: string) => void): Promise<void> {
  const aside = `${LEASE_DIR}.stale-${randomBytes(4).toString("hex")}`;
  try {
    await target.rename(LEASE_DIR, aside);
  } catch {
    return; // another taker moved it first, or it was released: try again from the start
  }
  const moved = parseRecord(await target.readFile(`${aside}/holder.json`));
  if (moved?.token !== stale.token && moved !== undefined && staleReason(moved) === undefined) {
    // A live lease was taken in between: put it back if its place is still free.
    await target.rename(aside, LEASE_DIR).catch(() => undefined);
    return;
  }
  await target.remove(aside);
  log(`${target.describe()}: taking over the lease of ${describeHolder(stale)}: ${why}`);
}

/**
 * Takes the lease on `target` for this process, or renews it when this process holds it already.
 * Waits up to `waitSeconds` for a live holder; then throws LeaseHeldError naming it.
 */
export async function acquireLease(target: BootTarget, opts: LeaseOptions): Promise<Lease> {
  const identity = leaseKey(target.spec);
  for (;;) {
    const mine = held.get(identity);
    if (mine) {
      mine.users += 1;
      try {
        await mine.renew(target);
      } catch (err) {
        await mine.end(target, true);
        throw err;
      }
      return mine;
    }
    const other = taking.get(identity);
    if (other) {
      await other.catch(() => undefined);
      continue;
    }
    const attempt = takeLease(target, identity, opts);
    taking.set(identity, attempt);
    try {
      const lease = await attempt;
      lease.users = 1;
      held.set(identity, lease);
      return lease;
    } finally {
      taking.delete(identity);
    }
  }
}

async function takeLease(target: BootTarget, identity: string, opts: LeaseOptions): Promise<Lease> {
  const ttl = opts.ttlSeconds ?? 120;
  const log = opts.log ?? (() => undefined);
  const waitSeconds = opts.waitSeconds ?? (Number(process.env.RAMROOT_LEASE_WAIT ?? "0") || 0);
  const deadline = Date.now() + waitSeconds * 1000;
  let recordless = 0;
  let told = false;
  await ensureParent(target);
  for (;;) {
    if (await target.makeDirectoryExclusive(LEASE_DIR)) {
      const now = Date.now();
      const record: LeaseRecord = {
        owner: opts.owner,
        user: userName(),
        host: hostName,
        pid: process.pid,
        token: randomBytes(16).toString("hex"),
        acquired: new Date(now).toISOString(),
        expires: new Date(now + ttl * 1000).toISOString(),
      };
      await target.writeFileAtomic(LEASE_RECORD, JSON.stringify(record, null, 2) + "\n");
      return new Lease(identity, record, ttl);
    }
    const holder = await readLease(target);
    if (holder === undefined) {
      // Between someone's mkdir and their record, or a writer that died right there.
      recordless += 1;
      if (recordless > 20) {
        const orphan: LeaseRecord = {
          owner: "unknown",
          user: "?",
          host: "?",
          pid: 0,
          token: "",
          acquired: "?",
          expires: new Date(0).toISOString(),
        };
        await takeOver(target, orphan, "its directory had no holder record for 10 s", log);
        recordless = 0;
        continue;
      }
      await sleep(500);
      continue;
    }
    recordless = 0;
    const why = staleReason(holder);
    if (why !== undefined) {
      await takeOver(target, holder, why, log);
      continue;
    }
    if (Date.now() >= deadline) throw new LeaseHeldError(target.describe(), holder);
    if (!told) log(`${target.describe()}: waiting for the lease held by ${describeHolder(holder)}`);
    told = true;
    await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
  }
}

/** The lease this process holds on the target, if any. */
export function heldLease(target: BootTarget): Lease | undefined {
  return held.get(leaseKey(target.spec));
}

/**
 * Runs `fn` under the target's lease (kept alive while it runs). `keep: true` leaves the lease
 * held afterwards for a later step of the same deploy (the switch of DEFAULT releases it);
 * otherwise it is released, failure or not.
 */
export async function withLease<T>(
  target: BootTarget,
  opts: LeaseOptions & { keep?: boolean },
  fn: (lease: Lease) => Promise<T>,
): Promise<T> {
  const lease = await acquireLease(target, opts);
  const stop = lease.keepAlive(target);
  let ok = false;
  try {
    const result = await fn(lease);
    ok = true;
    return result;
  } finally {
    stop();
    await lease.end(target, opts.keep === true && ok, !ok).catch(() => undefined);
  }
}
