import * as fs from "node:fs";
import * as path from "node:path";
import { createPrivateKey } from "node:crypto";
import { AlpineImage } from "../../components/resources";
import { planImage } from "../../provider/image/plan";
import { buildImage } from "../../provider/image/build";
import { certificateId, ukiSignatureRefusal } from "../../provider/secure-boot-signing";
import { buildImageRepo, type ImageRepo } from "../fixtures/image-repo";
import { engineStack, type EngineStack } from "./pulumi-harness";
import { secureBootKeyPair } from "../fixtures/secure-boot-keys";
import { expectNoKey, exportAsUser, stateText } from "./ssh-stack";

// An AlpineImage emitted as a UKI and signed for Secure Boot through the real pulumi CLI: the
// program passes the private key as plain text (not pulumi.secret), the package schema makes it a
// secret. Afterwards no state file, no `pulumi stack export` and no file of the image cache holds
// the key (its PEM lines or its DER bytes); the UKI verifies against the certificate; a build in
// another cache gives the same signed bytes, and the image id is the unsigned image's. A key that
// is not the certificate's is refused at preview, naming the field. Keys made by openssl.
jest.setTimeout(900_000);

let env: EngineStack;
let repo: ImageRepo;
let keyPem: string;
let cert: string;
let otherKeyPem: string;
let useOtherKey = false;

const keyPair = secureBootKeyPair;

const config = () => ({
  repositories: [repo.repository],
  keys: [repo.keysDir],
  packages: ["alpine-baselayout", "busybox", "ramroot-init"],
  kernel: "lts" as const,
  uki: true,
  cmdline: "console=ttyS0 no_timer_check",
  epoch: 1700000000,
});

const program = async () => {
  const image = new AlpineImage("image", {
    ...config(),
    secureBoot: { privateKey: useOtherKey ? otherKeyPem : keyPem, certificate: cert },
  });
  return { planId: image.planId, imageId: image.imageId, artifacts: image.artifacts };
};

/** Every file under `dir`, as bytes. */
function filesUnder(dir: string): Buffer[] {
  const out: Buffer[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) out.push(fs.readFileSync(path.join(e.parentPath, e.name)));
  return out;
}

beforeAll(async () => {
  env = await engineStack("secure-boot", program);
  process.env.RAMROOT_IMAGE_CACHE = path.join(env.dir, "images");
  repo = await buildImageRepo(path.join(env.dir, "repo"), { efiStub: true });
  const keys = path.join(env.dir, "sb");
  fs.mkdirSync(keys);
  const db = keyPair(keys, "db");
  keyPem = fs.readFileSync(db.key, "utf8");
  fs.rmSync(db.key); // the program's text is the only copy
  cert = db.cert;
  otherKeyPem = fs.readFileSync(keyPair(keys, "other").key, "utf8");
});
afterAll(async () => env?.cleanup());

test("a signed UKI: the key in no state, export or cache file; verified by its certificate; same bytes from another cache; the unsigned image's id", async () => {
  const up = await env.stack.up();
  const planId = up.outputs.planId!.value as string;
  const imageId = up.outputs.imageId!.value as string;
  const uki = (up.outputs.artifacts!.value as { uki: { path: string; sha256: string } }).uki;
  expect(await ukiSignatureRefusal(uki.path, fs.readFileSync(cert, "utf8"))).toBeUndefined();

  // Only the certificate's hash is in the plan.
  const plan = JSON.parse(fs.readFileSync(path.join(env.dir, "images", planId, "plan.json"), "utf8"));
  expect(plan.options.secureBoot).toEqual({ certificate: certificateId(fs.readFileSync(cert, "utf8")) });

  expectNoKey(stateText(env), keyPem);
  expectNoKey(await exportAsUser(env), keyPem);
  const der = createPrivateKey(keyPem).export({ type: "pkcs8", format: "der" });
  for (const file of filesUnder(path.join(env.dir, "images"))) {
    expectNoKey(file.toString("latin1"), keyPem);
    expect(file.includes(der)).toBe(false);
  }

  // Another cache, another build: the same signed bytes. Unsigned: the same image id.
  const signedConfig = { ...config(), secureBoot: { privateKey: keyPem, certificate: cert } };
  const again = await buildImage(await planImage(signedConfig, { baseDir: env.dir }), {
    cacheDir: path.join(env.dir, "images-again"),
  });
  expect(again.built).toBe(true);
  expect(again.planId).toBe(planId);
  expect(again.uki!.sha256).toBe(uki.sha256);
  const unsigned = await buildImage(await planImage(config(), { baseDir: env.dir }), {
    cacheDir: path.join(env.dir, "images-again"),
  });
  expect(unsigned.planId).not.toBe(planId);
  expect(unsigned.imageId).toBe(imageId);
  expect(unsigned.uki!.sha256).not.toBe(uki.sha256);
  expect(await ukiSignatureRefusal(unsigned.uki!.path, fs.readFileSync(cert, "utf8"))).toMatch(/No signature table/);
});

test("a key that is not the certificate's is refused at preview, naming secureBoot.privateKey and never showing the key", async () => {
  useOtherKey = true;
  try {
    const err = await env.stack.preview().catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).toMatch(/secureBoot\.privateKey: got a key that is not the certificate's/);
    expectNoKey(message, otherKeyPem);
    expectNoKey(message, keyPem);
  } finally {
    useOtherKey = false;
  }
});
