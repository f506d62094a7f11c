import { overlayLayer, type OverlayLayerInput, type PackageIndex } from "../../../provider/image/overlay-layer";
import type { OverlayEntry } from "../../../provider/image/overlay";
import { RUNLEVELS, type Runlevel } from "../../../provider/image/image-config";

// What the overlay layer holds, and the cases it must refuse to layer (the kernel facts behind
// them are checked in test/boot/initramfs-layers.test.ts).

const packages: PackageIndex = new Map([
  ["etc", { type: "dir", hardLinked: false }],
  ["etc/init.d", { type: "dir", hardLinked: false }],
  ["etc/init.d/sshd", { type: "file", hardLinked: false }],
  ["etc/motd", { type: "file", hardLinked: false }],
  ["usr", { type: "dir", hardLinked: false }],
  ["usr/lib", { type: "dir", hardLinked: false }],
  ["usr/lib/a", { type: "file", hardLinked: true }],
  ["usr/lib/b", { type: "file", hardLinked: true }],
  ["usr/share", { type: "dir", hardLinked: false }],
  ["usr/share/doc", { type: "dir", hardLinked: false }],
  ["usr/share/doc/x", { type: "file", hardLinked: false }],
  ["var", { type: "symlink", hardLinked: false }],
  ["lib", { type: "dir", hardLinked: false }],
  ["lib/firmware", { type: "dir", hardLinked: false }],
]);

const noServices = Object.fromEntries(RUNLEVELS.map((l) => [l, []])) as unknown as Record<
  Runlevel,
  { name: string; required: boolean }[]
>;
const file = (p: string, content = "x", mode = 0o644): OverlayEntry => ({
  path: p,
  type: "file",
  mode,
  source: Buffer.from(content),
  sha256: "0",
});
const input = (overlay: OverlayEntry[], extra: Partial<OverlayLayerInput> = {}): OverlayLayerInput => ({
  overlay,
  services: noServices,
  firmwareTrimmed: false,
  packages,
  ...extra,
});

test("overlay files, the hostname and service links, root-owned, with the parent directories the packages lack", () => {
  const layer = overlayLayer(
    input(
      [
        file("etc/motd", "hi"),
        file("opt/app/conf", "c", 0o600),
        { path: "etc/init.d/app", type: "symlink", mode: 0o777, linkTarget: "sshd", sha256: "0" },
      ],
      {
        hostname: "box",
        services: {
          ...noServices,
          default: [
            { name: "sshd", required: true },
            { name: "app", required: false },
          ],
          boot: [{ name: "missing", required: false }],
        },
      },
    ),
  );
  if ("fold" in layer) throw new Error(layer.fold);
  const byPath = Object.fromEntries(layer.entries.map((e) => [e.path, e]));
  expect(Object.keys(byPath).sort()).toEqual([
    "etc/hostname",
    "etc/init.d/app",
    "etc/motd",
    "etc/runlevels",
    "etc/runlevels/default",
    "etc/runlevels/default/app",
    "etc/runlevels/default/sshd",
    "opt",
    "opt/app",
    "opt/app/conf",
  ]);
  expect(byPath["etc/hostname"]!.source).toEqual(Buffer.from("box\n"));
  expect(byPath["opt/app/conf"]).toMatchObject({ type: "file", mode: 0o600, uid: 0, gid: 0 });
  expect(byPath["opt/app"]).toMatchObject({ type: "dir", mode: 0o755, uid: 0, gid: 0 });
  expect(byPath["etc/runlevels/default/sshd"]).toMatchObject({ type: "symlink", linkTarget: "/etc/init.d/sshd" });
  expect(layer.skippedServices).toEqual(["boot/missing"]);
});

test("a required service that neither the packages nor the overlay provide is refused, naming it", () => {
  expect(() =>
    overlayLayer(input([], { services: { ...noServices, default: [{ name: "nginx", required: true }] } })),
  ).toThrow('services.default: "nginx" has no /etc/init.d/nginx in the image');
});

test("a directory of the overlay over a package directory or symlink is layered (the kernel replaces the mode, and a symlink)", () => {
  const layer = overlayLayer(
    input([
      { path: "usr/share/doc", type: "dir", mode: 0o700 },
      { path: "var", type: "dir", mode: 0o755 },
      file("var/log"),
    ]),
  );
  expect("fold" in layer).toBe(false);
});

test.each([
  [
    "a file over a package directory",
    [file("usr/share/doc")],
    {},
    "usr/share/doc: replaces a directory of the packages",
  ],
  [
    "a file over one name of a hard-linked package file",
    [file("usr/lib/a")],
    {},
    "usr/lib/a: replaces a hard-linked file of the packages",
  ],
  [
    "a file through a package symlink",
    [file("var/log/x")],
    {},
    "var/log/x: its parent var is a symlink in the packages",
  ],
  ["a file under /boot", [file("boot/extlinux.conf")], {}, "boot/extlinux.conf: /boot is taken out"],
  [
    "firmware, when it is trimmed",
    [file("lib/firmware/my.bin")],
    { firmwareTrimmed: true },
    "firmware is trimmed after the overlay is laid",
  ],
  [
    "an inline file below another file",
    [file("etc/x"), file("etc/x/y")],
    {},
    "etc/x/y: its parent etc/x is not a directory",
  ],
] as [string, OverlayEntry[], Partial<OverlayLayerInput>, string][])(
  "%s cannot be layered: folded, with the reason",
  (_what, overlay, extra, reason) => {
    const layer = overlayLayer(input(overlay, extra));
    expect("fold" in layer && layer.fold).toContain(reason);
  },
);

test("firmware files are layered when nothing is trimmed; a symlink may replace a hard-linked file (the kernel unlinks first)", () => {
  expect("fold" in overlayLayer(input([file("lib/firmware/my.bin")]))).toBe(false);
  expect(
    "fold" in overlayLayer(input([{ path: "usr/lib/a", type: "symlink", mode: 0o777, linkTarget: "b", sha256: "0" }])),
  ).toBe(false);
});
