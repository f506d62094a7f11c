import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn } from "node:child_process";
import { processAlive, stopTwin } from "../../../provider/qemu/twin";

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
