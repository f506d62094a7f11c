import * as crypto from "node:crypto";
import * as fs from "node:fs";
import { inspectTarget } from "../../provider/boot/inspect";
import type { TargetSpec } from "../../provider/boot/target";
import { formatTargetId } from "../../provider/resources/target-id";
import { BootSlot, SyslinuxConfig } from "../../components/resources";
import { engineStack } from "./pulumi-harness";

const sha256 = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

/**
 * Another stack (`name`) adopts what an ESP image holds: slots a and b by their ids (their files
 * as the manifests name them, signed UKIs included, with `certificate` when given) and the loader
 * config. The import writes nothing to the disk and reports three imports and DEFAULT `defaultSlot`;
 * a preview afterwards, without the import options, shows no change.
 */
export async function expectEspImport(
  name: string,
  target: TargetSpec,
  defaultSlot: string,
  certificate?: string,
): Promise<void> {
  const held = await inspectTarget(target, ["a", "b"]);
  const spec = held.config!.spec;
  const id = formatTargetId(target);
  let importing = true;
  const adopt = await engineStack(name, async () => {
    const slots = ["a", "b"].map((slot) => {
      const f = held.slots[slot]!.manifest!.files;
      return new BootSlot(
        `slot-${slot}`,
        {
          target,
          slot,
          imageId: held.slots[slot]!.manifest!.imageId,
          planId: held.slots[slot]!.manifest!.planId,
          files: {
            kernel: f.kernel!.sha256,
            initramfs: f.initramfs!.sha256,
            ...(f.uki ? { uki: f.uki.sha256 } : {}),
            ...(f.trialUki ? { trialUki: f.trialUki.sha256 } : {}),
          },
          ...(certificate !== undefined ? { certificate } : {}),
        },
        importing ? { import: `${id}#${slot}` } : {},
      );
    });
    const config = new SyslinuxConfig(
      "boot",
      { target, scheme: "uefi", defaultLabel: spec.defaultLabel, timeout: spec.timeout, entries: spec.entries },
      { dependsOn: slots, ...(importing ? { import: id } : {}) },
    );
    return { default: config.activeDefault, scheme: config.scheme };
  });
  try {
    const disk = (target as { path: string }).path;
    const before = sha256(disk);
    const up = await adopt.stack.up();
    expect(up.summary.resourceChanges?.import).toBe(3);
    expect(up.outputs.default!.value).toBe(defaultSlot);
    expect(up.outputs.scheme!.value).toBe("uefi");
    expect(sha256(disk)).toBe(before);
    importing = false;
    const preview = await adopt.stack.preview({ diff: true });
    expect(preview.changeSummary.update ?? 0).toBe(0);
    expect(preview.changeSummary.same).toBe(4);
  } finally {
    await adopt.cleanup();
  }
}
