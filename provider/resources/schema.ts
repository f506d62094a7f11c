/**
 * The provider's Pulumi package schema: enough for `pulumi import`, YAML programs and
 * other languages to name the resources and their properties. The TypeScript classes in
 * provider/resources/program.ts are the typed program side.
 */
export function providerSchema(version: string): Record<string, unknown> {
  const obj = (description: string) => ({ type: "object", additionalProperties: { $ref: "pulumi.json#/Any" }, description });
  const target = { $ref: "pulumi.json#/Any", description: "where the boot partition is: {kind: local|image|ssh, path, ...}" };
  return {
    name: "ramroot",
    displayName: "ramroot",
    version,
    description: "A whole Alpine Linux machine in one initramfs, deployed to A/B syslinux slots",
    resources: {
      "ramroot:index:SyslinuxConfig": {
        description: "syslinux.cfg on a boot target, replaced atomically",
        inputProperties: {
          target,
          defaultLabel: { type: "string" },
          timeout: { type: "integer" },
          prompt: { type: "boolean" },
          serial: { $ref: "pulumi.json#/Any" },
          entries: { type: "array", items: obj("LABEL entry: label, menuLabel, kernel, initrd[], append") },
        },
        requiredInputs: ["target", "defaultLabel", "timeout", "entries"],
        properties: {
          target,
          defaultLabel: { type: "string" },
          timeout: { type: "integer" },
          prompt: { type: "boolean" },
          serial: { $ref: "pulumi.json#/Any" },
          entries: { type: "array", items: obj("LABEL entry") },
          path: { type: "string" },
          sha256: { type: "string" },
          activeDefault: { type: "string" },
        },
        required: ["target", "defaultLabel", "timeout", "entries", "path", "sha256", "activeDefault"],
      },
    },
  };
}
