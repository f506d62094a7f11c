import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import type { z } from "zod";
import { imageConfigSchema } from "../../../provider/image/image-config";
import { checkStackConfig, stackConfigFile } from "../../../provider/deploy/stack-config";
import { InputError } from "../../../provider/ramroot-error";

// The whole `ramroot:` stack config is checked by the provider: a misspelt key at any depth is
// named with where it is and the key it most likely meant (the engine test previews the
// top-level ones with the real CLI: test/engine/bad-input.test.ts).

/** A good config, as the stack config holds it (key -> value text), with every nested object present. */
const good = {
  target: { kind: "ssh", host: "nas", user: "root", port: 22, path: "/media/boot", strictHostKeyChecking: true },
  image: {
    repositories: ["repo"],
    packages: ["busybox"],
    kernel: "lts",
    network: { mode: "dhcp" },
    health: { checks: [{ name: "sshd", command: "true" }], timeoutSeconds: 300 },
  },
  strategy: "trial",
  trial: { probePath: "/run/ramroot/image-id", timeoutSeconds: 300, reboot: true },
  bootTest: { marker: "up", timeoutSeconds: 60 },
  append: "quiet",
  wipeOnDelete: false,
  pin: { update: 1, planId: "1".repeat(64) },
  pins: { nas: { update: 2, planId: "2".repeat(64), imageId: "3".repeat(64) } },
};

function asConfig(values: Record<string, unknown>): Map<string, string> {
  return new Map(
    Object.entries(values).map(([k, v]) => [`ramroot:${k}`, typeof v === "string" ? v : JSON.stringify(v)]),
  );
}

function failure(values: Record<string, unknown>): string {
  try {
    checkStackConfig(asConfig(values), "stacks/Pulumi.test.yaml");
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return (err as Error).message;
  }
  throw new Error("the config was accepted");
}

/** A misspelling of `key`: two neighbours swapped, or for a short key a letter dropped. */
function typo(key: string): string {
  if (key.length <= 3) return key.slice(0, -1);
  const i = Math.floor(key.length / 2) - 1;
  return key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2);
}

/** The keys of the strict object a (possibly wrapped) zod schema is. */
function keysOf(schema: z.ZodType): string[] {
  let s: unknown = schema;
  for (;;) {
    const def = (s as { _zod: { def: Record<string, unknown> } })._zod.def;
    if (def.type === "object") return Object.keys(def.shape as object);
    s = def.innerType ?? def.in;
    if (s === undefined) throw new Error(`no object in a ${String(def.type)} schema`);
  }
}

test("every stack config in stacks/ passes", () => {
  const dir = path.resolve(__dirname, "..", "..", "..", "stacks");
  const files = fs.readdirSync(dir).filter((f) => /^Pulumi\..*\.yaml$/.test(f));
  expect(files.length).toBeGreaterThanOrEqual(3);
  for (const file of files) {
    const config = (parse(fs.readFileSync(path.join(dir, file), "utf8")) as { config: Record<string, unknown> }).config;
    const values = Object.fromEntries(Object.entries(config).map(([k, v]) => [k.replace(/^ramroot:/, ""), v]));
    expect(() => checkStackConfig(asConfig(values), file)).not.toThrow();
  }
});

test("the good config passes", () => {
  expect(() => checkStackConfig(asConfig(good), "stacks/Pulumi.test.yaml")).not.toThrow();
});

test.each(Object.keys(good))("the top-level key %s misspelt: named, with the key it most likely meant", (key) => {
  const values: Record<string, unknown> = { ...good };
  values[typo(key)] = values[key];
  delete values[key];
  const message = failure(values);
  expect(message).toMatch(/^invalid stack config \(stacks\/Pulumi\.test\.yaml\):\n {2}/);
  expect(message.split("\n").slice(1)).toEqual([`  ramroot:${typo(key)}: unknown key; did you mean "${key}"?`]);
});

// Every key of every nested object the config has: the image, the ssh target, trial, bootTest,
// the pin, and objects inside the image.
const nested: [string, string[], (v: Record<string, unknown>) => Record<string, unknown>][] = [
  [
    "target",
    ["kind", "host", "user", "port", "path", "strictHostKeyChecking"],
    (v) => v.target as Record<string, unknown>,
  ],
  ["trial", Object.keys(good.trial), (v) => v.trial as Record<string, unknown>],
  ["bootTest", Object.keys(good.bootTest), (v) => v.bootTest as Record<string, unknown>],
  ["pin", Object.keys(good.pin), (v) => v.pin as Record<string, unknown>],
  ["pins.nas", Object.keys(good.pins.nas), (v) => (v.pins as Record<string, unknown>).nas as Record<string, unknown>],
  ["image", Object.keys(good.image), (v) => v.image as Record<string, unknown>],
  ["image.network", ["mode"], (v) => (v.image as Record<string, unknown>).network as Record<string, unknown>],
];

test.each(nested.flatMap(([where, keys, at]) => keys.map((key) => [`${where}.${key}`, where, key, at] as const)))(
  "the nested key %s misspelt: named with where it is and the key it most likely meant",
  (_name, where, key, at) => {
    const values = JSON.parse(JSON.stringify(good)) as Record<string, unknown>;
    const object = at(values);
    object[typo(key)] = object[key];
    delete object[key];
    const lines = failure(values).split("\n").slice(1);
    expect(lines).toContain(`  ramroot:${where}.${typo(key)}: unknown key; did you mean "${key}"?`);
    // A required key missing because it was misspelt is said once, as the typo.
    expect(lines.filter((l) => l.includes(`ramroot:${where}.${key}:`))).toEqual([]);
  },
);

test("every key the image accepts, misspelt, is named with the one it most likely meant", () => {
  const keys = keysOf(imageConfigSchema);
  expect(keys.length).toBeGreaterThan(20);
  for (const key of keys) {
    const values = JSON.parse(JSON.stringify(good)) as { image: Record<string, unknown> };
    values.image[typo(key)] = values.image[key] ?? "x";
    delete values.image[key];
    expect(failure(values)).toContain(`ramroot:image.${typo(key)}: unknown key; did you mean "${key}"?`);
  }
});

test("a key nothing is near gets the list of what is accepted; a wrong value the nearest choice", () => {
  expect(failure({ ...good, zzz: 1 })).toContain(
    "ramroot:zzz: unknown key; accepted keys: target, scheme, image, strategy, trial, bootTest, append, wipeOnDelete, secureBoot, pin, pins, twin",
  );
  expect(failure({ ...good, strategy: "trail" })).toContain(
    'ramroot:strategy: got "trail"; expected "switch" or "trial"; did you mean "trial"?',
  );
  expect(failure({ ...good, scheme: "efi" })).toContain(
    'ramroot:scheme: got "efi"; expected "syslinux" (BIOS) or "uefi" (systemd-boot on an EFI system partition)',
  );
  expect(failure({ ...good, target: { kind: "imag", path: "disk.img" } })).toContain(
    'ramroot:target.kind: got "imag"; expected one of "local", "image", "ssh"; did you mean "image"?',
  );
  expect(failure({ ...good, bootTest: true })).toContain(
    "ramroot:bootTest: got true; expected {marker, timeoutSeconds?, append?}, or false to deploy without a boot test",
  );
});

test("the stack's config file: under the project's stackConfigDir when the project is the one named", () => {
  const repo = path.resolve(__dirname, "..", "..", "..");
  expect(stackConfigFile(repo, "ramroot", "demo")).toBe("stacks/Pulumi.demo.yaml");
  expect(stackConfigFile(repo, "another-project", "demo")).toBe("Pulumi.demo.yaml");
});
