import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { freePort, processAlive, startTwin, stopTwin, type TwinOptions } from "../../provider/qemu/twin";

// The aarch64 twin runs QEMU with -no-reboot under a shell loop that power-cycles it when the guest
// resets (docs/machine-twin.md, "Resets"); these start the real QEMU and AAVMF for a few seconds,
// no guest boots. The loop's resets themselves are seen in twin-trial-aarch64.test.ts.
describe("an aarch64 twin, whose resets are power cycles: QEMU under the twin's shell loop", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-twin-loop-"));
    fs.writeFileSync(path.join(dir, "boot.img"), Buffer.alloc(1024 * 1024));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const twin = (sshPort: number): TwinOptions => ({
    arch: "aarch64",
    uefi: { varsFile: path.join(dir, "vars.fd") },
    disk: path.join(dir, "boot.img"),
    data: path.join(dir, "data.img"),
    dataSizeMiB: 16,
    sshPort,
    serialLog: path.join(dir, "serial.log"),
  });

  test("the pid file names the loop; stopping it stops QEMU too (no QEMU is left running)", async () => {
    const pidFile = path.join(dir, "qemu.pid");
    const { pid } = await startTwin(twin(await freePort()), pidFile);
    expect(Number(fs.readFileSync(pidFile, "utf8"))).toBe(pid);
    const children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).map(Number);
    expect(children).toHaveLength(1);
    const qemu = children[0]!;
    expect(fs.readFileSync(`/proc/${qemu}/cmdline`, "utf8").split("\0")).toEqual(
      expect.arrayContaining(["qemu-system-aarch64", "-no-reboot"]),
    );
    expect(await stopTwin(pidFile)).toBe(true);
    expect(processAlive(pid)).toBe(false);
    for (let i = 0; i < 100 && processAlive(qemu); i++) await new Promise((r) => setTimeout(r, 50));
    expect(processAlive(qemu)).toBe(false);
    expect(fs.existsSync(pidFile)).toBe(false);
  });

  test("a QEMU that refuses to start (its ssh port is taken) is reported in its own words; no pid file is left", async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    try {
      const port = (taken.address() as net.AddressInfo).port;
      const pidFile = path.join(dir, "qemu.pid");
      await expect(startTwin(twin(port), pidFile)).rejects.toThrow(/qemu failed \(exit 1\): .*host forwarding/s);
      expect(fs.existsSync(pidFile)).toBe(false);
    } finally {
      taken.close();
    }
  });
});
