import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createDisk } from "../../provider/boot/disk-create";
import { writeSlot } from "../../provider/boot/slot";
import { openTarget, type TargetSpec } from "../../provider/boot/target";
import { imageIdOf } from "../../provider/image/build";
import { BootSlot, SyslinuxConfig } from "../../components/resources";
import { formatTargetId } from "../../provider/resources/target-id";
import { startSshd, type TestSshd } from "../boot/sshd";
import { engineStack, type EngineStack } from "./pulumi-harness";

// `pulumi up` with the `import` option adopts a boot partition set up by hand (a syslinux.cfg
// written by hand, a slot copied with cp and no manifest, a slot written by `ramroot slot
// write`), through the ids the README documents; afterwards the same program previews no
// change. On a disk image and over ssh (sshd on loopback, the key named by an ssh config file).
jest.setTimeout(600_000);

const sha = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

// Hand-written, frood-style: KERNEL instead of LINUX, initrd= inside APPEND, comments, odd spacing.
const HAND_CONFIG = `# the NAS, set up by hand
serial 0 115200
PROMPT 0
TIMEOUT 30
DEFAULT a

LABEL a
    MENU LABEL slot a
    KERNEL /a/vmlinuz
    APPEND initrd=/a/initramfs rdinit=/sbin/init console=ttyS0

label b
  linux /b/vmlinuz
  initrd /b/initramfs
  append rdinit=/sbin/init console=ttyS0 quiet
`;

let work: string;
let kernel: string;
let initramfsA: string;
let initramfsB: string;

/** What the hand-made partition holds, as a program declares it. */
function program(target: () => TargetSpec, importing: () => boolean) {
  return async () => {
    const files = (f: string) => ({ kernel: sha(fs.readFileSync(kernel)), initramfs: sha(fs.readFileSync(f)) });
    const id = formatTargetId(target());
    const a = new BootSlot(
      "slot-a",
      { target: target(), slot: "a", imageId: "image-a", planId: "plan-a", files: files(initramfsA) },
      importing() ? { import: `${id}#a` } : {},
    );
    // Slot b was copied by hand: no manifest, so its image id is computed from its files and its plan is unknown.
    const bFiles = files(initramfsB);
    const b = new BootSlot(
      "slot-b",
      {
        target: target(),
        slot: "b",
        imageId: imageIdOf({ kernel: { sha256: bFiles.kernel }, initramfs: { sha256: bFiles.initramfs } }),
        planId: "unknown",
        files: bFiles,
      },
      importing() ? { import: `${id}#b` } : {},
    );
    const config = new SyslinuxConfig(
      "boot",
      {
        target: target(),
        defaultLabel: "a",
        timeout: 30,
        entries: [
          {
            label: "a",
            menuLabel: "slot a",
            kernel: "/a/vmlinuz",
            initrd: ["/a/initramfs"],
            append: "rdinit=/sbin/init console=ttyS0",
          },
          {
            label: "b",
            kernel: "/b/vmlinuz",
            initrd: ["/b/initramfs"],
            append: "rdinit=/sbin/init console=ttyS0 quiet",
          },
        ],
      },
      { dependsOn: [a, b], ...(importing() ? { import: id } : {}) },
    );
    return { default: config.activeDefault };
  };
}

/** Lays out a partition by hand on `spec`: slot a with ramroot, slot b with plain copies, a hand-written config. */
async function handMade(spec: TargetSpec): Promise<void> {
  const target = await openTarget(spec);
  try {
    await writeSlot(target, {
      slot: "a",
      files: { kernel, initramfs: initramfsA },
      manifest: { imageId: "image-a", planId: "plan-a" },
    });
    await target.writeFileAtomic("b/vmlinuz", fs.readFileSync(kernel));
    await target.writeFileAtomic("b/initramfs", fs.readFileSync(initramfsB));
    await target.writeFileAtomic("syslinux.cfg", HAND_CONFIG);
  } finally {
    await target.close();
  }
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-import-"));
  kernel = path.join(work, "vmlinuz");
  initramfsA = path.join(work, "initramfs-a");
  initramfsB = path.join(work, "initramfs-b");
  fs.writeFileSync(kernel, Buffer.alloc(200_000, 7));
  fs.writeFileSync(initramfsA, Buffer.alloc(300_000, 1));
  fs.writeFileSync(initramfsB, Buffer.alloc(300_000, 2));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe("a disk image set up by hand", () => {
  let env: EngineStack;
  let disk: string;
  let importing = true;

  beforeAll(async () => {
    disk = path.join(work, "hand.img");
    await createDisk({ output: disk, sizeMiB: 16, layout: "mbr", slots: ["a", "b"] });
    await handMade({ kind: "image", path: disk });
    env = await engineStack(
      "import-image",
      program(
        () => ({ kind: "image", path: disk }),
        () => importing,
      ),
    );
  });
  afterAll(async () => env?.cleanup());

  test("up imports the config and both slots by their ids and writes nothing; then the same program previews no change", async () => {
    const before = sha(fs.readFileSync(disk));
    const up = await env.stack.up();
    expect(up.summary.result).toBe("succeeded");
    expect(up.summary.resourceChanges?.import).toBe(3);
    expect(sha(fs.readFileSync(disk))).toBe(before);
    const state = await env.stack.exportStack();
    const config = state.deployment.resources.find((r: { type: string }) => r.type === "ramroot:index:SyslinuxConfig");
    expect(config.id).toBe(`image:${disk}`);
    expect(config.inputs).toMatchObject({ defaultLabel: "a", timeout: 30, serial: { port: 0, baud: 115200 } });
    importing = false;
    const preview = await env.stack.preview({ diff: true });
    expect(preview.changeSummary.same).toBe(4);
    expect(preview.changeSummary.update ?? 0).toBe(0);
    // A hand edit then shows as the field it changed.
    const target = await openTarget({ kind: "image", path: disk });
    try {
      await target.writeFileAtomic("syslinux.cfg", HAND_CONFIG.replace("TIMEOUT 30", "TIMEOUT 50"));
    } finally {
      await target.close();
    }
    const refresh = await env.stack.refresh();
    expect(refresh.stdout).toMatch(/\[diff: ~timeout\]/);
    const after = await env.stack.preview({ diff: true });
    expect(after.stdout).toMatch(/~ timeout\s*: 50 => 30/);
  });

  test("a malformed import id names what is accepted", async () => {
    const bad = await engineStack("import-bad", async () => {
      new SyslinuxConfig(
        "boot",
        {
          target: { kind: "image", path: disk },
          defaultLabel: "a",
          timeout: 30,
          entries: [{ label: "a", kernel: "/a/vmlinuz", initrd: [], append: "" }],
        },
        { import: "floppy:/dev/fd0" },
      );
      return {};
    });
    try {
      await expect(bad.stack.up()).rejects.toThrow(
        /id: got "floppy:\/dev\/fd0"; "floppy" is not a target kind; expected local:\/path, image:/,
      );
    } finally {
      await bad.cleanup();
    }
  });
});

describe("a directory over ssh set up by hand, reached through an ssh config file", () => {
  let env: EngineStack;
  let sshd: TestSshd;
  let root: string;
  let importing = true;

  beforeAll(async () => {
    sshd = await startSshd();
    root = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-import-ssh-"));
    // An import id carries no key: the machine is reached as the user's ssh config says.
    const keyFile = path.join(work, "user_key");
    fs.writeFileSync(keyFile, sshd.userKey, { mode: 0o600 });
    const sshConfig = path.join(work, "ssh_config");
    fs.writeFileSync(sshConfig, `Host 127.0.0.1\n  IdentityFile ${keyFile}\n  IdentitiesOnly yes\n`);
    const spec: TargetSpec = {
      kind: "ssh",
      host: "127.0.0.1",
      port: sshd.port,
      user: "root",
      path: root,
      knownHostsFile: sshd.knownHosts,
      sshConfigFile: sshConfig,
    };
    await handMade(spec);
    env = await engineStack(
      "import-ssh",
      program(
        () => spec,
        () => importing,
      ),
    );
  });
  afterAll(async () => {
    await env?.cleanup();
    await sshd?.stop();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  test("up imports by ssh:user@host:port:/path ids and writes nothing; then no change", async () => {
    const before = fs.readFileSync(path.join(root, "syslinux.cfg"), "utf8");
    const up = await env.stack.up();
    expect(up.summary.resourceChanges?.import).toBe(3);
    expect(fs.readFileSync(path.join(root, "syslinux.cfg"), "utf8")).toBe(before);
    importing = false;
    const preview = await env.stack.preview({ diff: true });
    expect(preview.changeSummary.same).toBe(4);
    expect(preview.changeSummary.update ?? 0).toBe(0);
  });
});
