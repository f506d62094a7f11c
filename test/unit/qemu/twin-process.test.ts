import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { spawn } from "node:child_process";
import { freePort, processAlive, startTwin, stopTwin, type TwinOptions } from "../../../provider/qemu/twin";

// A killed QEMU stays a zombie until its parent reaps it; `ramroot vm` must not take it for a
// running twin (it refused to start the machine again after a power cut).
test("a zombie is not a running process; a live one is", async () => {
  // sh starts a child that exits soon, then becomes `sleep`, which never reaps it: a zombie.
  const parent = spawn("sh", ["-c", "sleep 0.2 & echo $!; exec sleep 30"], { stdio: ["ignore", "pipe", "ignore"] });
  try {
    const zombie = Number(
      await new Promise<string>((resolve) => parent.stdout.once("data", (b: Buffer) => resolve(b.toString()))),
    );
    for (let i = 0; i < 100 && !/\) Z/.test(fs.readFileSync(`/proc/${zombie}/stat`, "utf8")); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(fs.readFileSync(`/proc/${zombie}/stat`, "utf8")).toMatch(/\) Z /);
    expect(processAlive(zombie)).toBe(false);
    expect(processAlive(parent.pid!)).toBe(true);
    expect(processAlive(process.pid)).toBe(true);
    // A pid file that names the zombie: stopTwin finds no twin to stop and removes the file.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-twin-pid-"));
    const pidFile = path.join(dir, "qemu.pid");
    fs.writeFileSync(pidFile, `${zombie}\n`);
    expect(await stopTwin(pidFile)).toBe(false);
    expect(fs.existsSync(pidFile)).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  } finally {
    parent.kill("SIGKILL");
  }
});

test("no process, pid 0 and a negative pid are not alive", () => {
  expect(processAlive(0)).toBe(false);
  expect(processAlive(-1)).toBe(false);
  expect(processAlive(2 ** 22 + 1)).toBe(false);
});

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
