/**
 * The ramroot package schema: each resource's zod schemas, named types for the objects they
 * share, turned into Pulumi's schema by provider/resources/schema.ts.
 */
import { alpineImageInputsSchema, alpineImageOutputsSchema } from "./alpine-image-resource";
import { bootSlotInputsSchema, bootSlotOutputsSchema } from "./boot-slot-resource";
import { bootTestInputsSchema, bootTestOutputsSchema } from "./boot-test-resource";
import { syslinuxConfigInputsSchema, syslinuxConfigOutputsSchema } from "./syslinux-config-resource";
import { providerSchema } from "./schema";
import { AB_SYSTEM_TOKEN, ALPINE_IMAGE_TOKEN, BOOT_SLOT_TOKEN, BOOT_TEST_TOKEN, SYSLINUX_CONFIG_TOKEN } from "./tokens";
import { abSystemSchemaInputs, abSystemSchemaOutputs } from "../deploy/ab-system-inputs";

export function packageSchema(version: string): Record<string, unknown> {
  return providerSchema(version, [
    {
      token: ALPINE_IMAGE_TOKEN,
      description:
        "a bootable, reproducible initramfs built from APK packages and a root/ overlay, in the local content-addressed cache",
      inputs: alpineImageInputsSchema,
      outputs: alpineImageOutputsSchema,
      typeNames: {
        "files[]": "InlineFile",
        services: "Services",
        arch: "Arch",
        kernel: "KernelFlavor",
        microcode: "Microcode",
        compression: "Compression",
        secureBoot: "SecureBoot",
        artifacts: "ImageArtifacts",
        "artifacts.kernel": "Artifact",
      },
    },
    {
      token: BOOT_SLOT_TOKEN,
      description: "one A/B slot directory on a boot target",
      inputs: bootSlotInputsSchema,
      outputs: bootSlotOutputsSchema,
      typeNames: {
        target: "Target",
        "target.kind": "TargetKind",
        files: "SlotFiles",
        sources: "SlotSources",
        volume: "PartitionVolume",
      },
    },
    {
      token: SYSLINUX_CONFIG_TOKEN,
      description: "syslinux.cfg on a boot target, replaced atomically",
      inputs: syslinuxConfigInputsSchema,
      outputs: syslinuxConfigOutputsSchema,
      typeNames: {
        target: "Target",
        "target.kind": "TargetKind",
        "entries[]": "SyslinuxEntry",
        serial: "SerialConsole",
        trial: "Trial",
        strategy: "Strategy",
        volume: "PartitionVolume",
      },
    },
    {
      token: BOOT_TEST_TOKEN,
      description: "boots an image in QEMU and requires a marker before it may be deployed",
      inputs: bootTestInputsSchema,
      outputs: bootTestOutputsSchema,
    },
    {
      token: AB_SYSTEM_TOKEN,
      description:
        "the A/B system: an image, two slots on a boot target and syslinux; the provider reads the target, plans the image and decides which slot to write (a component it constructs)",
      inputs: abSystemSchemaInputs,
      outputs: abSystemSchemaOutputs,
      isComponent: true,
      typeNames: {
        "image.files[]": "InlineFile",
        "image.services": "Services",
        "image.secureBoot": "SecureBoot",
        target: "Target",
        "target.kind": "TargetKind",
        serial: "SerialConsole",
        trial: "AbTrial",
        bootTest: "BootTestSpec",
        strategy: "Strategy",
      },
    },
  ]);
}
