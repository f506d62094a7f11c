import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort, stopTwin } from "../../provider/qemu/twin";
import { ramroot } from "../fixtures/debian-repo";
import { buildNasRepo } from "../fixtures/nas-repo";
import { step } from "../fixtures/scenario-step";
import { machineStack, type EngineStack } from "../engine/pulumi-harness";
import {
  consoleHostKeys,
  keepingSerialLog,
  knownHostsLines,
  machineSshArgs,
  nasImageConfig,
  nextBoot,
  onMachine,
  rebootMachine,
  runningRelease,
  startMachine,
  twinStackConfig,
  userKeyFor,
} from "../fixtures/twin-machine";

// The road from the first deploy to the machine, on the machine twin (QEMU without KVM) with the
// real pulumi CLI and the project's own program: the stack deploys to a disk image (what is
// written to the stick), the machine boots that disk, then the same stack's target becomes ssh
// to the running machine. The boot partition is the same FAT volume (serial and label) read from
// the image file and, over ssh, from the machine's own device: the preview shows no replacement
// and no rebuild, `up` writes no byte to the disk, and an edit then deploys over ssh.
jest.setTimeout(2_400_000);

let work: string;
let pidFile: string;
let env: EngineStack | undefined;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-bootstrap-"));
  pidFile = path.join(work, "qemu.pid");
});
afterAll(async () => {
  await stopTwin(pidFile);
  await env?.cleanup();
  delete process.env.RAMROOT_IMAGE_CACHE;
  fs.rmSync(work, { recursive: true, force: true });
});

const sha256 = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

test("disk image target, boot, then the same stack over ssh: no replacement, no rebuild, no byte written; an edit deploys over ssh", async () => {
  const repo = await buildNasRepo(path.join(work, "repo"));
  const overlay = path.join(work, "project", "root");
  const userKey = userKeyFor(path.join(work, "ssh"), overlay);
  const release = (text: string) => {
    fs.mkdirSync(path.join(overlay, "etc", "ramroot"), { recursive: true });
    fs.writeFileSync(path.join(overlay, "etc", "ramroot", "release"), `${text}\n`);
  };
  const config = { ...nasImageConfig(repo, overlay), cmdline: "console=ttyS0 no_timer_check" };
  const disk = path.join(work, "boot.img");
  const port = await freePort();
  const serialLog = path.join(work, "serial.log");
  const twin = { disk, data: path.join(work, "data.img"), sshPort: port, serialLog, pidFile };
  const booted = nextBoot(serialLog, pidFile);

  env = await machineStack("bootstrap");
  const stack = env.stack;
  process.env.RAMROOT_IMAGE_CACHE = path.join(env.dir, "images");
  let first = "";
  let volumeId = "";

  await step("the stick: `ramroot disk create`, and the stack's first up writes slot a of the disk image", async () => {
    release("one");
    const created = JSON.parse(await ramroot("disk", "create", "--size", "64", disk));
    volumeId = created.volumeId;
    expect(volumeId).toMatch(/^[0-9A-F]{4}-[0-9A-F]{4}$/);
    await stack.setAllConfig({
      "ramroot:target": { value: JSON.stringify({ kind: "image", path: disk }) },
      "ramroot:image": { value: JSON.stringify(config) },
    });
    const up = await stack.up();
    expect(up.summary.result).toBe("succeeded");
    expect(up.outputs.activeSlot!.value).toBe("a");
    first = up.outputs.imageId!.value as string;
  });

  await keepingSerialLog(serialLog, async () => {
    await startMachine(twin);
    const hostKeys = consoleHostKeys(await booted());
    const knownHosts = path.join(work, "ssh", "known_hosts");
    fs.writeFileSync(knownHosts, knownHostsLines(port, hostKeys));
    const sshArgs = machineSshArgs(port, userKey, knownHosts);
    const sh = (script: string) => onMachine(sshArgs, script);
    const running = () => runningRelease(sh);
    /** The disk's bytes once the machine has flushed what it holds for it. */
    const diskBytes = async () => {
      await sh("sync");
      return sha256(disk);
    };

    await step("the machine boots the disk: slot a, the image the stack deployed", async () => {
      expect(await running()).toEqual({ imageId: first, slot: "a", release: "one" });
    });

    await step(
      "the target becomes ssh to the machine: the preview shows updates of how it is reached, no replacement and no rebuild",
      async () => {
        await stack.setAllConfig(twinStackConfig(port, userKey, knownHosts, config));
        const preview = await stack.preview({ diff: true });
        expect(preview.changeSummary.replace ?? 0).toBe(0);
        expect(preview.changeSummary.create ?? 0).toBe(0);
        expect(preview.changeSummary.delete ?? 0).toBe(0);
        // BootSlot a and SyslinuxConfig: their target; the image is the same plan, nothing to build.
        expect(preview.changeSummary.update).toBe(2);
        expect(preview.stdout).toMatch(/~ kind\s*: "image" => "ssh"/);
        expect(preview.stdout).not.toMatch(/AlpineImage.*(update|replace|create)/);
      },
    );

    await step(
      "up over ssh writes no byte to the disk, and records the partition's volume read on the machine",
      async () => {
        const before = await diskBytes();
        const up = await stack.up();
        expect(up.summary.result).toBe("succeeded");
        expect(up.summary.resourceChanges?.update).toBe(2);
        expect(up.summary.resourceChanges?.replace ?? 0).toBe(0);
        expect(up.outputs.imageId!.value).toBe(first);
        expect(up.stdout).toMatch(/slot a on ssh .* already holds image [0-9a-f]{12}: nothing to copy/);
        expect(up.stdout).toMatch(/syslinux\.cfg on ssh .* already holds this config: nothing to write/);
        expect(await diskBytes()).toBe(before);
        // What the state now records for each resource: the volume read over ssh on the machine,
        // the one `disk create` wrote into the image's boot sector.
        const { deployment } = await stack.exportStack();
        const volumes = (deployment.resources as { type: string; outputs?: { volume?: unknown } }[])
          .filter((r) => r.type === "ramroot:index:BootSlot" || r.type === "ramroot:index:SyslinuxConfig")
          .map((r) => r.outputs?.volume);
        expect(volumes).toEqual([
          { serial: volumeId, label: "RAMROOT", dir: "" },
          { serial: volumeId, label: "RAMROOT", dir: "" },
        ]);
      },
    );

    await step(
      "an edit deploys over ssh: slot b written on the machine, DEFAULT b, and after a reboot it runs",
      async () => {
        release("two");
        await stack.setAllConfig(twinStackConfig(port, userKey, knownHosts, config));
        const up = await stack.up();
        expect(up.summary.result).toBe("succeeded");
        expect(up.outputs.activeSlot!.value).toBe("b");
        const second = up.outputs.imageId!.value as string;
        expect(second).not.toBe(first);
        expect((await sh("sed -n 's/^DEFAULT //p' /media/boot/syslinux.cfg")).trim()).toBe("b");
        await rebootMachine(sshArgs);
        await booted();
        expect(await running()).toEqual({ imageId: second, slot: "b", release: "two" });
      },
    );
  });
});
