import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createDisk } from "../../provider/boot/disk-create";
import {
  acquireLease,
  LEASE_DIR,
  LEASE_RECORD,
  LeaseHeldError,
  readLease,
  heldLease,
  withLease,
  type LeaseRecord,
} from "../../provider/boot/lease";
import { writeSlot } from "../../provider/boot/slot";
import { openTarget, type BootTarget, type TargetSpec } from "../../provider/boot/target";

// The lease protocol on a mounted directory and on a FAT disk image (mtools under an flock of
// the image file). Other holders are real processes of this host (their pid in the record).
jest.setTimeout(120_000);

let dir: string;
const children: ChildProcess[] = [];
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-lease-"));
});
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A live process of this host that is not this one: what another deploy's pid looks like. */
function otherProcess(): ChildProcess {
  const child = spawn("sleep", ["600"], { stdio: "ignore" });
  children.push(child);
  return child;
}

function record(over: Partial<LeaseRecord>): LeaseRecord {
  const now = Date.now();
  return {
    owner: "pulumi up: BootSlot b <- image 0123456789ab",
    user: "alice",
    host: os.hostname(),
    pid: 1,
    token: "0".repeat(32),
    acquired: new Date(now - 5000).toISOString(),
    expires: new Date(now + 60_000).toISOString(),
    ...over,
  };
}

/** Plants a lease as another writer leaves it: the directory, then its record. */
async function plant(target: BootTarget, r: LeaseRecord): Promise<void> {
  await target.makeDirectoryExclusive("ramroot");
  expect(await target.makeDirectoryExclusive(LEASE_DIR)).toBe(true);
  await target.writeFileAtomic(LEASE_RECORD, JSON.stringify(r));
}

async function kinds(): Promise<[string, TargetSpec][]> {
  const local = path.join(dir, `local-${Math.random().toString(36).slice(2)}`);
  fs.mkdirSync(local);
  const image = path.join(dir, `disk-${Math.random().toString(36).slice(2)}.img`);
  await createDisk({ output: image, sizeMiB: 8, layout: "mbr", slots: ["a", "b"] });
  return [
    ["local", { kind: "local", path: local }],
    ["image", { kind: "image", path: image }],
  ];
}

test("a live lease of another process refuses a writer, naming the holder; a waiting writer gets it when that process ends", async () => {
  for (const [kind, spec] of await kinds()) {
    const target = await openTarget(spec);
    try {
      const holder = otherProcess();
      await plant(target, record({ pid: holder.pid! }));
      const refused = await acquireLease(target, { owner: "second" }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(LeaseHeldError);
      expect(String(refused)).toMatch(
        new RegExp(
          `${kind} .* is leased by "pulumi up: BootSlot b <- image 0123456789ab" \\(user alice, pid ${holder.pid} on host ${os.hostname()}, since .*\\) until `,
        ),
      );
      // A slot write under the lease is refused before anything is written.
      const kernel = path.join(dir, "k");
      fs.writeFileSync(kernel, "kernel");
      await expect(
        withLease(target, { owner: "slot writer" }, () =>
          writeSlot(target, {
            slot: "a",
            files: { kernel, initramfs: kernel },
            manifest: { imageId: "i", planId: "p" },
          }),
        ),
      ).rejects.toThrow(/is leased by/);
      expect(await target.list("a")).toEqual([]);

      const messages: string[] = [];
      setTimeout(() => holder.kill("SIGKILL"), 1500);
      const lease = await acquireLease(target, { owner: "patient", waitSeconds: 60, log: (m) => messages.push(m) });
      expect(messages[0]).toMatch(/waiting for the lease held by "pulumi up: BootSlot b/);
      expect(messages[1]).toMatch(new RegExp(`taking over the lease of .*: its process ${holder.pid} on .* is gone`));
      expect((await readLease(target))?.owner).toBe("patient");
      expect((await readLease(target))?.pid).toBe(process.pid);
      await lease.release(target);
      expect(await readLease(target)).toBeUndefined();
      expect((await target.list("ramroot")).filter((n) => n.startsWith("lease"))).toEqual([]);
    } finally {
      await target.close();
    }
  }
});

test("an expired lease of another host is taken over with a message; a lost lease stops its holder before the commit", async () => {
  for (const [, spec] of await kinds()) {
    const target = await openTarget(spec);
    try {
      const old = record({ host: "elsewhere", pid: 4242, expires: new Date(Date.now() - 1000).toISOString() });
      await plant(target, old);
      const messages: string[] = [];
      const lease = await acquireLease(target, { owner: "taker", log: (m) => messages.push(m) });
      expect(messages).toEqual([
        expect.stringMatching(
          /taking over the lease of "pulumi up: BootSlot b .*pid 4242 on host elsewhere.*: it expired at /,
        ),
      ]);
      await lease.assertHeld(target);
      // Someone takes it away (here: by hand): the holder notices at its next check.
      await target.remove(LEASE_DIR);
      await plant(target, record({ owner: "intruder", host: "elsewhere", token: "f".repeat(32) }));
      await expect(lease.assertHeld(target)).rejects.toThrow(
        /lost its lease on the boot target \(now held by "intruder"/,
      );
      await lease.release(target); // not its lease any more: left alone
      expect((await readLease(target))?.owner).toBe("intruder");
    } finally {
      await target.close();
    }
  }
});

test("steps of one deploy share its lease: concurrent uses in one process, kept by a slot write, given back by the switch", async () => {
  const spec = (await kinds()).find(([kind]) => kind === "image")?.[1];
  if (!spec) throw new Error("no image target");
  const target = await openTarget(spec);
  try {
    let inside = 0;
    const step = (keep: boolean) =>
      withLease(target, { owner: "pulumi up: BootSlot", keep }, async () => {
        inside += 1;
        expect((await readLease(target))?.owner).toBe("pulumi up: BootSlot");
        await sleep(300);
      });
    // Two slot steps at once: one lease taken, not two racing each other.
    await Promise.all([step(true), step(true)]);
    expect(inside).toBe(2);
    expect((await readLease(target))?.pid).toBe(process.pid); // kept for the switch
    await withLease(target, { owner: "pulumi up: SyslinuxConfig" }, async () => {
      expect((await readLease(target))?.owner).toBe("pulumi up: BootSlot");
    });
    expect(await readLease(target)).toBeUndefined();
  } finally {
    await target.close();
  }
});

test("a slot repair that ends beside a slot write does not give back the lease the write keeps for the switch (either order); a failure does", async () => {
  const spec = (await kinds()).find(([kind]) => kind === "image")?.[1];
  if (!spec) throw new Error("no image target");
  const target = await openTarget(spec);
  try {
    const step = (keep: boolean, ms: number, fail = false) =>
      withLease(
        target,
        { owner: keep ? "pulumi up: BootSlot b" : "pulumi up: BootSlot a (repair)", keep },
        async () => {
          await sleep(ms);
          if (fail) throw new Error("copy failed");
        },
      );
    const switchDefault = () =>
      withLease(target, { owner: "pulumi up: SyslinuxConfig" }, async () => {
        // Still the lease the first step took: nobody could write or switch in between.
        expect((await readLease(target))?.owner).toMatch(/^pulumi up: BootSlot/);
      });
    for (const [repairMs, writeMs] of [
      [100, 400], // the repair ends first
      [400, 100], // the write ends first
    ] as const) {
      await Promise.all([step(false, repairMs), step(true, writeMs)]);
      expect((await readLease(target))?.pid).toBe(process.pid); // kept for the switch
      await switchDefault();
      expect(await readLease(target)).toBeUndefined(); // the switch gave it back
    }
    // A failed write beside a repair: nothing will switch, so the lease is given back.
    await Promise.all([step(false, 100), step(true, 300, true).catch(() => undefined)]);
    expect(await readLease(target)).toBeUndefined();
    // A repair alone gives it back at once.
    await step(false, 10);
    expect(await readLease(target)).toBeUndefined();
  } finally {
    await target.close();
  }
});

test("one partition spelled two ways (auto-detected and named, through a symlink) is one lease in a process", async () => {
  const spec = (await kinds()).find(([kind]) => kind === "image")?.[1];
  if (spec?.kind !== "image") throw new Error("no image target");
  const link = `${spec.path}.link`;
  fs.symlinkSync(spec.path, link);
  const first = await openTarget(spec);
  const second = await openTarget({ kind: "image", path: link, partition: 1 });
  try {
    const lease = await acquireLease(first, { owner: "pulumi up: BootSlot" });
    expect(heldLease(second)).toBe(lease);
    // The second spelling joins the lease instead of waiting for itself.
    await withLease(second, { owner: "pulumi up: SyslinuxConfig", keep: true }, async () => {
      expect((await readLease(second))?.token).toBe(lease.record.token);
    });
    await lease.release(first);
    expect(await readLease(first)).toBeUndefined();
  } finally {
    await first.close();
    await second.close();
  }
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
