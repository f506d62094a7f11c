import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Command } from "commander";
import { registerBootCommands } from "../../../provider/cli/boot-command";

jest.setTimeout(300_000);

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-bootcli-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs `ramroot <args>` with only the boot verbs registered, returning what it printed. */
async function ramroot(...args: string[]): Promise<unknown> {
  const program = new Command("ramroot").exitOverride();
  registerBootCommands(program);
  let out = "";
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => {
    out += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(["node", "ramroot", ...args]);
  } finally {
    process.stdout.write = write;
  }
  return JSON.parse(out);
}

test("disk create, slot write, syslinux write/once/clear-once/set-default, through the CLI", async () => {
  const image = path.join(dir, "cli.img");
  const created = (await ramroot(
    "disk",
    "create",
    "--size",
    "16",
    "--layout",
    "mbr",
    "--slots",
    "a,b",
    "--volume-id",
    "0badcafe",
    image,
  )) as { fatOffset: number };
  expect(created.fatOffset).toBe(1048576);
  const kernel = path.join(dir, "k");
  fs.writeFileSync(kernel, "kernel bytes");
  const slot = (await ramroot(
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
    "img1",
  )) as { consistent: boolean };
  expect(slot.consistent).toBe(true);
  // DEFAULT a while slot a is empty would leave the disk unbootable: refused, nothing written.
  await expect(ramroot("syslinux", "write", "--image", image, "--default", "a")).rejects.toThrow(
    /refusing to make "a" bootable: entry a: \/a\/vmlinuz does not exist/,
  );
  expect(await ramroot("syslinux", "show", "--image", image)).toEqual({ scheme: "syslinux" });
  await ramroot(
    "slot",
    "write",
    "--image",
    image,
    "--slot",
    "a",
    "--kernel",
    kernel,
    "--initramfs",
    kernel,
    "--image-id",
    "img0",
  );
  expect(await ramroot("syslinux", "write", "--image", image, "--default", "a")).toMatchObject({
    path: "syslinux.cfg",
  });
  expect(await ramroot("syslinux", "once", "--image", image, "b")).toEqual({ bootOnce: "b" });
  expect(await ramroot("syslinux", "show", "--image", image)).toMatchObject({
    path: "syslinux.cfg",
    bootOnce: "b",
    config: { defaultLabel: "a" },
  });
  expect(await ramroot("syslinux", "clear-once", "--image", image)).toEqual({});
  await ramroot("syslinux", "set-default", "--image", image, "b");
  expect(await ramroot("syslinux", "show", "--image", image)).toMatchObject({ config: { defaultLabel: "b" } });
  expect(await ramroot("slot", "show", "--image", image, "--slot", "b")).toMatchObject({
    slot: "b",
    consistent: true,
    manifest: { imageId: "img1" },
  });
  await expect(ramroot("slot", "show", "--dir", dir, "--image", image, "--slot", "b")).rejects.toThrow(
    /give one of --dir <path>, --image <file> or --ssh .*, or none for the stack.s/,
  );
  await expect(ramroot("disk", "create", "--size", "16", "--layout", "gpt", image)).rejects.toThrow(
    /layout: got "gpt"; expected "mbr" or "superfloppy"/,
  );
  // An existing disk holds deployed slots: replaced only when asked.
  const before = fs.readFileSync(image);
  await expect(ramroot("disk", "create", "--size", "16", image)).rejects.toThrow(
    /exists \(it may hold deployed slots and their history\).*--force/,
  );
  expect(fs.readFileSync(image).equals(before)).toBe(true);
  await ramroot("disk", "create", "--size", "16", "--force", image);
  expect(await ramroot("slot", "show", "--image", image, "--slot", "b")).toEqual({ slot: "b", empty: true });
});

test("slot write --layer-sizes on an EFI system partition is refused, naming the flag; nothing is written", async () => {
  const esp = path.join(dir, "esp");
  fs.mkdirSync(path.join(esp, "loader"), { recursive: true });
  fs.writeFileSync(path.join(esp, "loader", "loader.conf"), "timeout 0\n");
  const kernel = path.join(dir, "esp-kernel");
  const initramfs = path.join(dir, "esp-initramfs");
  fs.writeFileSync(kernel, "kernel bytes");
  fs.writeFileSync(initramfs, Buffer.concat([Buffer.alloc(100, 1), Buffer.alloc(50, 2)]));
  const before = fs.readdirSync(esp).sort();
  const write = (...more: string[]) =>
    ramroot("slot", "write", "--dir", esp, "--slot", "a", "--kernel", kernel, "--initramfs", initramfs, ...more);
  await expect(write("--layer-sizes", "100,50")).rejects.toThrow(
    /^--layer-sizes: got 100,50, but .* boots with scheme uefi, whose slots keep their initramfs whole/,
  );
  expect(fs.readdirSync(esp).sort()).toEqual(before);
  // Without the flag the slot is written whole.
  expect(((await write()) as { consistent: boolean }).consistent).toBe(true);
  expect(fs.readdirSync(path.join(esp, "a")).sort()).toEqual(["initramfs", "manifest.json", "vmlinuz"]);
});
