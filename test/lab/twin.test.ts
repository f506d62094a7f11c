import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { freePort, stopTwin, waitForConsole } from "../../provider/qemu/twin";
import { ramroot, ramrootArgv } from "../fixtures/debian-repo";
import { buildNasRepo, type NasRepo } from "../fixtures/nas-repo";
import { machineProgram } from "../../components/machine-program";
import { engineStack } from "../engine/pulumi-harness";
import { step } from "../fixtures/scenario-step";
import {
  buildImage,
  consoleHostKeys,
  keepingSerialLog,
  knownHostsLines,
  machineSshArgs,
  makeBootDisk,
  nasImageConfig,
  onMachine as onMachineWith,
  rebootMachine,
  SSHD_READY,
  startMachine,
  twinStackConfig,
  userKeyFor,
} from "../fixtures/twin-machine";

// The machine twin: a NAS-shaped image from the offline repository (dropbear, DHCP, a data disk
// by label, the boot partition, host keys kept on the data disk) on a syslinux disk made with
// the ramroot CLI, booted with `ramroot vm` (QEMU without KVM: each boot takes a minute or so),
// then deployed to over ssh by the real pulumi.
jest.setTimeout(1_800_000);

let work: string;
let repo: NasRepo;
const running: string[] = [];
/** The first step's machine (boot disk, data disk), deployed to and booted again in the foreground by the next. */
let machine:
  | {
      disk: string;
      data: string;
      config: Record<string, unknown>;
      project: string;
      userKey: string;
      hostKeys: string[];
      imageId: string;
    }
  | undefined;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-twin-"));
  repo = await buildNasRepo(path.join(work, "repo"));
});
afterAll(async () => {
  for (const pidFile of running) await stopTwin(pidFile);
  fs.rmSync(work, { recursive: true, force: true });
});

async function nasImageOnTheTwin(): Promise<void> {
  const started = Date.now();
  const project = path.join(work, "nas");
  const ssh = path.join(work, "ssh");
  const userKey = userKeyFor(ssh, path.join(project, "root"));
  const config = nasImageConfig(repo, "root");
  const image = await buildImage(path.join(project, "image.yaml"), config, path.join(work, "images"));
  const imageId = image.imageId;
  const builtAt = Date.now();

  // The machine's boot disk, through the ramroot CLI: disk, slot a, syslinux DEFAULT a.
  const disk = path.join(work, "boot.img");
  await makeBootDisk(disk, image);

  const port = await freePort();
  const serialLog = path.join(work, "serial.log");
  const pidFile = path.join(work, "qemu.pid");
  const data = path.join(work, "data.img");
  await keepingSerialLog(serialLog, async () => {
    const out = JSON.parse(await startMachine({ disk, data, sshPort: port, serialLog, pidFile }, "--watchdog"));
    running.push(pidFile);
    expect(out).toEqual(expect.objectContaining({ sshPort: port, pidFile, serialLog }));
    const ready = SSHD_READY;
    const first = await waitForConsole(serialLog, ready, { timeoutMs: 600_000, pidFile });
    const firstBoot = Date.now();

    // First contact: the host keys the machine printed on its console, and nothing else, are trusted.
    const hostKeys = consoleHostKeys(first);
    expect(hostKeys.map((k) => k.split(" ")[0])).toEqual(["ssh-ed25519", "ecdsa-sha2-nistp256"]);
    const knownHosts = path.join(ssh, "known_hosts");
    fs.writeFileSync(knownHosts, knownHostsLines(port, hostKeys));
    const wrongKnownHosts = path.join(ssh, "known_hosts_wrong");
    fs.writeFileSync(
      wrongKnownHosts,
      `[127.0.0.1]:${port} ${fs.readFileSync(`${userKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ")}\n`,
    );
    const sshArgs = (known: string) => machineSshArgs(port, userKey, known);
    const onMachine = (script: string) => onMachineWith(sshArgs(knownHosts), script);

    expect((await onMachine("cat /run/ramroot/image-id")).trim()).toBe(imageId);
    expect(await onMachine("hostname")).toBe("nas-twin");
    // The data disk and the boot partition are mounted by label; the boot partition holds slot a.
    const mounts = await onMachine("cat /proc/mounts");
    expect(mounts).toMatch(/ \/data ext4 rw/);
    expect(mounts).toMatch(/ \/media\/boot vfat rw/);
    expect(await onMachine("cat /media/boot/a/manifest.json")).toContain(imageId);
    // The names the boot target uses (an 8.3-only name such as vmlinuz reads back in lower case).
    expect((await onMachine("ls /media/boot/a")).split("\n").sort()).toEqual(["initramfs", "manifest.json", "vmlinuz"]);
    // The boot side reads the slot over ssh from the running machine, as a deploy does.
    const sshTarget = [
      "--ssh",
      "root@127.0.0.1:/media/boot",
      "--port",
      String(port),
      "--identity",
      userKey,
      "--known-hosts",
      knownHosts,
    ];
    const slotA = JSON.parse(await ramroot("slot", "show", "--slot", "a", ...sshTarget));
    expect(slotA).toEqual(
      expect.objectContaining({ consistent: true, manifest: expect.objectContaining({ imageId }) }),
    );
    // Modules load through modprobe (modules.dep made at build): the NIC's driver is loaded.
    expect(await onMachine("cat /proc/modules")).toMatch(/^virtio_net /m);
    const note = `kept across reboots ${Date.now()}`;
    await onMachine(`echo '${note}' > /data/note && sync`);
    // Strict host key checking is real: a wrong key is refused.
    const refused = await execa("ssh", [...sshArgs(wrongKnownHosts), "true"], { reject: false });
    expect(refused.exitCode).toBe(255);
    expect(refused.stderr).toMatch(/host key/i);

    // Reboot the machine (through syslinux again): same host key, the file is still there.
    await rebootMachine(sshArgs(knownHosts));
    const second = await waitForConsole(serialLog, ready, { count: 2, timeoutMs: 600_000, pidFile });
    const secondBoot = Date.now();
    const secondKeys = consoleHostKeys(second).slice(hostKeys.length);
    expect(secondKeys).toEqual(hostKeys);
    // The shutdown unmounted both disks: neither needed a repair on the way back.
    const afterReboot = second.slice(second.indexOf("Requesting system reboot"));
    expect(afterReboot).not.toMatch(/not properly unmounted|recovery complete/);
    expect((await onMachine("cat /data/note")).trim()).toBe(note);
    expect((await onMachine("cat /run/ramroot/image-id")).trim()).toBe(imageId);

    // The i6300esb watchdog (--watchdog): opened and then no longer fed, it resets the machine
    // (QEMU's -action watchdog=reset), which boots again through syslinux by itself.
    expect(await onMachine("ls /dev/watchdog")).toBe("/dev/watchdog");
    await onMachine("sync; exec 3>/dev/watchdog; echo armed");
    const third = await waitForConsole(serialLog, ready, { count: 3, timeoutMs: 600_000, pidFile });
    const watchdogReset = Date.now();
    expect(third.slice(third.lastIndexOf("Requesting system reboot"))).toMatch(/watchdog did not stop/);
    expect((await onMachine("cat /data/note")).trim()).toBe(note);

    await ramroot("vm", "stop", "--pid-file", pidFile);
    expect(fs.existsSync(pidFile)).toBe(false);
    machine = { disk, data, config, project, userKey, hostKeys, imageId };
    process.stderr.write(
      `[twin] build ${((builtAt - started) / 1000).toFixed(0)} s, first boot to sshd ${((firstBoot - builtAt) / 1000).toFixed(0)} s, ` +
        `reboot to sshd ${((secondBoot - firstBoot) / 1000).toFixed(0)} s, watchdog reset to sshd ${((watchdogReset - secondBoot) / 1000).toFixed(0)} s, total ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
    );
  });
}

async function pulumiUpOverSsh(): Promise<void> {
  if (!machine) throw new Error("needs the machine of the first step");
  const m = machine;
  const port = await freePort();
  const serialLog = path.join(work, "deploy-serial.log");
  const pidFile = path.join(work, "deploy-qemu.pid");
  await keepingSerialLog(serialLog, async () => {
    await startMachine({ disk: m.disk, data: m.data, sshPort: port, serialLog, pidFile });
    running.push(pidFile);
    const ready = SSHD_READY;
    await waitForConsole(serialLog, ready, { timeoutMs: 600_000, pidFile });
    const ssh = path.join(work, "deploy-ssh");
    fs.mkdirSync(ssh);
    const knownHosts = path.join(ssh, "known_hosts");
    fs.writeFileSync(knownHosts, knownHostsLines(port, m.hostKeys));
    const sshArgs = machineSshArgs(port, m.userKey, knownHosts);
    const onMachine = (script: string) => onMachineWith(sshArgs, script);

    // The same machine config with one overlay file more: a new image.
    fs.mkdirSync(path.join(m.project, "root", "etc", "ramroot"), { recursive: true });
    fs.writeFileSync(path.join(m.project, "root", "etc", "ramroot", "release"), "second\n");
    const env = await engineStack("twin", async () => machineProgram());
    try {
      process.env.RAMROOT_IMAGE_CACHE = path.join(env.dir, "images");
      const image = { ...m.config, overlay: path.join(m.project, "root"), cmdline: "console=ttyS0 no_timer_check" };
      await env.stack.setAllConfig(twinStackConfig(port, m.userKey, knownHosts, image));
      const up = await env.stack.up();
      expect(up.summary.result).toBe("succeeded");
      expect(up.outputs.activeSlot!.value).toBe("b");
      const deployed = up.outputs.imageId!.value as string;
      expect(deployed).not.toBe(m.imageId);
      expect(await onMachine("sed -n 's/^DEFAULT //p' /media/boot/syslinux.cfg")).toBe("b");

      await rebootMachine(sshArgs);
      await waitForConsole(serialLog, ready, { count: 2, timeoutMs: 600_000, pidFile });
      expect((await onMachine("cat /run/ramroot/image-id")).trim()).toBe(deployed);
      expect(await onMachine("cat /etc/ramroot/release")).toBe("second");
      expect(await onMachine("cat /proc/cmdline")).toMatch(/BOOT_IMAGE=\/b\/vmlinuz/);
      expect((await onMachine("cat /data/note")).trim()).toMatch(/^kept across reboots/);
    } finally {
      await env.cleanup();
      delete process.env.RAMROOT_IMAGE_CACHE;
    }
    await ramroot("vm", "stop", "--pid-file", pidFile);
  });
}

async function vmInTheForeground(): Promise<void> {
  if (!machine) throw new Error("needs the machine of the first step");
  const serialLog = path.join(work, "foreground.log");
  const cli = execa(
    process.execPath,
    ramrootArgv("vm", "--disk", machine.disk, "--data", machine.data, "--serial-log", serialLog),
    { stdin: "pipe", reject: false },
  );
  let console = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no kernel output on the terminal within 300 s:\n${console.slice(-2000)}`)),
      300_000,
    );
    cli.stdout!.on("data", (chunk: Buffer) => {
      console += chunk.toString();
      if (/Run \/sbin\/init as init process/.test(console)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  cli.stdin!.write("\x01x");
  const result = await cli;
  expect(result.exitCode).toBe(0);
  expect(result.stderr).toMatch(/ssh on 127\.0\.0\.1:\d+, data disk .*; Ctrl-A X quits/);
  expect(fs.readFileSync(serialLog, "utf8")).toMatch(/Run \/sbin\/init as init process/);
}

// One scenario: the deploy and the foreground run use the machine the first step made.
test("the twin's life: a NAS image booted and kept across reboots, a pulumi up over ssh, ramroot vm in the foreground", async () => {
  await step(
    "a NAS image on the twin: strict ssh, the image id published, the slot read over ssh, data and host key kept across a reboot, a watchdog reset",
    nasImageOnTheTwin,
  );
  await step(
    "pulumi up over ssh to the running twin: the new image goes to slot b, DEFAULT b, and after a reboot the machine runs it, same host key, data kept",
    pulumiUpOverSsh,
  );
  await step(
    "ramroot vm in the foreground: the console on the terminal and in the log, Ctrl-A X quits",
    vmInTheForeground,
  );
});
