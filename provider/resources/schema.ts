/**
 * The provider's Pulumi package schema: enough for `pulumi import`, YAML programs and other
 * languages to name the resources and their properties. The TypeScript classes in
 * provider/resources/program.ts are the typed program side.
 */
type Prop = Record<string, unknown>;
const any = (description: string): Prop => ({ $ref: "pulumi.json#/Any", description });
const str = (description: string): Prop => ({ type: "string", description });
const num = (description: string): Prop => ({ type: "number", description });
const bool = (description: string): Prop => ({ type: "boolean", description });
const strings = (description: string): Prop => ({ type: "array", items: { type: "string" }, description });
const map = (description: string): Prop => ({ type: "object", additionalProperties: { type: "string" }, description });

function resource(description: string, inputs: Record<string, Prop>, required: string[], outputs: Record<string, Prop>): Prop {
  return {
    description,
    inputProperties: inputs,
    requiredInputs: required,
    properties: { ...inputs, ...outputs },
    required: [...required, ...Object.keys(outputs)],
  };
}

const target = any("where the boot partition is: {kind: local|image|ssh, path, ...}");

export function providerSchema(version: string): Record<string, unknown> {
  return {
    name: "ramroot",
    displayName: "ramroot",
    version,
    description: "A whole Alpine Linux machine in one initramfs, deployed to A/B syslinux slots",
    resources: {
      "ramroot:index:AlpineImage": resource(
        "a bootable, reproducible initramfs built from APK packages and a root/ overlay, in the local content-addressed cache",
        {
          release: str("Alpine release, default v3.24"),
          arch: str("x86_64 or aarch64"),
          repositories: strings("repository URLs or directories"),
          keys: strings("trusted public key files or directories; default Alpine's pinned keys"),
          allowUntrusted: bool("accept unsigned indexes"),
          packages: strings("package names with optional constraints"),
          overlay: str("the overlay directory (root/)"),
          files: { type: "array", items: any("{path, content, mode}") },
          kernel: str("lts, virt or none"),
          firmware: strings("firmware to keep (names or globs)"),
          microcode: str("intel, amd or none"),
          services: any("OpenRC services per runlevel"),
          hostname: str("/etc/hostname"),
          cmdline: str("kernel command line for the boot entry"),
          compression: str("gzip, zstd or none"),
          epoch: num("every timestamp in the image"),
          planId: str("computed: the plan's hash"),
          lock: map("computed: package -> locked version"),
          overlayFiles: map("computed: overlay path -> type, mode, hash"),
          trustedKeys: map("computed: trusted key file -> sha256 prefix"),
        },
        ["packages"],
        { imageId: str("sha256 over the artifacts"), artifacts: any("kernel, initramfs, microcode: {path, sha256, size}"), sbomPath: str("SPDX 2.3 JSON"), archiveSize: num("uncompressed archive bytes") },
      ),
      "ramroot:index:BootSlot": resource(
        "one A/B slot directory on a boot target",
        {
          target,
          slot: str("slot name, e.g. a"),
          imageId: str("the image the slot holds"),
          planId: str("its plan"),
          files: map("role -> sha256"),
          sources: map("role -> local file to copy"),
          packages: map("package -> version"),
        },
        ["target", "slot", "imageId", "planId", "files"],
        { written: str("when the slot was written"), consistent: bool("files match the manifest") },
      ),
      "ramroot:index:SyslinuxConfig": resource(
        "syslinux.cfg on a boot target, replaced atomically",
        {
          target,
          defaultLabel: str("the label syslinux boots"),
          timeout: { type: "integer", description: "deciseconds" },
          prompt: bool("show the boot: prompt"),
          serial: any("{port, baud} or false"),
          entries: { type: "array", items: any("LABEL entry: label, menuLabel, kernel, initrd[], append") },
          strategy: str("switch or trial"),
          trial: any("{probePath, timeoutSeconds, reboot}"),
        },
        ["target", "defaultLabel", "timeout", "entries"],
        { path: str("where syslinux reads the config"), sha256: str("of the file on the target"), activeDefault: str("DEFAULT in the file") },
      ),
      "ramroot:index:BootTest": resource(
        "boots an image in QEMU and requires a marker before it may be deployed",
        {
          imageId: str("the image under test"),
          kernel: str("kernel file"),
          initrd: strings("initramfs files"),
          append: str("kernel command line"),
          marker: str("text the image prints when it is up"),
          timeoutSeconds: num("give up after"),
          memoryMiB: num("guest memory"),
        },
        ["imageId", "kernel", "initrd", "marker"],
        { passed: bool("the marker was seen"), seconds: num("boot time") },
      ),
    },
  };
}
