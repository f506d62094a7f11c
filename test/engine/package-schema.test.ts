import { execa } from "execa";
import { pulumiCommand, REPO_ROOT } from "./pulumi-harness";

// `pulumi package get-schema ./provider/plugin`, the real CLI running the real plugin through its
// PulumiPlugin.yaml: the schema generated from the zod schemas, typed, with secret flags.
jest.setTimeout(300_000);

type Json = Record<string, unknown>;
let schema: {
  resources: Record<string, { inputProperties: Record<string, Json>; requiredInputs: string[] }>;
  types: Record<string, Json>;
};

beforeAll(async () => {
  const pulumi = await pulumiCommand();
  const result = await execa(pulumi.command, ["package", "get-schema", "./provider/plugin"], {
    cwd: REPO_ROOT,
    env: { PULUMI_SKIP_UPDATE_CHECK: "true", PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true" },
  });
  schema = JSON.parse(result.stdout);
});

test("no resource input is Any: target, entries, serial, services and trial are named object types", () => {
  const text = JSON.stringify(schema);
  expect(text).not.toMatch(/pulumi\.json#\/Any/);
  const slot = schema.resources["ramroot:index:BootSlot"]!;
  const config = schema.resources["ramroot:index:SyslinuxConfig"]!;
  const image = schema.resources["ramroot:index:AlpineImage"]!;
  expect(slot.inputProperties.target).toEqual({ $ref: "#/types/ramroot:index:Target" });
  expect(config.inputProperties.target).toEqual({ $ref: "#/types/ramroot:index:Target" });
  expect(config.inputProperties.entries).toEqual({
    type: "array",
    items: { $ref: "#/types/ramroot:index:SyslinuxEntry" },
  });
  expect(config.inputProperties.serial).toEqual({
    oneOf: [{ $ref: "#/types/ramroot:index:SerialConsole" }, { type: "boolean" }],
  });
  expect(config.inputProperties.trial).toMatchObject({ $ref: "#/types/ramroot:index:Trial" });
  expect(image.inputProperties.services).toMatchObject({ $ref: "#/types/ramroot:index:Services" });
  expect(Object.keys(schema.types["ramroot:index:Services"]!.properties as Json).sort()).toEqual([
    "boot",
    "default",
    "shutdown",
    "sysinit",
  ]);
  expect(Object.keys(schema.types["ramroot:index:SyslinuxEntry"]!.properties as Json).sort()).toEqual([
    "append",
    "initrd",
    "kernel",
    "label",
    "menuLabel",
  ]);
  expect(schema.types["ramroot:index:Trial"]!.properties).toMatchObject({
    probePath: { type: "string", default: "/run/ramroot/image-id" },
    timeoutSeconds: { type: "number", default: 300 },
  });
  // Defaults come from the zod schemas, not repeated by hand.
  expect(image.inputProperties.release).toMatchObject({ type: "string", default: "v3.24" });
  expect(image.inputProperties.compression).toMatchObject({
    $ref: "#/types/ramroot:index:Compression",
    default: "gzip",
  });
  expect(image.requiredInputs).toEqual(["packages"]);
  expect(config.requiredInputs.sort()).toEqual(["defaultLabel", "entries", "target", "timeout"]);
});

test("the private key is flagged secret; the target kinds are an enum", () => {
  const target = schema.types["ramroot:index:Target"]!;
  expect((target.properties as Record<string, Json>).privateKey).toMatchObject({ type: "string", secret: true });
  expect(target.required).toEqual(["kind", "path"]);
  expect(schema.types["ramroot:index:TargetKind"]).toEqual({
    type: "string",
    enum: [{ value: "local" }, { value: "image" }, { value: "ssh" }],
  });
});

test("every secret input is flagged (the AbSystem's command line too); no type is there twice", () => {
  const system = schema.resources["ramroot:index:AbSystem"]!;
  expect(system.inputProperties.append).toMatchObject({ type: "string", secret: true });
  expect(system.inputProperties.target).toMatchObject({ $ref: "#/types/ramroot:index:Target" });
  // one type per shape: no numbered twin (`Target2`) of a type described apart where it is used
  expect(Object.keys(schema.types).filter((token) => /\d$/.test(token))).toEqual([]);
  const shapes = Object.values(schema.types).map((t) => JSON.stringify(t));
  expect(new Set(shapes).size).toBe(shapes.length);
});
