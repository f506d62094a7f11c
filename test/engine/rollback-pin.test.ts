import * as fs from "node:fs";
import * as path from "node:path";
import { inspectTarget } from "../../provider/boot/inspect";
import { stackHistory } from "../../provider/deploy/history";
import { release, rollback, stackPin } from "../../provider/deploy/rollback";
import { buildImageRepo, type ImageRepo } from "../fixtures/image-repo";
import { machineStack, type EngineStack } from "./pulumi-harness";

// History numbers that never move and a rollback that holds, with the real engine (file
// backend: every entry is version 0) on a mounted-directory target.
jest.setTimeout(1_800_000);

let env: EngineStack;
let repo: ImageRepo;
let boot: string;
let overlay: string;
const target = () => ({ kind: "local" as const, path: boot });

async function configure(message: string): Promise<void> {
  fs.writeFileSync(path.join(overlay, "etc", "ramroot", "message"), `${message}\n`);
  await env.stack.setAllConfig({
    "ramroot:target": { value: JSON.stringify(target()) },
    "ramroot:image": {
      value: JSON.stringify({
        repositories: [repo.repository],
        keys: [repo.keysDir],
        packages: ["alpine-baselayout", "busybox", "ramroot-init"],
        overlay,
        epoch: 1700000000,
      }),
    },
  });
}

beforeAll(async () => {
  env = await machineStack("history");
  process.env.RAMROOT_IMAGE_CACHE = path.join(env.dir, "images");
  repo = await buildImageRepo(path.join(env.dir, "repo"));
  overlay = path.join(env.dir, "root");
  fs.mkdirSync(path.join(overlay, "etc", "ramroot"), { recursive: true });
  boot = path.join(env.dir, "boot");
  fs.mkdirSync(boot);
});
afterAll(async () => env?.cleanup());

type Outputs = Awaited<ReturnType<EngineStack["stack"]["outputs"]>>;
let first: Outputs;

/** imageId, planId, packages and artifacts of the outputs, as one record. */
function image(o: Outputs) {
  return {
    imageId: o.imageId?.value,
    planId: o.planId?.value,
    packages: o.packages?.value,
    artifacts: o.artifacts?.value,
  };
}

test("12 updates and 2 refreshes later, rollback --to 1 still means the first update", async () => {
  await configure("one");
  first = (await env.stack.up()).outputs;
  await configure("two");
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

  await expect(rollback(env.stack, target(), { to: 99 })).rejects.toThrow(
    /--to: no update 99 in this stack \(its updates are numbered 1 to 12/,
  );
  const result = await rollback(env.stack, target(), { to: 1 });
  expect(result.update).toBe(1);
  expect(result.planId).toBe(first.planId?.value);
  expect(result.inSlot).toBe("a");

  const state = await inspectTarget(target(), ["a", "b"]);
  expect(state.defaultSlot).toBe("a");
  expect(state.slots.a?.manifest?.imageId).toBe(first.imageId?.value);
  const last = state.journal[state.journal.length - 1];
  expect(last).toMatchObject({ how: "rollback", update: 1, slot: "a", imageId: first.imageId?.value });
  // numbers given before stay; the rollback is update 13
  const after = await stackHistory(env.stack);
  expect(after.filter((h) => h.kind === "update").map((h) => h.number)).toEqual([
    ...Array.from({ length: 13 }, (_, i) => i + 1),
  ]);
  expect(after.find((h) => h.number === 13)?.message).toMatch(/ramroot rollback to update 1/);
});

test("outputs after a rollback name one image: the one rolled back to", async () => {
  const outputs = await env.stack.outputs();
  expect(image(outputs)).toEqual(image(first));
  expect(outputs.pinned?.value).toMatch(/^update 1 \(image [0-9a-f]{12}\)$/);
});

test("the pin holds through an unrelated config edit until it is released; then the preview shows the way back", async () => {
  await configure("three");
  const preview = await env.stack.preview({ diff: true });
  // the CLI prints warnings on its standard error
  expect(preview.stderr).toMatch(/warning: pinned to update 1 \(image [0-9a-f]{12}\)/);
  expect(preview.stdout).not.toMatch(/defaultLabel\s*: "a" => "b"/);
  const up = await env.stack.up();
  expect(image(up.outputs)).toEqual(image(first));
  expect((await inspectTarget(target(), ["a", "b"])).defaultSlot).toBe("a");
  expect((await stackPin(env.stack))?.update).toBe(1);

  expect((await release(env.stack))?.update).toBe(1);
  expect(await stackPin(env.stack)).toBeUndefined();
  const back = await env.stack.preview({ diff: true });
  expect(back.stdout + back.stderr).not.toMatch(/pinned to update/);
  expect(back.stdout).toMatch(/machine-slot-b/);
  expect(back.stdout).toMatch(/defaultLabel\s*: "a" => "b"/);
  const released = await env.stack.up();
  expect(released.outputs.imageId?.value).not.toBe(first.imageId?.value);
  const state = await inspectTarget(target(), ["a", "b"]);
  expect(state.defaultSlot).toBe("b");
  expect(state.slots.b?.manifest?.imageId).toBe(released.outputs.imageId?.value);
});

test("rollback with no argument goes to the newest earlier update that left another image running", async () => {
  const result = await rollback(env.stack, target());
  // the release deployed "three" (update 15); update 14 kept "one" (pinned): it is the newest with another image
  expect(result.update).toBe(14);
  expect(result.planId).toBe(first.planId?.value);
  expect((await inspectTarget(target(), ["a", "b"])).defaultSlot).toBe("a");
});
