import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createDisk } from "../../provider/boot/disk-create";
import type { TargetSpec } from "../../provider/boot/target-spec";
import { inspectTarget } from "../../provider/boot/inspect";
import { stackHistory } from "../../provider/deploy/history";
import { release, rollback, stackPin } from "../../provider/deploy/rollback";
import { sshTarget, startSshd, type TestSshd } from "../boot/sshd";
import { buildImageRepo, stackImageConfig, type ImageRepo } from "../fixtures/image-repo";
import { step } from "../fixtures/scenario-step";
import { machineStack, type EngineStack } from "./pulumi-harness";
import { bootPartitionDir } from "../fixtures/boot-partition-dir";

// History numbers that never move and a rollback that holds, with the real engine (file
// backend: every entry is version 0) and the stack's own program: on a disk image (12 updates
// and 2 refreshes) and over ssh (sshd on loopback, the key a secret), where a
// damaged idle slot is also rewritten from the cache by one `up` and a boot test gates a
// switch of DEFAULT that writes no slot.
jest.setTimeout(1_800_000);

let work: string;
let repo: ImageRepo;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-rollback-pin-"));
  // One image cache for both stacks (the provider plugins inherit it): same config, same build.
  process.env.RAMROOT_IMAGE_CACHE = path.join(work, "images");
  repo = await buildImageRepo(path.join(work, "repo"));
});
afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** The stack config: `target`, the image with `message` in its overlay, and any other keys. */
async function configure(
  env: EngineStack,
  target: TargetSpec,
  message: string,
  extra: Record<string, { value: string; secret?: boolean }> = {},
): Promise<void> {
  const overlay = path.join(env.dir, "root");
  fs.mkdirSync(path.join(overlay, "etc", "ramroot"), { recursive: true });
  fs.writeFileSync(path.join(overlay, "etc", "ramroot", "message"), `${message}\n`);
  await env.stack.setAllConfig({
    "ramroot:target": { value: JSON.stringify(target), secret: target.kind === "ssh" },
    "ramroot:image": stackImageConfig(repo, overlay),
    ...extra,
  });
}

type Outputs = Awaited<ReturnType<EngineStack["stack"]["outputs"]>>;

/** imageId, planId, packages and artifacts of the outputs, as one record. */
function image(o: Outputs) {
  return {
    imageId: o.imageId?.value,
    planId: o.planId?.value,
    packages: o.packages?.value,
    artifacts: o.artifacts?.value,
  };
}

const updateNumbers = async (env: EngineStack) =>
  (await stackHistory(env.stack)).filter((h) => h.kind === "update").map((h) => h.number);

/** After `rollback --to 1`: the outputs all describe update 1's image, and name the pin. */
async function expectOutputsOfUpdateOne(env: EngineStack, first: Outputs): Promise<void> {
  const outputs = await env.stack.outputs();
  expect(image(outputs)).toEqual(image(first));
  expect(outputs.pinned?.value).toMatch(/^update 1 \(image [0-9a-f]{12}\)$/);
}

/** An unrelated config edit under the pin: the preview warns of it and switches nothing; up keeps update 1's image. */
async function expectPinHoldsThroughEdit(env: EngineStack, target: TargetSpec, first: Outputs): Promise<void> {
  await configure(env, target, "three");
  const preview = await env.stack.preview({ diff: true });
  // the CLI prints warnings on its standard error
  expect(preview.stderr).toMatch(/warning: pinned to update 1 \(image [0-9a-f]{12}\)/);
  expect(preview.stdout).not.toMatch(/defaultLabel\s*: "a" => "b"/);
  const up = await env.stack.up();
  expect(image(up.outputs)).toEqual(image(first));
}

describe("a disk image", () => {
  let env: EngineStack;
  let target: TargetSpec;

  beforeAll(async () => {
    env = await machineStack("history");
    const disk = path.join(env.dir, "disk.img");
    await createDisk({ output: disk, sizeMiB: 64, layout: "mbr", slots: ["a", "b"] });
    target = { kind: "image", path: disk };
  });
  afterAll(async () => env?.cleanup());

  // One scenario, its steps in order: each needs the history the one before made.
  test("12 updates and 2 refreshes, rollback --to 1, the pin through an edit, release, rollback with no argument", async () => {
    const first = await step("12 updates and 2 refreshes are numbered 1 to 12", async () => {
      await configure(env, target, "one");
      const outputs = (await env.stack.up()).outputs;
      await configure(env, target, "two");
      await env.stack.up();
      for (let n = 3; n <= 12; n++) {
        if (n === 5 || n === 9) await env.stack.refresh();
        await env.stack.up();
      }
      const history = await stackHistory(env.stack);
      expect(history.filter((h) => h.kind === "update").map((h) => h.number)).toEqual([
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
      ]);
      expect(history.filter((h) => h.kind === "refresh").map((h) => h.number)).toEqual([undefined, undefined]);
      return outputs;
    });

    await step("rollback --to 1 still means the first update; the rollback is update 13", async () => {
      await expect(rollback(env.stack, target, { to: 99 })).rejects.toThrow(
        /--to: no update 99 in this stack \(its updates are numbered 1 to 12/,
      );
      const result = await rollback(env.stack, target, { to: 1 });
      expect(result.update).toBe(1);
      expect(result.planId).toBe(first.planId?.value);
      expect(result.inSlot).toBe("a");
      const state = await inspectTarget(target, ["a", "b"]);
      expect(state.defaultSlot).toBe("a");
      expect(state.slots.a?.manifest?.imageId).toBe(first.imageId?.value);
      const last = state.journal[state.journal.length - 1];
      expect(last).toMatchObject({ how: "rollback", update: 1, slot: "a", imageId: first.imageId?.value });
      expect(await updateNumbers(env)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
      expect((await stackHistory(env.stack)).find((h) => h.number === 13)?.message).toMatch(
        /ramroot rollback to update 1/,
      );
    });

    await step("outputs after a rollback name one image: the one rolled back to", () =>
      expectOutputsOfUpdateOne(env, first),
    );

    await step("the pin holds through an unrelated config edit", async () => {
      await expectPinHoldsThroughEdit(env, target, first);
      expect((await inspectTarget(target, ["a", "b"])).defaultSlot).toBe("a");
      expect((await stackPin(env.stack))?.update).toBe(1);
    });

    await step("released, the preview shows the way back and up takes it", async () => {
      expect((await release(env.stack))?.update).toBe(1);
      expect(await stackPin(env.stack)).toBeUndefined();
      const back = await env.stack.preview({ diff: true });
      expect(back.stdout + back.stderr).not.toMatch(/pinned to update/);
      expect(back.stdout).toMatch(/machine-slot-b/);
      expect(back.stdout).toMatch(/defaultLabel\s*: "a" => "b"/);
      const released = await env.stack.up();
      expect(released.outputs.imageId?.value).not.toBe(first.imageId?.value);
      const state = await inspectTarget(target, ["a", "b"]);
      expect(state.defaultSlot).toBe("b");
      expect(state.slots.b?.manifest?.imageId).toBe(released.outputs.imageId?.value);
    });

    // the release deployed "three" (update 15); update 14 kept "one" (pinned)
    await step(
      "rollback with no argument goes to the newest earlier update that left another image running",
      async () => {
        const result = await rollback(env.stack, target);
        expect(result.update).toBe(14);
        expect(result.planId).toBe(first.planId?.value);
        expect((await inspectTarget(target, ["a", "b"])).defaultSlot).toBe("a");
      },
    );
  });
});

describe("an ssh target (sshd on loopback)", () => {
  let env: EngineStack;
  let sshd: TestSshd;
  let target: TargetSpec;

  beforeAll(async () => {
    env = await machineStack("history-ssh");
    sshd = await startSshd();
    const boot = await bootPartitionDir(path.join(env.dir, "boot"));
    target = sshTarget(sshd, boot);
  });
  afterAll(async () => {
    await sshd?.stop();
    await env?.cleanup();
  });

  // One scenario, its steps in order (the 12 + 2 count is shown above; here 2 updates and a refresh).
  test("rollback --to 1 after a refresh, one image in the outputs, the pin through an edit, a damaged idle slot repaired, release, a boot test gating a switch", async () => {
    const slotsNow = () => inspectTarget(target, ["a", "b"]);

    const [first, second] = await step(
      "update 1 writes slot a, update 2 slot b; a refresh takes no number",
      async () => {
        await configure(env, target, "one");
        const one = (await env.stack.up()).outputs;
        await configure(env, target, "two");
        const two = (await env.stack.up()).outputs;
        await env.stack.refresh();
        expect(await updateNumbers(env)).toEqual([1, 2]);
        return [one, two];
      },
    );

    await step(
      "rollback --to 1 means the first update: a switch to slot a, no copy, journalled as a rollback",
      async () => {
        const rolled = await rollback(env.stack, target, { to: 1 });
        expect(rolled).toMatchObject({ update: 1, planId: first.planId?.value, inSlot: "a" });
        const state = await slotsNow();
        expect(state.defaultSlot).toBe("a");
        expect(state.journal[state.journal.length - 1]).toMatchObject({
          how: "rollback",
          update: 1,
          slot: "a",
          imageId: first.imageId?.value,
        });
        expect(await updateNumbers(env)).toEqual([1, 2, 3]);
      },
    );

    await step("the outputs name one image: the one rolled back to", () => expectOutputsOfUpdateOne(env, first));

    await step("an unrelated edit: the preview warns of the pin and switches nothing; up keeps image one", async () => {
      await expectPinHoldsThroughEdit(env, target, first);
      const state = await slotsNow();
      expect(state.defaultSlot).toBe("a");
      expect(state.slots.b?.manifest?.imageId).toBe(second.imageId?.value);
    });

    await step(
      "slot b (idle, image two, which the cache holds) damaged on the machine: one up rewrites it",
      async () => {
        // A layered slot: a layer only slot b names, not one slot a shares; a whole-file slot (its
        // image cached before layer sizes were recorded): b/initramfs.
        const before = await slotsNow();
        const shared = new Set((before.slots.a?.manifest?.layers ?? []).map((l) => l.path));
        const own = (before.slots.b?.manifest?.layers ?? []).find((l) => !shared.has(l.path));
        fs.writeFileSync(path.join(target.path, own?.path ?? "b/initramfs"), "bit rot");
        expect((await slotsNow()).slots.b?.consistent).toBe(false);
        const preview = await env.stack.preview({ diff: true });
        expect(preview.changeSummary.update).toBe(1);
        expect(preview.stdout).toMatch(/machine-slot-b/);
        const repair = await env.stack.up();
        expect(repair.summary.resourceChanges?.update).toBe(1);
        const state = await slotsNow();
        expect(state.slots.b?.consistent).toBe(true);
        expect(state.slots.b?.manifest?.imageId).toBe(second.imageId?.value);
        expect(state.defaultSlot).toBe("a");
        expect(state.lease).toBeUndefined();
        expect(fs.existsSync(path.join(target.path, "ramroot", "lease"))).toBe(false);
        expect((await env.stack.preview()).changeSummary.update ?? 0).toBe(0);
      },
    );

    const third = await step("released: the preview shows the way back, and up deploys image three to b", async () => {
      expect((await release(env.stack))?.update).toBe(1);
      const back = await env.stack.preview({ diff: true });
      expect(back.stdout + back.stderr).not.toMatch(/pinned to update/);
      expect(back.stdout).toMatch(/defaultLabel\s*: "a" => "b"/);
      const outputs = (await env.stack.up()).outputs;
      expect((await slotsNow()).defaultSlot).toBe("b");
      return outputs;
    });

    await step(
      "config one again (in slot a): a switch that writes no slot waits for the boot test, which fails: DEFAULT stays b",
      async () => {
        const before = await slotsNow();
        await configure(env, target, "one", {
          "ramroot:bootTest": {
            value: JSON.stringify({
              marker: "NEVER-PRINTED",
              timeoutSeconds: 600,
              append: "rdinit=/nonexistent panic=-1",
            }),
          },
        });
        const gated = await env.stack.preview({ diff: true });
        expect(gated.stdout).toMatch(/defaultLabel\s*: "b" => "a"/);
        await expect(env.stack.up()).rejects.toThrow(/boot test: image [0-9a-f]{12} stopped .* before printing it/);
        const after = await slotsNow();
        expect(after.defaultSlot).toBe("b");
        expect(after.slots.b?.manifest?.imageId).toBe(third.imageId?.value);
        expect(after.slots.a?.manifest).toEqual(before.slots.a?.manifest);
        expect(after.slots.b?.manifest).toEqual(before.slots.b?.manifest);
      },
    );
  });
});
