import * as fs from "node:fs";
import * as path from "node:path";
import { inspectTarget } from "../../provider/boot/inspect";
import { buildImageRepo, type ImageRepo } from "../fixtures/image-repo";
import { step } from "../fixtures/scenario-step";
import { machineStack, type EngineStack } from "./pulumi-harness";
import { bootPartitionDir } from "../fixtures/boot-partition-dir";

// The A/B component built by the provider (Construct), on a mounted-directory target: the
// program only declares it; the provider reads the target, plans once, and declares the rest.
jest.setTimeout(1_800_000);

let env: EngineStack;
let repo: ImageRepo;
let boot: string;
let overlay: string;

function imageConfig(packages: string[]) {
  return {
    repositories: [repo.repository],
    keys: [repo.keysDir],
    packages,
    kernel: "lts",
    overlay,
    hostname: "component-test",
    epoch: 1700000000,
  };
}

async function setConfig(packages: string[]): Promise<void> {
  await env.stack.setAllConfig({
    "ramroot:target": { value: JSON.stringify({ kind: "local", path: boot }) },
    "ramroot:image": { value: JSON.stringify(imageConfig(packages)) },
  });
}

beforeAll(async () => {
  env = await machineStack("component");
  process.env.RAMROOT_IMAGE_CACHE = path.join(env.dir, "images");
  repo = await buildImageRepo(path.join(env.dir, "repo"));
  overlay = path.join(env.dir, "root");
  fs.mkdirSync(path.join(overlay, "etc", "ramroot"), { recursive: true });
  fs.writeFileSync(path.join(overlay, "etc", "ramroot", "message"), "first\n");
  boot = await bootPartitionDir(path.join(env.dir, "boot"));
});
afterAll(async () => env?.cleanup());

test("through Construct: up writes slot a with DEFAULT a and outputs of one image; a no-change preview shows no change", async () => {
  await step("up through Construct: slot a written, DEFAULT a, outputs of one image", async () => {
    await setConfig(["alpine-baselayout", "busybox", "ramroot-init"]);
    const up = await env.stack.up();
    expect(up.summary.result).toBe("succeeded");
    expect(up.outputs.activeSlot!.value).toBe("a");
    const state = await inspectTarget({ kind: "local", path: boot }, ["a", "b"]);
    expect(state.defaultSlot).toBe("a");
    expect(state.slots.a?.manifest?.imageId).toBe(up.outputs.imageId!.value);
    expect((up.outputs.artifacts!.value as { initramfs: { sha256: string } }).initramfs.sha256).toBe(
      state.slots.a?.files.initramfs?.sha256,
    );
  });

  await step("a no-change preview shows no change", async () => {
    const preview = await env.stack.preview({ diff: true });
    expect(preview.changeSummary.update ?? 0).toBe(0);
    expect(preview.changeSummary.create ?? 0).toBe(0);
    expect(preview.changeSummary.delete ?? 0).toBe(0);
  });
});
