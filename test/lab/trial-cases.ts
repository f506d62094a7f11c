import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { freePort, stopTwin, waitForConsole } from "../../provider/qemu/twin";
import { ramrootArgv } from "../fixtures/debian-repo";
import { buildNasRepo, type NasRepo } from "../fixtures/nas-repo";
import { buildArm64Repo } from "../fixtures/arm64-repo";
import { archInfo, type Arch } from "../../provider/arch";
import {
  buildImage,
  consoleHostKeys,
  keepingSerialLog as keepingLog,
  knownHostsLines,
  machineSshArgs,
  makeBootDisk,
  nasImageConfig,
  onMachine as onTwin,
  rebootMachine,
  SSHD_READY,
  startMachine,
  twinStackConfig,
  userKeyFor,
  type TwinScheme,
} from "../fixtures/twin-machine";
import { machineStack, type EngineStack } from "../engine/pulumi-harness";

/** The cases of a trial, by how it ends. */
export type TrialCase = "good" | "panic" | "unhealthy" | "hung";
const TRIAL_CASES: readonly TrialCase[] = ["good", "panic", "unhealthy", "hung"];

/**
 * The trial that cannot lose the box, on the machine twin (QEMU without KVM, ssh on a forwarded
 * port of 127.0.0.1, a data disk, an i6300esb watchdog) with the real pulumi CLI and the stack's
 * own program (`strategy: trial`): the new image is written to the idle slot over ssh, booted
 * once through a trial entry, and promoted only when the machine answers "image X healthy" (its
 * guard runs the image's health checks). The same cases run on each boot scheme: under SeaBIOS
 * the once-boot is `extlinux --once` on the machine (the ADV), under OVMF it is systemd-boot's
 * LoaderEntryOneShot set through efivarfs. Each test starts from whatever slot DEFAULT names and
 * needs only a running, healthy machine, so they pass in any order. On a failure the machine's
 * serial log is kept and named.
 */
export function trialCases(scheme: TwinScheme, opts: { arch?: Arch; cases?: readonly TrialCase[] } = {}): void {
  jest.setTimeout(3_600_000);
  const arch = opts.arch ?? "x86_64";
  const cases = new Set(opts.cases ?? TRIAL_CASES);
  /** A test of a case this run takes (the others are not registered). */
  const trialCase = (name: TrialCase, title: string, body: () => Promise<void>) => {
    if (cases.has(name)) test(title, body);
  };
  const serialConsole = archInfo(arch).qemu.console;

  /**
   * Seconds after the kernel starts within which the checks must pass: a TCG boot is healthy in
   * about 20 s, far more on a loaded machine, and a good image does not wait for the deadline.
   */
  const HEALTH_TIMEOUT = 600;
  /** The unhealthy image's deadline: its guard reboots it this long after boot (the test waits for it). */
  const SHORT_HEALTH_TIMEOUT = 90;

  let work: string;
  let repo: Pick<NasRepo, "repository" | "keysDir" | "nasPackages">;
  let env: EngineStack;
  let overlay: string;
  let port: number;
  let serialLog: string;
  let pidFile: string;
  let userKey: string;
  let knownHosts: string;
  let sshArgs: string[];
  /** sshd start lines on the console so far: a reboot is waited for by the next one */
  let boots = 0;
  /** the host keys the machine printed at its first boot */
  let hostKeys: string[];

  const onMachine = (script: string) => onTwin(sshArgs, script);
  const keepingSerialLog = (body: () => Promise<void>) => keepingLog(serialLog, body);

  /** The image the stack deploys: the NAS shape plus health checks, with `extra` merged over it. */
  function imageConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      ...nasImageConfig(repo, overlay),
      ...(arch === "x86_64" ? {} : { arch }),
      cmdline: `console=${serialConsole} no_timer_check`,
      health: {
        checks: [
          { name: "sshd", command: "netstat -ltn | grep -q ':22 ' || { echo 'nothing listens on port 22'; exit 1; }" },
          { name: "data", command: "grep -q ' /data ' /proc/mounts || { echo '/data is not mounted'; exit 1; }" },
        ],
        timeoutSeconds: HEALTH_TIMEOUT,
        intervalSeconds: 5,
      },
      ...extra,
    };
  }

  async function configure(image: Record<string, unknown>): Promise<void> {
    await env.stack.setAllConfig({
      ...twinStackConfig(port, userKey, knownHosts, image),
      "ramroot:strategy": { value: "trial" },
      "ramroot:trial": { value: JSON.stringify({ timeoutSeconds: 1200 }) },
    });
  }

  /** The overlay's release file: every deploy a new image. */
  function release(text: string): void {
    fs.writeFileSync(path.join(overlay, "etc", "ramroot", "release"), `${text}\n`);
  }

  /** The slot the boot partition's config boots by default (its labels are the slots' names). */
  async function defaultSlot(): Promise<string> {
    return onMachine(
      scheme === "uefi"
        ? "sed -n 's/^default \\(.*\\)\\.conf$/\\1/p' /media/boot/loader/loader.conf"
        : "sed -n 's/^DEFAULT //p' /media/boot/syslinux.cfg",
    );
  }

  /** The boot config as the boot loader reads it: syslinux.cfg, or loader.conf and every entry. */
  async function bootConfig(): Promise<string> {
    return onMachine(
      scheme === "uefi"
        ? "cat /media/boot/loader/loader.conf /media/boot/loader/entries/*.conf"
        : "cat /media/boot/syslinux.cfg",
    );
  }

  /**
   * The slot the running kernel came from: a layered slot's entry names it (ramroot.slot=<slot>:
   * its initrds are the shared store's layers); else syslinux puts BOOT_IMAGE=/<slot>/vmlinuz on
   * its command line, systemd-boot an initrd=\\<slot>\\initramfs for each initrd of the entry.
   */
  async function runningSlot(): Promise<string> {
    const cmdline = await onMachine("cat /proc/cmdline");
    const found =
      /(?:^|\s)ramroot\.slot=(\S+)/.exec(cmdline) ??
      (scheme === "uefi" ? /(?:^|\s)initrd=\\([^\\\s]+)\\/.exec(cmdline) : /BOOT_IMAGE=\/([^/\s]+)\//.exec(cmdline));
    return found?.[1] ?? "?";
  }

  /**
   * Waits for the machine's next boot to reach sshd, and counts every boot that did (a trial boot
   * that reached sshd before it fell back is one more).
   */
  async function nextBoot(): Promise<string> {
    const log = await waitForConsole(serialLog, SSHD_READY, { count: boots + 1, timeoutMs: 900_000, pidFile });
    boots = log.match(new RegExp(SSHD_READY.source, "g"))?.length ?? boots + 1;
    return log;
  }

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), `ramroot-twin-trial-${scheme}-${arch}-`));
    repo =
      arch === "x86_64"
        ? await buildNasRepo(path.join(work, "repo"))
        : await buildArm64Repo(path.join(work, "repo"), { machine: true });
    env = await machineStack("trial");
    process.env.RAMROOT_IMAGE_CACHE = path.join(env.dir, "images");
    overlay = path.join(work, "nas", "root");
    fs.mkdirSync(path.join(overlay, "etc", "ramroot"), { recursive: true });
    userKey = userKeyFor(path.join(work, "ssh"), overlay);
    knownHosts = path.join(work, "ssh", "known_hosts");
    release("first");

    // The machine's boot disk through the ramroot CLI: the first image in slot a, DEFAULT a.
    const first = await buildImage(
      path.join(work, "nas", "image.yaml"),
      imageConfig(),
      process.env.RAMROOT_IMAGE_CACHE,
    );
    const disk = path.join(work, "boot.img");
    await makeBootDisk(disk, first, scheme, arch);
    port = await freePort();
    serialLog = path.join(work, "serial.log");
    pidFile = path.join(work, "qemu.pid");
    sshArgs = machineSshArgs(port, userKey, knownHosts);
    const firmware = scheme === "uefi" ? ["--uefi", "--vars", path.join(work, "vars.fd")] : [];
    // aarch64's `virt` has no i6300esb (docs/boot-schemes.md: what covers a hang there).
    const watchdog = arch === "x86_64" ? ["--watchdog"] : [];
    await startMachine(
      { disk, data: path.join(work, "data.img"), sshPort: port, serialLog, pidFile },
      ...watchdog,
      ...firmware,
      ...(arch === "x86_64" ? [] : ["--arch", arch]),
    );
    await keepingSerialLog(async () => {
      // First contact: the host keys the machine printed on its console, and nothing else, are trusted.
      hostKeys = consoleHostKeys(await nextBoot());
      expect(hostKeys).toHaveLength(2);
      fs.writeFileSync(knownHosts, knownHostsLines(port, hostKeys));
      await waitHealthy(first.imageId);
      // The stack adopts what the machine runs: the same image, already in slot a.
      await configure(imageConfig());
      const adopted = await env.stack.up();
      expect(adopted.outputs.imageId!.value).toBe(first.imageId);
      expect(await defaultSlot()).toBe("a");
    });
  });

  afterAll(async () => {
    if (pidFile) await stopTwin(pidFile);
    await env?.cleanup();
    delete process.env.RAMROOT_IMAGE_CACHE;
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** Waits until the machine's guard reports `imageId` healthy. */
  async function waitHealthy(imageId: string): Promise<string> {
    const deadline = Date.now() + HEALTH_TIMEOUT * 1000;
    for (;;) {
      const report = await onMachine("cat /run/ramroot/health 2>/dev/null || true");
      if (report.includes(`image ${imageId}`) && /^status healthy$/m.test(report)) return report;
      if (Date.now() > deadline) throw new Error(`the machine did not report image ${imageId} healthy:\n${report}`);
      await new Promise((r) => setTimeout(r, 3000));
    }
  }

  /** `ramroot ARGS` with the stack's backend and passphrase (a child sees jest's real environment, so they are passed). */
  async function ramrootOnStack(...args: string[]): Promise<string> {
    const run = await execa(process.execPath, ramrootArgv(...args), {
      env: { PULUMI_BACKEND_URL: `file://${path.join(env.dir, "state")}`, PULUMI_CONFIG_PASSPHRASE: "test" },
      reject: false,
    });
    if (run.exitCode !== 0) throw new Error(`ramroot ${args.join(" ")} failed (${run.exitCode}): ${run.stderr}`);
    return run.stdout;
  }

  /**
   * `pulumi up` whose trial must fail: its error text (the engine's output with the provider's
   * message). After it the stack reads as before the update: the same outputs (DEFAULT stayed),
   * `ramroot status` lists the failed trial with its slot, image, cause and time, and the state
   * matches the partition, so the next preview has nothing to do (the image is not tried again).
   */
  async function failingUp(cause: "panic" | "unhealthy" | "hung" | "timeout"): Promise<string> {
    const outputs = await env.stack.outputs();
    const err = await env.stack.up().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    if (!err) throw new Error("expected `pulumi up` to fail");
    const message = err.message;
    const [, slot, image, seconds] = new RegExp(
      `trial of \\w+ \\(slot (\\w+), image ([0-9a-f]{12})\\) failed after (\\d+) s \\(${cause}\\)`,
    ).exec(message)!;
    expect(message).not.toMatch(/Outputs:\s*\n\s*- /); // no output reads as deleted
    expect(await env.stack.outputs()).toEqual(outputs);
    const status = await ramrootOnStack("status", "--stack", "trial", "--cwd", env.dir);
    expect(status).toMatch(new RegExp(`^  \\S+  slot ${slot}  image ${image}  ${cause} after ${seconds} s: `, "m"));
    const next = await env.stack.preview();
    expect(next.changeSummary).toEqual({ same: expect.any(Number) });
    expect(next.stdout + next.stderr).toMatch(
      new RegExp(`image ${image} in slot ${slot} failed its trial at .* \\(${cause}\\): DEFAULT stays`),
    );
    return message;
  }

  if (scheme === "uefi")
    test("the one-time boot over ssh is systemd-boot's LoaderEntryOneShot in the firmware's NVRAM: set as systemd-boot reads it, replaced and cleared through efivarfs' immutable flag", async () => {
      await keepingSerialLog(async () => {
        const label = await defaultSlot();
        const variable = "/sys/firmware/efi/efivars/LoaderEntryOneShot-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";
        const once = (...verb: string[]) => ramrootOnStack("syslinux", ...verb, "--stack", "trial", "--cwd", env.dir);
        expect(await once("once", label)).toContain(`"bootOnce": "${label}"`);
        // efivarfs' file: the attributes (non-volatile, boot and runtime access), then the entry id
        // as systemd-boot matches it (the file name, ".conf" kept), UTF-16LE, NUL-terminated.
        const dump = await onMachine(`od -An -v -tx1 ${variable}`);
        const bytes = Buffer.from(
          dump
            .trim()
            .split(/\s+/)
            .map((h) => parseInt(h, 16)),
        );
        expect(bytes).toEqual(Buffer.concat([Buffer.from([7, 0, 0, 0]), Buffer.from(`${label}.conf\0`, "utf16le")]));
        // The kernel keeps it immutable: a plain rm cannot remove it.
        expect(await onMachine(`rm -f ${variable} 2>&1; test -e ${variable} && echo kept`)).toMatch(
          /not permitted[\s\S]*kept$/,
        );
        // Set again over a set one, then cleared: both go through chattr -i.
        expect(await once("once", label)).toContain(`"bootOnce": "${label}"`);
        expect(await once("clear-once")).not.toContain('bootOnce": "');
        expect(await onMachine(`test -e ${variable} && echo set || echo none`)).toBe("none");
      });
    });

  trialCase(
    "good",
    "a good image: written to the idle slot over ssh, booted once, healthy, promoted; after a reboot it still runs, same host key; status tells the truth",
    async () => {
      await keepingSerialLog(async () => {
        const before = await defaultSlot();
        const other = before === "a" ? "b" : "a";
        release(`good ${Date.now()}`);
        await configure(imageConfig());
        const up = await env.stack.up();
        expect(up.summary.result).toBe("succeeded");
        expect(up.stdout).toMatch(/trial: image [0-9a-f]{12} answered healthy; promoting/);
        const deployed = up.outputs.imageId!.value as string;
        expect(up.outputs.activeSlot!.value).toBe(other);
        await nextBoot(); // the trial boot

        // Running the trial image, healthy, DEFAULT promoted; the trial entry is gone.
        expect(await runningSlot()).toBe(other);
        const health = await onMachine("cat /run/ramroot/health");
        expect(health).toMatch(new RegExp(`^image ${deployed}\ntrial yes\nstatus healthy\n`));
        expect(health).toMatch(/^check sshd ok$/m);
        expect(await defaultSlot()).toBe(other);
        expect(await bootConfig()).not.toMatch(/ramroot-trial|ramroot\.trial/);

        // `ramroot status` reads the boot partition over ssh: DEFAULT the new slot, holding the image, by a trial.
        const status = await ramrootOnStack("status", "--stack", "trial", "--cwd", env.dir);
        expect(status).toMatch(new RegExp(`^DEFAULT  ${other} -> slot ${other}$`, "m"));
        expect(status).toMatch(new RegExp(`^slot ${other}   image ${deployed.slice(0, 12)} .*\\[DEFAULT\\]$`, "m"));
        expect(status).toMatch(
          new RegExp(`DEFAULT ${other} \\(slot ${other}, image ${deployed.slice(0, 12)}\\)  trial`),
        );
        expect(status).not.toMatch(/^ONCE/m);
        // It also asks the machine: the slot and image it runs, and its guard's report. A trial that
        // promoted leaves no failed-trial report behind.
        expect(status).toMatch(
          new RegExp(
            `^machine  runs slot ${other}, image ${deployed.slice(0, 12)}, up \\d+ s; health healthy \\(.*sshd ok`,
            "m",
          ),
        );
        expect(status).not.toMatch(/^TRIAL/m);

        // A further reboot (not a trial): DEFAULT, the same image, the same host key (strict checking).
        await rebootMachine(sshArgs);
        const console = await nextBoot();
        expect(await runningSlot()).toBe(other);
        expect((await onMachine("cat /run/ramroot/image-id")).trim()).toBe(deployed);
        expect(await onMachine("test -e /run/ramroot/trial && echo trial || echo no-trial")).toBe("no-trial");
        const keysNow = consoleHostKeys(console).slice(-2);
        expect(keysNow).toEqual(hostKeys);
        await waitHealthy(deployed);
      });
    },
  );

  trialCase(
    "panic",
    "an image that panics: the machine comes back on the old slot by itself, `up` fails naming the trial, DEFAULT unchanged",
    async () => {
      await keepingSerialLog(async () => {
        const before = await defaultSlot();
        const running = (await onMachine("cat /run/ramroot/image-id")).trim();
        const other = before === "a" ? "b" : "a";
        // Its /sbin/init exits at once: the kernel panics, and panic=10 reboots it.
        const init = path.join(overlay, "sbin", "init");
        fs.mkdirSync(path.dirname(init), { recursive: true });
        fs.writeFileSync(init, "#!/bin/sh\necho 'broken init: exiting'\nexit 1\n", { mode: 0o755 });
        try {
          release(`panics ${Date.now()}`);
          await configure(imageConfig());
          const message = await failingUp("panic");
          expect(message).toMatch(new RegExp(`trial of ${other} \\(slot ${other}, image [0-9a-f]{12}\\) failed`));
          expect(message).toMatch(/never answered: the machine came back with image/);
          expect(message).toContain(`the machine is back on slot ${before} (image ${running.slice(0, 12)})`);
          expect(message).toContain(`DEFAULT stays ${before}`);
        } finally {
          fs.rmSync(path.join(overlay, "sbin"), { recursive: true, force: true });
        }
        const console = await nextBoot();
        expect(console).toMatch(/broken init: exiting[\s\S]*Kernel panic[\s\S]*Attempted to kill init/);
        expect(await runningSlot()).toBe(before);
        expect((await onMachine("cat /run/ramroot/image-id")).trim()).toBe(running);
        expect(await defaultSlot()).toBe(before);
        expect(await bootConfig()).not.toMatch(/ramroot-trial/);
      });
    },
  );

  trialCase(
    "unhealthy",
    "an image whose health check fails (sshd disabled): its guard reboots it to the old slot within the configured time; `up` fails with the check's output; DEFAULT unchanged",
    async () => {
      await keepingSerialLog(async () => {
        const before = await defaultSlot();
        const running = (await onMachine("cat /run/ramroot/image-id")).trim();
        const other = before === "a" ? "b" : "a";
        release(`no sshd ${Date.now()}`);
        const base = imageConfig();
        await configure({
          ...base,
          services: { boot: ["hostname"] },
          health: { ...(base.health as object), timeoutSeconds: SHORT_HEALTH_TIMEOUT },
        });
        const message = await failingUp("unhealthy");
        expect(message).toMatch(new RegExp(`trial of ${other} \\(slot ${other}, image [0-9a-f]{12}\\) failed`));
        expect(message).toMatch(/booted but was not healthy \(unhealthy at (\d+) s after boot\)/);
        const at = Number(/unhealthy at (\d+) s after boot/.exec(message)![1]);
        // The guard decides at its first round past the deadline (a round: each check, at most 30 s, then 5 s).
        expect(at).toBeGreaterThanOrEqual(SHORT_HEALTH_TIMEOUT);
        expect(at).toBeLessThan(SHORT_HEALTH_TIMEOUT + 90);
        expect(message).toMatch(/check sshd failed \(exit 1\):\n\s+nothing listens on port 22/);
        expect(message).toContain(`the machine is back on slot ${before} (image ${running.slice(0, 12)})`);
        expect(message).toContain(`DEFAULT stays ${before}`);
        const console = await nextBoot();
        expect(console).toMatch(
          /ramroot-guard: trial of image [0-9a-f]+ not healthy within \d+ s of boot: rebooting to DEFAULT/,
        );
        expect(await runningSlot()).toBe(before);
        expect((await onMachine("cat /run/ramroot/image-id")).trim()).toBe(running);
        expect(await defaultSlot()).toBe(before);
        // `ramroot status`: the machine runs the old slot, healthy; the failed trial's report, left on
        // the boot partition by its guard, names the image and the check's output.
        const tried = new RegExp(`trial of ${other} \\(slot ${other}, image ([0-9a-f]{12})\\)`).exec(message)![1]!;
        await waitHealthy(running);
        const status = await ramrootOnStack("status", "--stack", "trial", "--cwd", env.dir);
        expect(status).toMatch(
          new RegExp(`^machine  runs slot ${before}, image ${running.slice(0, 12)}, up \\d+ s; health healthy`, "m"),
        );
        expect(status).toMatch(
          new RegExp(
            `^TRIAL    image ${tried} failed its last trial: unhealthy at \\d+ s after boot \\(sshd failed \\(exit 1\\)`,
            "m",
          ),
        );
        expect(status).toMatch(/^ {9}check sshd failed \(exit 1\):\n {13}nothing listens on port 22/m);
      });
    },
  );

  trialCase(
    "hung",
    "a trial image that stops feeding its watchdog (as a hung kernel does): QEMU's i6300esb resets it, it comes back on the old slot, `up` fails, DEFAULT unchanged",
    async () => {
      await keepingSerialLog(async () => {
        const before = await defaultSlot();
        const running = (await onMachine("cat /run/ramroot/image-id")).trim();
        const other = before === "a" ? "b" : "a";
        const consoleBefore = fs.readFileSync(serialLog, "utf8").length;
        release(`hangs ${Date.now()}`);
        // The check freezes the guard's watchdog daemon; the guard's own deadline is far away, so
        // only the watchdog (armed for 60 s, QEMU resets at its second stage) can end the trial.
        await configure(
          imageConfig({
            health: {
              checks: [
                {
                  name: "hang",
                  command: "kill -STOP $(pidof watchdog); echo 'the watchdog daemon is frozen'; exit 1",
                },
              ],
              timeoutSeconds: 1800,
            },
          }),
        );
        const message = await failingUp("hung");
        expect(message).toMatch(new RegExp(`trial of ${other} \\(slot ${other}, image [0-9a-f]{12}\\) failed`));
        expect(message).toMatch(
          /booted but was not healthy \(checking at \d+ s after boot\), then stopped answering and came back on DEFAULT \(a hang its watchdog reset\):\s+check hang failed \(exit 1\):\s+the watchdog daemon is frozen/,
        );
        expect(message).toContain(`the machine is back on slot ${before} (image ${running.slice(0, 12)})`);
        expect(message).toContain(`DEFAULT stays ${before}`);
        const console = (await nextBoot()).slice(consoleBefore);
        // The trial boot armed the watchdog, and nothing but the watchdog rebooted it.
        const trialBoot = console.slice(
          console.indexOf("Kernel command line:"),
          console.lastIndexOf("Kernel command line:"),
        );
        expect(trialBoot).toMatch(/ramroot\.trial=1/);
        expect(trialBoot).toMatch(/ramroot-guard: watchdog armed \(60 s\)/);
        expect(trialBoot).not.toMatch(/Requesting system reboot|rebooting to DEFAULT|Kernel panic/);
        expect(await runningSlot()).toBe(before);
        expect((await onMachine("cat /run/ramroot/image-id")).trim()).toBe(running);
        expect(await defaultSlot()).toBe(before);
      });
    },
  );
}
