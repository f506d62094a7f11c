import { bootedSlotOf } from "../../../provider/boot/booted-slot";

// Command lines as the twins' kernels printed them ("Kernel command line:" on the serial console).
const IMAGE = "ramroot.image=b7b15b298de48ce0f3f4749eefcd9f8eb263ef7c5c201f955d9b62e31b00c188";

test("syslinux's BOOT_IMAGE names the slot of the entry's kernel", () => {
  expect(bootedSlotOf(`BOOT_IMAGE=/b/vmlinuz rdinit=/sbin/init console=ttyS0 ${IMAGE} panic=10`)).toBe("b");
  expect(bootedSlotOf(`BOOT_IMAGE=a/vmlinuz rdinit=/sbin/init`)).toBe("a");
});

test("systemd-boot's initrd= (the firmware's backslashes) names the slot of the entry's initramfs", () => {
  expect(bootedSlotOf(`initrd=\\b\\initramfs rdinit=/sbin/init console=ttyS0 ${IMAGE} panic=10 ramroot.trial=1`)).toBe(
    "b",
  );
  expect(bootedSlotOf(`initrd=\\A\\amd-ucode.img initrd=\\A\\initramfs rdinit=/sbin/init`)).toBe("a");
});

test("a layered entry's ramroot.slot= names the slot: its initrd= paths name the shared store", () => {
  const layers = "initrd=\\layers\\3f9c01ab.cd2 initrd=\\layers\\0a1b2c3d.4e5";
  expect(bootedSlotOf(`${layers} rdinit=/sbin/init ${IMAGE} ramroot.slot=b ramroot.trial=1`)).toBe("b");
  expect(bootedSlotOf(`initrd=\\a\\intel-ucode.img ${layers} rdinit=/sbin/init ramroot.slot=a`)).toBe("a");
  // it wins over syslinux's mark too (a layered syslinux entry carries both; they agree)
  expect(bootedSlotOf(`BOOT_IMAGE=/a/vmlinuz rdinit=/sbin/init ramroot.slot=a`)).toBe("a");
  expect(bootedSlotOf(`rdinit=/sbin/init xramroot.slot=a`)).toBeUndefined();
});

test("a command line no boot loader marked names no slot", () => {
  expect(bootedSlotOf(`rdinit=/sbin/init console=ttyS0 ${IMAGE}`)).toBeUndefined();
  expect(bootedSlotOf("BOOT_IMAGE=vmlinuz initrd=initramfs")).toBeUndefined();
  expect(bootedSlotOf("xinitrd=\\a\\initramfs")).toBeUndefined();
});
