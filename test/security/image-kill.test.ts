import { execa, type ResultPromise } from "execa";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createDisk } from "../../provider/boot/disk-create";
import { readLease } from "../../provider/boot/lease";
import { readSlot } from "../../provider/boot/slot";
import { openTarget } from "../../provider/boot/target";
import { compileCli, type CompiledCli } from "../fixtures/ramroot-cli";

// A layered slot write to a disk image killed mid-copy of a layer: the scratch directories go on
// every exit path (SIGTERM: the exit path; SIGKILL: the next open sweeps them), the old slot
// stays as it was, the killed writer's lease is taken over by the next writer, and the cut
// layer's leftovers are collected by it.
jest.setTimeout(600_000);

let cli: CompiledCli;
let work: string;
beforeAll(async () => {
  cli = await compileCli();
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-imgkill-"));
});
afterAll(() => {
  cli?.dispose();
  fs.rmSync(work, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const scratchOf = (pid: number, kind = "image") =>
  fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(`ramroot-${kind}-${pid}-`));

/** An mcopy on `image` (of a file under `source`, when given) is running: /proc read directly, so the poll is quick. */
async function mcopyRunning(image: string, source?: string): Promise<boolean> {
  for (const pid of fs.readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    let args: string[];
    try {
      args = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    if (
      path.basename(args[0] ?? "") === "mcopy" &&
      args.some((a) => a.startsWith(image)) &&
      (source === undefined || args.some((a) => a.startsWith(source)))
    )
      return true;
  }
  return false;
}

test.each(["SIGKILL", "SIGTERM"] as const)(
  "killed by %s mid-copy: no scratch left, the slot as it was, the lease taken over",
  async (signal) => {
    const image = path.join(work, `disk-${signal}.img`);
    await createDisk({ output: image, sizeMiB: 300, layout: "mbr", slots: ["a", "b"] });
    const kernel = path.join(work, "k");
    fs.writeFileSync(kernel, "old kernel");
    const first = await cli.run([
      "slot",
      "write",
      "--image",
      image,
      "--slot",
      "b",
      "--kernel",
      kernel,
      "--initramfs",
      kernel,
      "--image-id",
      "old",
    ]);
    expect(first.code).toBe(0);
    const big = path.join(work, "big");
    const fd = fs.openSync(big, "w");
    for (let i = 0; i < 200; i++) fs.writeSync(fd, Buffer.alloc(1 << 20, i));
    fs.closeSync(fd);

    const deploy: ResultPromise = execa(
      process.execPath,
      [
        "-e",
        cli.script,
        "--",
        "slot",
        "write",
        "--image",
        image,
        "--slot",
        "b",
        "--kernel",
        kernel,
        "--initramfs",
        big,
        "--layer-sizes",
        `${100 << 20},${100 << 20}`,
        "--image-id",
        "new",
      ],
      { reject: false },
    );
    const pid = deploy.pid!;
    // The first layer arriving, from its slice in the layer scratch directory.
    while (!(await mcopyRunning(image, path.join(os.tmpdir(), `ramroot-layers-${pid}-`)))) {
      if (deploy.exitCode !== null && deploy.exitCode !== undefined)
        throw new Error(`ended before the copy: ${(await deploy).stderr}`);
      await sleep(5);
    }
    expect(scratchOf(pid)).toHaveLength(1);
    expect(scratchOf(pid, "layers")).toHaveLength(1);
    process.kill(pid, signal);
    expect((await deploy).exitCode === 0).toBe(false);
    if (signal === "SIGTERM") expect([...scratchOf(pid), ...scratchOf(pid, "layers")]).toEqual([]);
    // A flock child may still finish the mcopy it started; wait for the image to be free.
    while (await mcopyRunning(image)) await sleep(100);

    const target = await openTarget({ kind: "image", path: image });
    try {
      expect(scratchOf(pid)).toEqual([]); // swept by this open when the process was killed outright
      const slot = await readSlot(target, "b");
      expect(slot?.manifest?.imageId).toBe("old");
      expect(slot?.consistent).toBe(true);
      expect((await readLease(target))?.pid).toBe(pid); // left behind by the killed writer
    } finally {
      await target.close();
    }
    // The next writer takes the dead writer's lease over and clears the leftovers of the cut copy.
    const again = await cli.run([
      "slot",
      "write",
      "--image",
      image,
      "--slot",
      "b",
      "--kernel",
      kernel,
      "--initramfs",
      kernel,
      "--layer-sizes",
      String(fs.statSync(kernel).size),
      "--image-id",
      "next",
    ]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(
      new RegExp(`taking over the lease of "ramroot slot write --slot b" .*: its process ${pid} on .* is gone`),
    );
    const after = await openTarget({ kind: "image", path: image });
    try {
      // Layered: no b/initramfs; the store holds the one layer slot b names (the cut copy's leftovers collected).
      expect((await after.list("b")).sort()).toEqual(["manifest.json", "vmlinuz"]);
      const b = await readSlot(after, "b");
      expect(b?.consistent).toBe(true);
      expect((await after.list("layers")).map((n) => `layers/${n}`)).toEqual(b?.manifest?.layers?.map((l) => l.path));
      expect(scratchOf(pid, "layers")).toEqual([]);
      expect(await readLease(after)).toBeUndefined();
    } finally {
      await after.close();
    }
  },
);
