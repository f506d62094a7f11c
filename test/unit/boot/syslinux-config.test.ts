import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  findSyslinuxConfigPath,
  normalizeSyslinuxConfig,
  parseSyslinuxConfig,
  readSyslinuxConfig,
  renderSyslinuxConfig,
  writeSyslinuxConfig,
  type SyslinuxConfigSpec,
} from "../../../provider/boot/schemes/syslinux/config";
import { openTarget } from "../../../provider/boot/target";

const spec: SyslinuxConfigSpec = {
  defaultLabel: "a",
  timeout: 30,
  entries: [
    {
      label: "a",
      menuLabel: "slot a: image 3f9c",
      kernel: "/a/vmlinuz",
      initrd: ["/a/microcode", "/a/initramfs"],
      append: "rdinit=/sbin/init console=ttyS0 panic=5",
    },
    { label: "b", kernel: "/b/vmlinuz", initrd: ["/b/initramfs"], append: "rdinit=/sbin/init panic=5" },
  ],
};

test("renders the documented keywords, and parse(render(x)) is x with defaults filled in", () => {
  const text = renderSyslinuxConfig(spec);
  expect(text).toContain("SERIAL 0 115200\nPROMPT 0\nTIMEOUT 30\nDEFAULT a\n");
  expect(text).toContain(
    "LABEL a\n  MENU LABEL slot a: image 3f9c\n  LINUX /a/vmlinuz\n  INITRD /a/microcode,/a/initramfs\n  APPEND rdinit=/sbin/init console=ttyS0 panic=5\n",
  );
  expect(renderSyslinuxConfig(spec)).toBe(text);
  expect(parseSyslinuxConfig(text)).toEqual(normalizeSyslinuxConfig(spec));
  const noSerial = { ...spec, serial: false as const, prompt: true };
  expect(renderSyslinuxConfig(noSerial)).not.toContain("SERIAL");
  expect(parseSyslinuxConfig(renderSyslinuxConfig(noSerial))).toEqual(normalizeSyslinuxConfig(noSerial));
});

test("parses hand-written configs: any case, comments, KERNEL, initrd= in APPEND, MENU DEFAULT", () => {
  const parsed = parseSyslinuxConfig(
    [
      "# my box",
      "ui menu.c32",
      "serial 1 38400",
      "prompt 1",
      "timeout 50",
      "Label old",
      "\tkernel /boot/vmlinuz-lts",
      "\tappend root=/dev/sda2 initrd=/boot/initramfs-lts,/boot/ucode.img quiet",
      "label new",
      "  menu default",
      "  Linux new/vmlinuz",
      "  InitRD new/initramfs",
      "",
    ].join("\r\n"),
  );
  expect(parsed).toEqual({
    defaultLabel: "new",
    timeout: 50,
    prompt: true,
    serial: { port: 1, baud: 38400 },
    entries: [
      {
        label: "old",
        kernel: "/boot/vmlinuz-lts",
        initrd: ["/boot/initramfs-lts", "/boot/ucode.img"],
        append: "root=/dev/sda2 quiet",
      },
      { label: "new", kernel: "new/vmlinuz", initrd: ["new/initramfs"], append: "" },
    ],
  });
});

test("bad specs are refused with the field, the value and what is accepted", () => {
  expect(() => renderSyslinuxConfig({ ...spec, defaultLabel: "c" })).toThrow(
    /defaultLabel: got "c"; expected one of the entry labels: a, b/,
  );
  expect(() => renderSyslinuxConfig({ ...spec, timeout: -1 })).toThrow(
    /timeout: got -1; expected 0 or more deciseconds/,
  );
  const badEntry = { ...spec, entries: [{ ...spec.entries[0]!, label: "has space" }] };
  expect(() => renderSyslinuxConfig(badEntry)).toThrow(/entries\[0\]\.label: got "has space"; expected a label/);
  const commaInitrd = { ...spec, entries: [{ ...spec.entries[0]!, initrd: ["/a/x,y"] }] };
  expect(() => renderSyslinuxConfig(commaInitrd)).toThrow(/entries\[0\]\.initrd\[0\]: got "\/a\/x,y"/);
  const dupe = { ...spec, entries: [spec.entries[0]!, { ...spec.entries[1]!, label: "A" }] };
  expect(() => renderSyslinuxConfig(dupe)).toThrow(/entries\[1\]\.label: got "A"; expected labels to be unique/);
});

describe("on a local target", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-cfg-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("finds the config where syslinux 6.04 looks: beside ldlinux.sys first, extlinux.conf before syslinux.cfg", async () => {
    const target = await openTarget({ kind: "local", path: dir });
    expect(await findSyslinuxConfigPath(target)).toBe("syslinux.cfg");
    fs.mkdirSync(path.join(dir, "boot/syslinux"), { recursive: true });
    fs.writeFileSync(path.join(dir, "boot/syslinux/ldlinux.sys"), "x");
    expect(await findSyslinuxConfigPath(target)).toBe("boot/syslinux/syslinux.cfg");
    fs.writeFileSync(path.join(dir, "syslinux.cfg"), "DEFAULT x\nLABEL x\n");
    expect(await findSyslinuxConfigPath(target)).toBe("syslinux.cfg");
    fs.writeFileSync(path.join(dir, "boot/syslinux/syslinux.cfg"), "DEFAULT y\nLABEL y\n");
    expect(await findSyslinuxConfigPath(target)).toBe("boot/syslinux/syslinux.cfg");
    fs.writeFileSync(path.join(dir, "boot/syslinux/extlinux.conf"), "DEFAULT z\nLABEL z\n");
    expect(await findSyslinuxConfigPath(target)).toBe("boot/syslinux/extlinux.conf");
    expect((await readSyslinuxConfig(target))?.spec.defaultLabel).toBe("z");
  });

  test("writes atomically and reads back what it wrote", async () => {
    const target = await openTarget({ kind: "local", path: dir });
    expect(await readSyslinuxConfig(target)).toBeUndefined();
    const written = await writeSyslinuxConfig(target, spec);
    expect(written.path).toBe("syslinux.cfg");
    expect(await target.sha256("syslinux.cfg")).toBe(written.sha256);
    const read = await readSyslinuxConfig(target);
    expect(read?.spec).toEqual(normalizeSyslinuxConfig(spec));
    await writeSyslinuxConfig(target, { ...spec, defaultLabel: "b" });
    expect((await readSyslinuxConfig(target))?.spec.defaultLabel).toBe("b");
    expect(fs.readdirSync(dir)).toEqual(["syslinux.cfg"]);
  });
});
