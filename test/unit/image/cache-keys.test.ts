import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { serializeApkindex } from "../../../provider/apk/apkindex";
import { writeIndexArchive } from "../../../provider/apk/index-archive";
import type { PackageRecord } from "../../../provider/apk/package-record";
import { planImage, type ResolvedPlan } from "../../../provider/image/plan";
import { EFI_STUB_FILE, OS_RELEASE_FILE } from "../../../provider/image/boot-split";
import { KERNEL_FILE, MICROCODE_FILE } from "../../../provider/image/layers";
import {
  BESIDE_LAYER,
  foldedLayerKey,
  installedTreeKey,
  OPTION_SHAPES,
  overlayLayerKey,
  packageLayerKey,
} from "../../../provider/image/cache-keys";

const record = (name: string, version: string, depends: string[] = []): PackageRecord => ({
  checksum: `Q1${crypto.createHash("sha1").update(`${name}-${version}`).digest("base64")}`,
  name,
  version,
  arch: "x86_64",
  size: 1000,
  installedSize: 2000,
  description: name,
  depends,
  provides: [],
  installIf: [],
  replaces: [],
});

let work: string;
let base: { packages: string[]; repositories: string[]; keys: string[]; kernel: "none" };

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-cache-keys-"));
  const { privateKey, publicKey } = crypto.generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const keyName = "ramroot-cache-keys.rsa.pub";
  fs.writeFileSync(path.join(work, keyName), publicKey);
  const index = serializeApkindex([record("busybox", "1.37.0-r0"), record("alpine-base", "3.24.0-r0", ["busybox"])]);
  fs.mkdirSync(path.join(work, "repo", "x86_64"), { recursive: true });
  fs.writeFileSync(
    path.join(work, "repo", "x86_64", "APKINDEX.tar.gz"),
    writeIndexArchive(index, "cache-keys test", { keyName, privateKeyPem: privateKey }),
  );
  base = { packages: ["alpine-base"], repositories: ["repo"], keys: [keyName], kernel: "none" };
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const plan = (extra: object = {}) => planImage({ ...base, ...extra }, { baseDir: work });

function keys(resolved: ResolvedPlan) {
  const packages = packageLayerKey(resolved);
  return {
    tree: installedTreeKey(resolved),
    packages,
    overlay: overlayLayerKey(resolved, packages),
    folded: foldedLayerKey(resolved),
  };
}

/** Another value of the option's type. */
function another(value: unknown): unknown {
  if (typeof value === "string") return `${value}-other`;
  if (typeof value === "number") return value + 1;
  if (Array.isArray(value)) return [...value, "other"];
  if (value === null) return ["other"];
  return { ...(value as object), other: "1" };
}

test("every option of a plan says what it shapes (the table is complete)", async () => {
  const resolved = await plan();
  expect(Object.keys(resolved.plan.options).sort()).toEqual(Object.keys(OPTION_SHAPES).sort());
});

test("an option that shapes the installed tree changes the tree's key and the package layer's alike; the others only their layers'", async () => {
  const resolved = await plan();
  const before = keys(resolved);
  const changed = (k: ReturnType<typeof keys>) =>
    (["tree", "packages", "overlay"] as const).filter((name) => k[name] !== before[name]);
  const expected = {
    tree: ["tree", "packages", "overlay"],
    archive: ["packages", "overlay"],
    overlay: ["overlay"],
    none: [],
  };
  for (const [option, shape] of Object.entries(OPTION_SHAPES)) {
    const edited = structuredClone(resolved);
    (edited.plan.options as Record<string, unknown>)[option] = another(
      resolved.plan.options[option as keyof typeof OPTION_SHAPES],
    );
    expect({ option, changed: changed(keys(edited)) }).toEqual({ option, changed: expected[shape] });
  }
});

test("how the build installs (script failures allowed) shapes the tree and every layer packed from one", async () => {
  const strict = keys(await plan());
  const lenient = keys(await plan({ allowScriptFailures: true }));
  expect(lenient.tree).not.toBe(strict.tree);
  expect(lenient.packages).not.toBe(strict.packages);
  expect(lenient.folded).not.toBe(strict.folded);
});

test("real config edits move the keys they should: firmware the tree, the hostname only the overlay layer", async () => {
  const plain = keys(await plan());
  const firmware = keys(await plan({ firmware: ["iwlwifi-*"] }));
  expect(firmware.tree).not.toBe(plain.tree);
  expect(firmware.packages).not.toBe(plain.packages);
  const named = keys(await plan({ hostname: "nas" }));
  expect([named.tree, named.packages]).toEqual([plain.tree, plain.packages]);
  expect(named.overlay).not.toBe(plain.overlay);
  expect(named.folded).not.toBe(plain.folded);
  // same config, same keys
  expect(keys(await plan())).toEqual(plain);
});

test("the files a package layer keeps beside its archive are the ones its key names", () => {
  expect([...BESIDE_LAYER].sort()).toEqual([KERNEL_FILE, MICROCODE_FILE, EFI_STUB_FILE, OS_RELEASE_FILE].sort());
});
