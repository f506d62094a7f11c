/**
 * The ramroot program, driven by the stack's config; index.ts runs it, and the engine tests
 * run it as an inline program. Keys (all under the `ramroot:` namespace):
 *
 *   target     where the boot partition is: {kind: local|image|ssh, path, ...}
 *   image      the image: release, repositories, keys, packages, overlay, services, ...
 *   strategy   switch (default) or trial
 *   trial      {probePath, timeoutSeconds, reboot} for the trial strategy
 *   bootTest   {marker, timeoutSeconds}: boot the image in QEMU before it is written
 *   append     extra kernel command line
 *   rollbackTo a planId to select instead of the config's image (set by `ramroot rollback`)
 */
import * as pulumi from "@pulumi/pulumi";
import { AbSystem } from "./ab-system";
import { resolveTargetSpec, type TargetSpec } from "../provider/boot/target-spec";
import type { ImageConfigInput } from "../provider/image/image-config";
import type { TrialInputs } from "../provider/resources/syslinux-config-resource";

export async function machineProgram(): Promise<Record<string, unknown>> {
  const config = new pulumi.Config("ramroot");
  const target = config.requireObject<TargetSpec>("target");
  const system = await AbSystem.create("machine", {
    target: resolveTargetSpec(target, process.cwd()),
    image: config.requireObject<ImageConfigInput>("image"),
    strategy: (config.get("strategy") as "switch" | "trial" | undefined) ?? "switch",
    trial: config.getObject<Partial<TrialInputs>>("trial"),
    bootTest: config.getObject<{ marker: string; timeoutSeconds?: number }>("bootTest"),
    append: config.get("append"),
    rollbackTo: config.get("rollbackTo"),
  });
  return {
    activeSlot: system.activeSlot,
    imageId: system.imageId,
    planId: system.planId,
    packages: system.image.lock,
    artifacts: system.image.artifacts,
    syslinuxDefault: system.syslinux.activeDefault,
  };
}
