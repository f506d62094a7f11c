import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { freePort, processAlive, stopTwin } from "../../provider/qemu/twin";
import { ramroot, ramrootArgv } from "../fixtures/debian-repo";
import { buildNasRepo } from "../fixtures/nas-repo";
import { machineStack, type EngineStack } from "../engine/pulumi-harness";
import {
  buildImage,
  consoleHostKeys,
  keepingSerialLog,
  knownHostsLines,
  machineSshArgs,
  makeBootDisk,
  nasImageConfig,
  nextBoot,
  onMachine,
  rebootMachine,
  runningRelease,
  startMachine,
  twinStackConfig,
  userKeyFor,
} from "../fixtures/twin-machine";

// Faults of a deploy to the machine twin, with the real pulumi CLI (the project's compiled
// program, the provider plugin) and the ramroot CLI over an `ssh` target at 127.0.0.1:<port>
// (strategy switch): the power cut in the middle of the slot copy, a rollback over ssh, and
// a destroy that lets go of the machine.
// One machine (its own boot and data disks, its own port), so one test with named steps:
// each step stands on what the machine holds after the one before. QEMU without KVM: each
// boot to sshd takes 25-60 s, and the machine boots five times.
jest.setTimeout(2_400_000);

let work: string;
let pidFile: string;
let env: EngineStack | undefined;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-twin-faults-"));
  pidFile = path.join(work, "qemu.pid");
});
afterAll(async () => {
  await stopTwin(pidFile);
  await env?.cleanup();
  delete process.env.RAMROOT_IMAGE_CACHE;
  fs.rmSync(work, { recursive: true, force: true });
});

/** Cuts the machine's power: QEMU killed at once (nothing flushed that the guest had not written), and gone (a zombie runs no machine). */
async function powerCut(): Promise<void> {
  const pid = Number(fs.readFileSync(pidFile, "utf8").trim());
  process.kill(pid, "SIGKILL");
  while (processAlive(pid)) await new Promise((r) => setTimeout(r, 50));
}

test("QEMU killed during the slot copy over ssh boots a again and the next up succeeds; `ramroot rollback` over ssh switches back without a copy and the machine boots it; the data disk keeps its file throughout; `pulumi destroy` over ssh leaves a machine that boots its DEFAULT", async () => {
  const started = Date.now();
  const times: string[] = [];
  const mark = (what: string) => times.push(`${what} ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const repo = await buildNasRepo(path.join(work, "repo"));
  const overlay = path.join(work, "project", "root");
  const userKey = userKeyFor(path.join(work, "ssh"), overlay);
  const release = (text: string) => {
    fs.mkdirSync(path.join(overlay, "etc", "ramroot"), { recursive: true });
    fs.writeFileSync(path.join(overlay, "etc", "ramroot", "release"), `${text}\n`);
  };
  const config = { ...nasImageConfig(repo, overlay), cmdline: "console=ttyS0 no_timer_check" };

  // The machine as it came: image "zero" in slot a, DEFAULT a, made with the ramroot CLI.
  release("zero");
  const zero = await buildImage(path.join(work, "image.yaml"), config, path.join(work, "cli-images"));
  const disk = path.join(work, "boot.img");
  await makeBootDisk(disk, zero);
  mark("repository and first image");

  const port = await freePort();
  const serialLog = path.join(work, "serial.log");
  const data = path.join(work, "data.img");
  const twin = { disk, data, sshPort: port, serialLog, pidFile };
  const booted = nextBoot(serialLog, pidFile);

  await keepingSerialLog(serialLog, async () => {
    await startMachine(twin);
    const hostKeys = consoleHostKeys(await booted());
    expect(hostKeys.length).toBeGreaterThan(0);
    mark("first boot");
    const sshDir = path.join(work, "ssh");
    const knownHosts = path.join(sshDir, "known_hosts");
    fs.writeFileSync(knownHosts, knownHostsLines(port, hostKeys));
    const sshArgs = machineSshArgs(port, userKey, knownHosts);
    const sh = (script: string) => onMachine(sshArgs, script);
    const running = () => runningRelease(sh);
    const defaultSlot = async () => (await sh("sed -n 's/^DEFAULT //p' /media/boot/syslinux.cfg")).trim();
    const manifestOf = async (slot: string) => JSON.parse(await sh(`cat /media/boot/${slot}/manifest.json`));
    /** The file written before the first deploy, read back. */
    const note = `written before any deploy ${Date.now()}`;
    const dataFile = async () => (await sh("cat /data/before-deploy")).trim();

    expect(await running()).toEqual({ imageId: zero.imageId, slot: "a", release: "zero" });
    await sh(`echo '${note}' > /data/before-deploy && sync`);

    // The stack: the project's compiled program on the stack config, an ssh target at the twin.
    env = await machineStack("twin-faults");
    const stack = env.stack;
    process.env.RAMROOT_IMAGE_CACHE = path.join(env.dir, "images");
    const setImage = async (text: string) => {
      release(text);
      await stack.setAllConfig(twinStackConfig(port, userKey, knownHosts, config));
    };

    // Step 1: the power is cut while `pulumi up` copies the new image into slot b over ssh.
    await setImage("one");
    let output = "";
    const up = stack.up({ onOutput: (o) => (output += o) }).then(
      () => "succeeded",
      (err: Error) => err.message,
    );
    // One remote loop watches slot b and answers as soon as a file there has bytes: the copy is in flight.
    const watch = execa(
      "ssh",
      [
        ...sshArgs,
        'while :; do for f in /media/boot/b/*; do [ -s "$f" ] && { echo "$f"; exit 0; }; done; sleep 0.2; done',
      ],
      { reject: false },
    );
    const first = await Promise.race([watch.then((w) => ({ watched: w })), up.then((result) => ({ upEnded: result }))]);
    if ("upEnded" in first) {
      watch.kill("SIGKILL");
      throw new Error(`pulumi up ended (${first.upEnded}) before a byte reached slot b:\n${output}`);
    }
    if (first.watched.exitCode !== 0)
      throw new Error(`watching slot b failed (exit ${first.watched.exitCode}): ${first.watched.stderr}`);
    await powerCut();
    const failed = await up;
    mark("deploy cut");
    expect(first.watched.stdout).toMatch(/^\/media\/boot\/b\/\S+$/);
    expect(failed).not.toBe("succeeded");
    expect(failed).toMatch(/machine-slot-b/);
    expect(failed).toMatch(/ssh failed|connection|cannot connect/i);

    // Restarted (the same disks), it boots slot a: DEFAULT was never switched.
    await startMachine(twin);
    const afterCut = await booted();
    mark("restart after the cut");
    expect(consoleHostKeys(afterCut)).toEqual(hostKeys);
    expect(await running()).toEqual({ imageId: zero.imageId, slot: "a", release: "zero" });
    expect(await defaultSlot()).toBe("a");
    expect(await dataFile()).toBe(note);
    // What the cut left in slot b is no image: no manifest names it.
    expect(await sh("cat /media/boot/b/manifest.json 2>/dev/null || echo none")).toBe("none");

    // Step 2: the next `pulumi up` succeeds (the dead deploy's lease is taken over, its leftovers
    // removed): slot b holds the new image, DEFAULT b, and after a reboot the machine runs it.
    output = "";
    const second = await stack.up({ onOutput: (o) => (output += o) });
    mark("next up");
    expect(second.summary.result).toBe("succeeded");
    expect(second.outputs.activeSlot!.value).toBe("b");
    const one = second.outputs.imageId!.value as string;
    expect(one).not.toBe(zero.imageId);
    expect(await defaultSlot()).toBe("b");
    // A layered slot: its initramfs is the layers its manifest names, in /media/boot/layers.
    expect((await sh("ls /media/boot/b")).split("\n").sort()).toEqual(["manifest.json", "vmlinuz"]);
    const layers = (JSON.parse(await sh("cat /media/boot/b/manifest.json")) as { layers: { path: string }[] }).layers;
    expect(layers.length).toBeGreaterThan(0);
    for (const layer of layers) expect(await sh(`ls /media/boot/${layer.path}`)).toBe(`/media/boot/${layer.path}`);
    expect(await sh("ls /media/boot/ramroot/lease 2>/dev/null || echo none")).toBe("none");
    await rebootMachine(sshArgs);
    await booted();
    mark("reboot into b");
    expect(await running()).toEqual({ imageId: one, slot: "b", release: "one" });
    expect(await dataFile()).toBe(note);

    // Step 3: a further deploy writes the idle slot a, and the machine runs it.
    await setImage("two");
    const third = await stack.up();
    expect(third.summary.result).toBe("succeeded");
    expect(third.outputs.activeSlot!.value).toBe("a");
    const two = third.outputs.imageId!.value as string;
    await rebootMachine(sshArgs);
    await booted();
    mark("third up and reboot into a");
    expect(await running()).toEqual({ imageId: two, slot: "a", release: "two" });

    // Step 4: `ramroot rollback` over ssh goes back to what update 2 left running. Image "one" is
    // still in slot b, so nothing is copied: DEFAULT switches, both slots keep their bytes.
    const slotsBefore = { a: await manifestOf("a"), b: await manifestOf("b") };
    const rollback = await execa(
      process.execPath,
      ramrootArgv("rollback", "--stack", "twin-faults", "--cwd", env.dir),
      {
        env: { PULUMI_BACKEND_URL: `file://${path.join(env.dir, "state")}`, PULUMI_CONFIG_PASSPHRASE: "test" },
        reject: false,
      },
    );
    mark("rollback");
    expect(rollback.exitCode).toBe(0);
    expect(rollback.stderr).toMatch(
      new RegExp(`rolling back machine to update 2: image ${one.slice(0, 12)}, already in slot b: switching only`),
    );
    expect(await defaultSlot()).toBe("b");
    expect({ a: await manifestOf("a"), b: await manifestOf("b") }).toEqual(slotsBefore);
    const status = await execa(process.execPath, ramrootArgv("status", "--stack", "twin-faults", "--cwd", env.dir), {
      env: { PULUMI_BACKEND_URL: `file://${path.join(env.dir, "state")}`, PULUMI_CONFIG_PASSPHRASE: "test" },
    });
    expect(status.stdout).toMatch(/^DEFAULT +b\b/m);
    expect(status.stdout).toMatch(/^PINNED +to update 2\b/m);
    // Update 1 is the one the power cut ended; the rollback is update 4.
    expect(status.stdout).toMatch(
      new RegExp(
        `^slot b +image ${one.slice(0, 12)} .* by update 2 +\\[DEFAULT since update 4: rollback to update 2\\]$`,
        "m",
      ),
    );
    expect(status.stdout).toMatch(new RegExp(`^slot a +image ${two.slice(0, 12)} .* by update 3$`, "m"));
    // The power is cut right after the rollback (and the status read): what it wrote is on the
    // disk (the switch, the journal, the lease given back), and the restarted machine boots b.
    await powerCut();
    await startMachine(twin);
    const afterRollback = await booted();
    mark("power cut after the rollback, restart");
    expect(await sh("ls /media/boot/ramroot")).not.toMatch(/^lease$/m);
    expect(JSON.parse(await sh("cat /media/boot/ramroot/journal.json")).entries.at(-1)).toMatchObject({
      how: "rollback",
      update: 2,
      slot: "b",
      imageId: one,
    });
    expect(await running()).toEqual({ imageId: one, slot: "b", release: "one" });
    expect(consoleHostKeys(afterRollback)).toEqual(hostKeys);
    expect(await dataFile()).toBe(note);

    // Step 5: `pulumi destroy` over ssh lets go of the machine: syslinux.cfg, both slots and
    // their manifests stay byte for byte (the DEFAULT slot included), no lease is left, and the
    // rebooted machine still runs its DEFAULT slot b.
    const bootFiles = "cd /media/boot && sha256sum syslinux.cfg a/* b/*";
    const filesBefore = await sh(bootFiles);
    const destroy = await stack.destroy();
    mark("destroy");
    expect(destroy.stdout).toMatch(/left syslinux\.cfg on ssh:.* in place/);
    expect(await sh(bootFiles)).toBe(filesBefore);
    expect(await defaultSlot()).toBe("b");
    expect(await sh("ls /media/boot/ramroot/lease 2>/dev/null || echo none")).toBe("none");
    await rebootMachine(sshArgs);
    await booted();
    mark("reboot after destroy");
    expect(await running()).toEqual({ imageId: one, slot: "b", release: "one" });
    expect(await dataFile()).toBe(note);

    await ramroot("vm", "stop", "--pid-file", pidFile);
    process.stderr.write(`[twin-faults] ${times.join(", ")}\n`);
  });
});
