/**
 * What `ramroot qemu <machine>` boots: the machine's disk image when its target is one, else the
 * image the machine runs now, kernel and initramfs directly, as its own AbSystem's outputs in the
 * stack's state record them. Each machine's own: the stack's outputs hold what its program
 * exports (one machine's image at most), so a second machine booted them in its stead.
 */
import type { Stack } from "@pulumi/pulumi/automation";
import type { ImageFiles } from "../deploy/deployment-plan";
import { stackMachine } from "../deploy/stack-machines";
import type { BootMedia } from "../qemu/boot";
import { TargetError } from "../ramroot-error";

interface StateResource {
  urn: string;
  type: string;
  outputs?: { artifacts?: ImageFiles };
}

/** The image files the named machine's AbSystem last recorded in the stack's state. */
export async function machineArtifacts(stack: Stack, name: string): Promise<ImageFiles | undefined> {
  const deployment = (await stack.exportStack()).deployment as { resources?: StateResource[] } | undefined;
  const system = (deployment?.resources ?? []).find((r) => r.type.endsWith(":AbSystem") && r.urn.endsWith(`::${name}`));
  return system?.outputs?.artifacts;
}

export async function machineBootMedia(stack: Stack, projectDir: string, machine?: string): Promise<BootMedia> {
  const { name, target } = await stackMachine(stack, projectDir, machine);
  if (target.kind === "image") return { kind: "disk", image: target.path };
  const artifacts = await machineArtifacts(stack, name);
  if (!artifacts?.kernel)
    throw new TargetError(
      `qemu: machine ${name} of stack ${stack.name} has no built image with a kernel in the stack's state`,
      "run `pulumi up`, or give --disk",
    );
  return {
    kind: "kernel",
    kernel: artifacts.kernel.path,
    initrd: [...(artifacts.microcode ? [artifacts.microcode.path] : []), artifacts.initramfs.path],
    append: "rdinit=/sbin/init",
  };
}
