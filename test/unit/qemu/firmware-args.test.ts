/**
 * How QEMU is started for each architecture and firmware (the arch table, provider/arch.ts):
 * the machine, CPU and console; UEFI as two flash devices, the firmware's code read-only and a
 * variable store of the machine's own (Debian's OVMF and AAVMF files, which setup installs).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { qemuArgs } from "../../../provider/qemu/boot";
import { copyVarsStore } from "../../../provider/qemu/firmware";
import { twinArgs } from "../../../provider/qemu/twin";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-fw-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const after = (args: string[], flag: string) => args.filter((_, i) => args[i - 1] === flag);

test("a direct kernel boot: x86_64 on the PC machine with ttyS0, aarch64 on virt with -cpu neoverse-n1 and ttyAMA0", () => {
  const media = {
    kind: "kernel" as const,
    kernel: "vmlinuz",
    initrd: ["microcode", "initramfs"],
    append: "rdinit=/sbin/init",
  };
  const x86 = qemuArgs({ media });
  expect(after(x86, "-machine")).toEqual(["pc"]);
  expect(after(x86, "-cpu")).toEqual([]);
  expect(after(x86, "-initrd")).toEqual(["microcode,initramfs"]);
  expect(after(x86, "-append")).toEqual(["console=ttyS0 no_timer_check panic=-1 rdinit=/sbin/init"]);
  const arm = qemuArgs({ media, arch: "aarch64" });
  expect(after(arm, "-machine")).toEqual(["virt"]);
  expect(after(arm, "-cpu")).toEqual(["neoverse-n1"]);
  expect(after(arm, "-append")).toEqual(["console=ttyAMA0 panic=-1 rdinit=/sbin/init"]);
  expect(after(arm, "-drive")).toEqual([]);
});

test("UEFI: the firmware's code read-only and the run's own variable store; aarch64 boots a disk only so", () => {
  const disk = { kind: "disk" as const, image: "esp.img" };
  const x86 = qemuArgs({ media: disk, uefi: true, varsFile: "/run/a/vars.fd" });
  expect(after(x86, "-drive")).toEqual([
    "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
    "if=pflash,format=raw,unit=1,file=/run/a/vars.fd",
    "file=esp.img,format=raw,if=none,id=disk",
  ]);
  expect(after(x86, "-device")).toEqual(["virtio-blk-pci,drive=disk,bootindex=0"]);
  const arm = qemuArgs({ media: disk, arch: "aarch64", uefi: true, varsFile: "v.fd" });
  expect(after(arm, "-drive").slice(0, 2)).toEqual([
    "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd",
    "if=pflash,format=raw,unit=1,file=v.fd",
  ]);
  expect(() => qemuArgs({ media: disk, arch: "aarch64" })).toThrow(
    /aarch64 machine boots a disk through UEFI firmware only/,
  );
  expect(() => qemuArgs({ media: disk, uefi: true })).toThrow(/needs its own variable store/);
  // the BIOS boot is as it was: IDE, syslinux from the disk
  expect(after(qemuArgs({ media: disk }), "-drive")).toEqual(["file=esp.img,format=raw,if=ide"]);
});

test("each machine's variable store is its own copy of the firmware's; an existing one is never overwritten", () => {
  for (const [arch, pristine] of [
    ["x86_64", "/usr/share/OVMF/OVMF_VARS_4M.fd"],
    ["aarch64", "/usr/share/AAVMF/AAVMF_VARS.fd"],
  ] as const) {
    const vars = path.join(dir, `${arch}.fd`);
    copyVarsStore(arch, vars);
    expect(fs.readFileSync(vars).equals(fs.readFileSync(pristine))).toBe(true);
    fs.writeFileSync(vars, "what the firmware wrote");
    expect(() => copyVarsStore(arch, vars)).toThrow(/EEXIST/);
    expect(fs.readFileSync(vars, "utf8")).toBe("what the firmware wrote");
  }
});

test("a UEFI twin: its machine, CPU and firmware from the arch table, its NVRAM file", () => {
  const args = twinArgs({
    disk: "boot.img",
    data: "data.img",
    sshPort: 2222,
    serialLog: "serial.log",
    arch: "aarch64",
    uefi: { varsFile: "twin-vars.fd" },
  });
  expect(after(args, "-machine")).toEqual(["virt"]);
  expect(after(args, "-cpu")).toEqual(["neoverse-n1"]);
  // A reset ends QEMU; the twin's loop power-cycles it (docs/machine-twin.md, "Resets").
  expect(args).toContain("-no-reboot");
  expect(twinArgs({ disk: "boot.img", data: "data.img", sshPort: 2222, serialLog: "serial.log" })).not.toContain(
    "-no-reboot",
  );
  expect(after(args, "-drive").slice(0, 2)).toEqual([
    "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd",
    "if=pflash,format=raw,unit=1,file=twin-vars.fd",
  ]);
});
