/**
 * The ramroot Pulumi program: one machine, driven by the stack's config
 * (stacks/Pulumi.<stack>.yaml). See README.md for every key.
 *
 *   ramroot:target     where the boot partition is: {kind: local|image|ssh, path, ...}
 *   ramroot:image      the image: release, repositories, keys, packages, overlay, services, ...
 *   ramroot:strategy   switch (default) or trial
 *   ramroot:trial      {probePath, timeoutSeconds, reboot} for the trial strategy
 *   ramroot:bootTest   {marker, timeoutSeconds}: boot the image in QEMU before it is written
 *   ramroot:append     extra kernel command line
 *   ramroot:rollbackTo a planId to select instead of the config's image (set by `ramroot rollback`)
 */
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { AbSystem } from "./components/ab-system";
import type { TargetSpec } from "./provider/boot/target";
import type { ImageConfigInput } from "./provider/image/image-config";
import type { TrialInputs } from "./provider/resources/syslinux-config-resource";

// The program runs compiled from dist/; paths in the stack config are relative to the project.
process.chdir(path.resolve(__dirname, ".."));

export = async () => {
  const config = new pulumi.Config("ramroot");
  const target = config.requireObject<TargetSpec>("target");
  const system = await AbSystem.create("machine", {
    target: target.kind === "ssh" ? target : { ...target, path: path.resolve(target.path) },
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
};
