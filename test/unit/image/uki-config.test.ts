import { parseImageConfig } from "../../../provider/image/plan";
import { worldOf } from "../../../provider/image/image-config";

test("uki: true brings systemd-efistub (the stub's package) into the world, once; false leaves the world as it was", () => {
  expect(worldOf(parseImageConfig({ packages: ["busybox"], uki: true }))).toEqual([
    "busybox",
    "linux-lts",
    "systemd-efistub",
  ]);
  expect(worldOf(parseImageConfig({ packages: ["busybox", "systemd-efistub>=252"], uki: true }))).toEqual([
    "busybox",
    "systemd-efistub>=252",
    "linux-lts",
  ]);
  expect(worldOf(parseImageConfig({ packages: ["busybox"] }))).toEqual(["busybox", "linux-lts"]);
});

test.each([
  [{ uki: true, kernel: "none" }, 'uki: got true; expected a kernel (kernel: "lts" or "virt") with uki'],
  [{ uki: "yes" }, 'uki: got "yes"; expected true or false'],
  [{ arch: "armv7" }, 'arch: got "armv7"; expected one of x86_64, aarch64'],
])("%j is refused: %s", (bad, message) => {
  expect(() => parseImageConfig({ packages: ["busybox"], ...bad })).toThrow(message);
});
