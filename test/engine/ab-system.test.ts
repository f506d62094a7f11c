import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { createDisk } from "../../provider/boot/disk-create";
import { inspectTarget } from "../../provider/boot/inspect";
import { stackHistory } from "../../provider/deploy/history";
import { rollback } from "../../provider/deploy/rollback";
import { bootQemu } from "../../provider/qemu/boot";
import { buildImageRepo, type ImageRepo } from "../fixtures/image-repo";
import { step } from "../fixtures/scenario-step";
import { machineStack, type EngineStack } from "./pulumi-harness";

// The whole flow users run, with the real pulumi engine (file backend, no network), the real
// provider plugin, a real disk image with syslinux, booted in QEMU.
jest.setTimeout(1_800_000);

let env: EngineStack;
let repo: ImageRepo;
let disk: string;
let overlay: string;
let cacheDir: string;

const SERVICE = `#!/bin/sh
[ "$1" = start ] || exit 0
image=$(sed -n 's/.*ramroot\\.image=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
echo "MACHINE-UP image=$image message=$(cat /etc/ramroot/message)"
`;

function imageConfig(packages: string[], extra: Record<string, unknown> = {}) {
  return {
    repositories: [repo.repository],
    keys: [repo.keysDir],
    packages,
    kernel: "lts",
    overlay,
    hostname: "engine-test",
    cmdline: "console=ttyS0 no_timer_check",
    services: { default: ["machine"] },
    epoch: 1700000000,
    ...extra,
  };
}

async function setConfig(image: Record<string, unknown>, bootTest = true): Promise<void> {
  await env.stack.setAllConfig({
    "ramroot:target": { value: JSON.stringify({ kind: "image", path: disk }) },
    "ramroot:image": { value: JSON.stringify(image) },
  });
  if (bootTest)
    await env.stack.setConfig("ramroot:bootTest", {
      value: JSON.stringify({ marker: "MACHINE-UP image=", timeoutSeconds: 180 }),
    });
  else await env.stack.removeConfig("ramroot:bootTest");
}

/** Boots a copy of the disk (the test's own; the original stays as the machine's). */
async function bootDisk(): Promise<string> {
  const copy = `${disk}.boot`;
  fs.copyFileSync(disk, copy);
  try {
    const result = await bootQemu({
      media: { kind: "disk", image: copy },
      marker: "MACHINE-UP image=",
      timeoutMs: 180_000,
    });
    if (!result.found) throw new Error(`the disk did not boot to its marker:\n${result.log.slice(-2000)}`);
    return result.log
      .split(/\r?\n/)
      .find((l) => l.includes("MACHINE-UP image="))!
      .trim();
  } finally {
    fs.rmSync(copy, { force: true });
  }
}

const sha256 = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
const builtImages = () =>
  fs.existsSync(cacheDir)
    ? fs
        .readdirSync(cacheDir)
        .filter((d) => !d.startsWith("."))
        .sort()
    : [];

beforeAll(async () => {
  env = await machineStack("machine");
  // A private image cache, so "nothing rebuilt" can be seen; the provider plugin inherits it.
  cacheDir = path.join(env.dir, "images");
  process.env.RAMROOT_IMAGE_CACHE = cacheDir;
  repo = await buildImageRepo(path.join(env.dir, "repo"));
  overlay = path.join(env.dir, "root");
  fs.mkdirSync(path.join(overlay, "etc", "init.d"), { recursive: true });
  fs.mkdirSync(path.join(overlay, "etc", "ramroot"), { recursive: true });
  fs.writeFileSync(path.join(overlay, "etc", "init.d", "machine"), SERVICE, { mode: 0o755 });
  disk = path.join(env.dir, "disk.img");
  await createDisk({ output: disk, sizeMiB: 64, layout: "mbr", slots: ["a", "b"] });
});
afterAll(async () => env?.cleanup());

/** Boots the disk, expecting its marker to name `image` and show `message`. */
async function expectBoots(image: string, message?: string): Promise<void> {
  const line = await bootDisk();
  expect(line).toContain(`image=${image}`);
  if (message !== undefined) expect(line).toContain(`message=${message}`);
}

test("the machine's life: up boots a, a no-change preview does nothing, an edit goes to b, rollback boots a, a panicking image stops at its boot test", async () => {
  fs.writeFileSync(path.join(overlay, "etc", "ramroot", "message"), "first\n");
  const firstImage = await step("up: the image is boot-tested, written to slot a, and the disk boots it", async () => {
    await setConfig(imageConfig(["alpine-baselayout", "busybox", "ramroot-init"]));
    const up = await env.stack.up();
    expect(up.summary.result).toBe("succeeded");
    const image = up.outputs.imageId!.value as string;
    expect(up.outputs.activeSlot!.value).toBe("a");
    await expectBoots(image, "first");
    return image;
  });

  await step("a preview with no change: no changes, nothing rebuilt, nothing written", async () => {
    const images = builtImages();
    const diskHash = sha256(disk);
    const preview = await env.stack.preview({ diff: true });
    expect(preview.changeSummary.update ?? 0).toBe(0);
    expect(preview.changeSummary.create ?? 0).toBe(0);
    expect(preview.changeSummary.delete ?? 0).toBe(0);
    expect(builtImages()).toEqual(images);
    expect(sha256(disk)).toBe(diskHash);
  });

  await step(
    "the boot test goes only by an explicit value: its key deleted stops the preview; `bootTest: false` previews, saying the gate goes",
    async () => {
      const diskHash = sha256(disk);
      await env.stack.removeConfig("ramroot:bootTest");
      await expect(env.stack.preview()).rejects.toThrow(
        /bootTest: got nothing; the last switch on this target \(.*, DEFAULT a\) boot-tested its image in QEMU, and a gate goes only by an explicit value: set ramroot:bootTest again, or ramroot:bootTest: false to deploy without it/,
      );
      await env.stack.setConfig("ramroot:bootTest", { value: "false" });
      const dropped = await env.stack.preview({ diff: true });
      expect(dropped.stdout + dropped.stderr).toMatch(
        /bootTest: false: the gate goes \(the last switch on this target .* boot-tested its image in QEMU\)/,
      );
      expect(dropped.stdout).toMatch(/- ramroot:index:BootTest: \(delete\)/);
      expect(sha256(disk)).toBe(diskHash);
      await setConfig(imageConfig(["alpine-baselayout", "busybox", "ramroot-init"]));
      expect((await env.stack.preview()).changeSummary.delete ?? 0).toBe(0);
    },
  );

  await step(
    "an edited overlay file and an added package: the preview names exactly those and slot b; up boots b",
    async () => {
      fs.writeFileSync(path.join(overlay, "etc", "ramroot", "message"), "second\n");
      await setConfig(imageConfig(["alpine-baselayout", "busybox", "ramroot-init", "hello-ramroot"]));
      const diskHash = sha256(disk);
      const preview = await env.stack.preview({ diff: true });
      const out = preview.stdout;
      expect(out).toMatch(/\+ hello-ramroot: "1\.0-r0"/);
      expect(out).toMatch(/~ etc\/ramroot\/message: "file 644 [0-9a-f]{12}" => "file 644 [0-9a-f]{12}"/);
      // only that file, only that package
      expect(out.match(/^\s+[~+-] etc\//gm)?.length).toBe(1);
      expect(out.match(/^\s+[+-] [a-z0-9-]+: "[^"]+"$/gm)?.filter((l) => !/target|kind|path/.test(l)).length).toBe(1);
      expect(out).toMatch(/machine-slot-b/);
      expect(out).toMatch(/defaultLabel: "a" => "b"/);
      expect(sha256(disk)).toBe(diskHash);

      const up = await env.stack.up();
      const secondImage = up.outputs.imageId!.value as string;
      expect(up.outputs.activeSlot!.value).toBe("b");
      expect(secondImage).not.toBe(firstImage);
      await expectBoots(secondImage, "second");
    },
  );

  await step(
    "ramroot rollback: back to slot a with no rebuild and no copy; history lists the three updates",
    async () => {
      const images = builtImages();
      const before = await inspectTarget({ kind: "image", path: disk }, ["a", "b"]);
      const result = await rollback(env.stack, { kind: "image", path: disk });
      expect(result.inSlot).toBe("a");
      const after = await inspectTarget({ kind: "image", path: disk }, ["a", "b"]);
      expect(after.defaultLabel).toBe("a");
      expect(after.slots.a?.manifest?.when).toBe(before.slots.a?.manifest?.when); // not copied again
      expect(after.slots.b?.manifest?.when).toBe(before.slots.b?.manifest?.when);
      expect(builtImages()).toEqual(images); // nothing built
      await expectBoots(firstImage);
      const updates = (await stackHistory(env.stack)).filter((h) => h.kind === "update");
      expect(updates.map((u) => u.result)).toEqual(["succeeded", "succeeded", "succeeded"]);
      expect(updates[2]?.message).toMatch(/ramroot rollback to update 1/);
    },
  );

  await step(
    "a boot test on an image whose init panics stops the update; the target still boots its slot",
    async () => {
      const diskHash = sha256(disk);
      const init = path.join(overlay, "sbin", "init");
      fs.mkdirSync(path.dirname(init), { recursive: true });
      fs.writeFileSync(init, "#!/bin/sh\necho broken init\nexit 1\n", { mode: 0o755 });
      try {
        await setConfig(imageConfig(["alpine-baselayout", "busybox", "ramroot-init"]));
        await expect(env.stack.up()).rejects.toThrow(/boot test: image [0-9a-f]{12} stopped/);
      } finally {
        fs.rmSync(path.dirname(init), { recursive: true });
      }
      expect(sha256(disk)).toBe(diskHash);
      await expectBoots(firstImage);
    },
  );
});

test("bad configs fail at preview naming the property; the target is untouched", async () => {
  const diskHash = sha256(disk);
  const base = ["alpine-baselayout", "busybox", "ramroot-init"];
  // A key pair nobody signed the repository with.
  const wrongKeys = fs.mkdtempSync(path.join(env.dir, "wrong-keys-"));
  const { publicKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  fs.writeFileSync(path.join(wrongKeys, "someone-else.rsa.pub"), publicKey.export({ type: "spki", format: "pem" }));
  const cases: [Record<string, unknown>, RegExp][] = [
    [imageConfig([...base, "no-such-package"]), /packages: [\s\S]*no-such-package/],
    // "1..2" is a version the real apk 2.14.4 accepts (`apk version -c`); "1.2_foo" it refuses.
    [imageConfig([...base, "busybox>=1.2_foo"]), /packages\[3\]: [\s\S]*"1\.2_foo" is not a valid apk version/],
    [
      imageConfig(base, { overlay: path.join(env.dir, "missing-root") }),
      /overlay: directory ".*missing-root" does not exist/,
    ],
    [imageConfig(base, { keys: [wrongKeys] }), /keys: /],
  ];
  for (const [config, message] of cases) {
    await setConfig(config);
    await expect(env.stack.preview()).rejects.toThrow(message);
    expect(sha256(disk)).toBe(diskHash);
  }
});
