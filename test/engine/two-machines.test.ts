import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { AbSystem } from "../../components/ab-system";
import { createDisk } from "../../provider/boot/disk-create";
import { inspectTarget } from "../../provider/boot/inspect";
import type { TargetSpec } from "../../provider/boot/target-spec";
import { release, rollback, stackPin } from "../../provider/deploy/rollback";
import { stackMachine } from "../../provider/deploy/stack-machines";
import { machineArtifacts } from "../../provider/cli/machine-media";
import { buildImageRepo, type ImageRepo } from "../fixtures/image-repo";
import { step } from "../fixtures/scenario-step";
import { engineStack, type EngineStack } from "./pulumi-harness";

// Two machines in one stack (two AbSystems, two disk images), with the real engine and
// provider: each deploys, is pinned by a rollback, and is released on its own; the CLI's
// verbs find each one's target by its name in the stack's state.
jest.setTimeout(1_800_000);

const MACHINES = ["nas", "router"] as const;
type Machine = (typeof MACHINES)[number];

let env: EngineStack;
let repo: ImageRepo;
const targets = {} as Record<Machine, TargetSpec>;
const overlays = {} as Record<Machine, string>;

function setMessage(machine: Machine, message: string): void {
  fs.writeFileSync(path.join(overlays[machine], "etc", "ramroot", "message"), `${machine} ${message}\n`);
}

/** The program: one AbSystem per machine, each on its own disk with its own overlay. */
async function program(): Promise<Record<string, unknown>> {
  const outputs: Record<string, unknown> = {};
  for (const machine of MACHINES) {
    const system = new AbSystem(machine, {
      target: targets[machine],
      image: {
        repositories: [repo.repository],
        keys: [repo.keysDir],
        packages: ["alpine-baselayout", "busybox", "ramroot-init"],
        overlay: overlays[machine],
        epoch: 1700000000,
      },
    });
    outputs[`${machine}ImageId`] = system.imageId;
  }
  return outputs;
}

const slots = (machine: Machine) => inspectTarget(targets[machine], ["a", "b"]);

beforeAll(async () => {
  env = await engineStack("two-machines", program);
  process.env.RAMROOT_IMAGE_CACHE = path.join(env.dir, "images");
  repo = await buildImageRepo(path.join(env.dir, "repo"));
  for (const machine of MACHINES) {
    const disk = path.join(env.dir, `${machine}.img`);
    await createDisk({ output: disk, sizeMiB: 64, layout: "mbr", slots: ["a", "b"] });
    targets[machine] = { kind: "image", path: disk };
    overlays[machine] = path.join(env.dir, `root-${machine}`);
    fs.mkdirSync(path.join(overlays[machine], "etc", "ramroot"), { recursive: true });
    setMessage(machine, "one");
  }
});
afterAll(async () => env?.cleanup());

test("two machines in one stack deploy, pin, roll back and release independently", async () => {
  const first = await step("update 1 deploys both machines, each to slot a of its own disk", async () => {
    const up = await env.stack.up();
    for (const machine of MACHINES) {
      const state = await slots(machine);
      expect(state.defaultSlot).toBe("a");
      expect(state.slots.a?.manifest?.imageId).toBe(up.outputs[`${machine}ImageId`]?.value);
    }
    expect(up.outputs.nasImageId?.value).not.toBe(up.outputs.routerImageId?.value);
    return up.outputs;
  });

  await step("the verbs find each machine's target by its name; without one, the stack's two are named", async () => {
    expect(await stackMachine(env.stack, env.dir, "router")).toEqual({ name: "router", target: targets.router });
    expect(await stackMachine(env.stack, env.dir, "nas")).toEqual({ name: "nas", target: targets.nas });
    await expect(stackMachine(env.stack, env.dir)).rejects.toThrow(
      /machine: none named; stack two-machines has 2 machines \(nas, router\).*name one, e.g. `ramroot status nas`/s,
    );
    await expect(stackMachine(env.stack, env.dir, "nsa")).rejects.toThrow(
      /machine: got "nsa"; stack two-machines has no machine \(AbSystem\) of that name.*name one of its machines: nas, router/s,
    );
  });

  await step("update 2: a new image for nas goes to its slot b; router is not touched", async () => {
    const routerBefore = await slots("router");
    setMessage("nas", "two");
    const up = await env.stack.up();
    expect(up.outputs.nasImageId?.value).not.toBe(first.nasImageId?.value);
    expect((await slots("nas")).defaultSlot).toBe("b");
    expect(await slots("router")).toEqual(routerBefore);
  });

  await step("`ramroot qemu <machine>` boots each machine's own image: the one its DEFAULT slot holds", async () => {
    // (the stack's outputs hold no image here; they held one machine's at most, which `qemu` booted for both)
    const sha = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");
    const booted: string[] = [];
    for (const machine of MACHINES) {
      const artifacts = await machineArtifacts(env.stack, machine);
      const state = await slots(machine);
      const slot = state.slots[state.defaultSlot!]!.manifest!;
      expect(sha(artifacts!.initramfs.path)).toBe(slot.files.initramfs?.sha256);
      expect(sha(artifacts!.kernel!.path)).toBe(slot.files.kernel?.sha256);
      booted.push(artifacts!.initramfs.path);
    }
    expect(booted[0]).not.toBe(booted[1]);
  });

  await step("rollback nas: nas alone goes back to update 1's image and is pinned; router is not", async () => {
    const routerBefore = await slots("router");
    const result = await rollback(env.stack, targets.nas, { machine: "nas" });
    expect(result).toMatchObject({ update: 1, inSlot: "a" });
    const nas = await slots("nas");
    expect(nas.defaultSlot).toBe("a");
    expect(nas.slots.a?.manifest?.imageId).toBe(first.nasImageId?.value);
    expect(nas.journal[nas.journal.length - 1]).toMatchObject({ how: "rollback", update: 1, slot: "a" });
    expect(await slots("router")).toEqual(routerBefore);
    expect((await stackPin(env.stack, "nas"))?.update).toBe(1);
    expect(await stackPin(env.stack, "router")).toBeUndefined();
  });

  const routerTwo = await step("under nas's pin, router deploys a new image; nas stays on update 1's", async () => {
    setMessage("router", "two");
    const up = await env.stack.up();
    expect(up.outputs.nasImageId?.value).toBe(first.nasImageId?.value);
    expect(up.outputs.routerImageId?.value).not.toBe(first.routerImageId?.value);
    expect((await slots("router")).defaultSlot).toBe("b");
    expect((await slots("nas")).defaultSlot).toBe("a");
    return up.outputs.routerImageId?.value;
  });

  await step("rollback router: its own journal (back to image one), its own pin; nas's pin kept", async () => {
    const result = await rollback(env.stack, targets.router, { machine: "router" });
    // the newest earlier update that left router another image than now: nas's rollback (3),
    // which left router's image one running
    expect(result).toMatchObject({ update: 3, inSlot: "a" });
    expect((await slots("router")).slots.a?.manifest?.imageId).toBe(first.routerImageId?.value);
    expect((await slots("router")).defaultSlot).toBe("a");
    expect((await stackPin(env.stack, "router"))?.update).toBe(3);
    expect((await stackPin(env.stack, "nas"))?.update).toBe(1);
  });

  await step("release nas: up deploys nas's config image again; router stays pinned", async () => {
    const routerBefore = await slots("router");
    expect((await release(env.stack, "nas"))?.update).toBe(1);
    expect((await stackPin(env.stack, "router"))?.update).toBe(3);
    expect(await stackPin(env.stack, "nas")).toBeUndefined();
    const up = await env.stack.up();
    expect(up.outputs.nasImageId?.value).not.toBe(first.nasImageId?.value);
    expect((await slots("nas")).defaultSlot).toBe("b");
    expect(up.outputs.routerImageId?.value).toBe(first.routerImageId?.value);
    expect(up.outputs.routerImageId?.value).not.toBe(routerTwo);
    expect(await slots("router")).toEqual(routerBefore);
  });
});
