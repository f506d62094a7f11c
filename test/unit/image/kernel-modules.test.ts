import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ensureModuleIndex } from "../../../provider/image/kernel-modules";
import { debianKernel } from "../../fixtures/debian-kernel";

// Real modules from the Debian kernel: ext4 and what it needs, in roots laid out in different orders.
const MODULES = ["kernel/fs/ext4/ext4.ko", "kernel/fs/jbd2/jbd2.ko", "kernel/fs/mbcache.ko", "kernel/lib/crc16.ko"];

let dir: string;
beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-modules-"))));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function rootWith(name: string, modules: string[], release: string, modulesDir: string): string {
  const root = path.join(dir, name);
  for (const m of modules) {
    const dest = path.join(root, "lib", "modules", release, m);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(path.join(modulesDir, m), dest);
  }
  return root;
}

test("a kernel without modules.dep gets one at build (deterministic, modules.order untouched); a complete index is left alone", () => {
  const kernel = debianKernel();
  const a = rootWith("a", MODULES, kernel.release, kernel.modulesDir);
  const b = rootWith("b", [...MODULES].reverse(), kernel.release, kernel.modulesDir);
  const ra = ensureModuleIndex(a);
  expect(ra.indexed).toEqual([kernel.release]);
  expect(ra.files).toContain(`lib/modules/${kernel.release}/modules.dep`);
  expect(ra.files).toContain(`lib/modules/${kernel.release}/modules.alias`);
  ensureModuleIndex(b);
  const depOf = (root: string) =>
    fs.readFileSync(path.join(root, "lib", "modules", kernel.release, "modules.dep"), "utf8");
  expect(depOf(a)).toMatch(/^kernel\/fs\/ext4\/ext4\.ko: (kernel\/\S+ ?){3}$/m);
  expect(depOf(b)).toBe(depOf(a));
  // No modules.order was there before; none is left behind.
  expect(fs.existsSync(path.join(a, "lib", "modules", kernel.release, "modules.order"))).toBe(false);
  expect(ensureModuleIndex(a).indexed).toEqual([]);

  // A module package adds a module the kernel's modules.dep does not list: the index is made again.
  const extra = "kernel/drivers/block/virtio_blk.ko";
  rootWith("a", [extra], kernel.release, kernel.modulesDir);
  expect(ensureModuleIndex(a).indexed).toEqual([kernel.release]);
  expect(depOf(a)).toContain(`${extra}:`);
  // No modules at all: nothing to do.
  fs.mkdirSync(path.join(dir, "empty", "lib", "modules", kernel.release), { recursive: true });
  expect(ensureModuleIndex(path.join(dir, "empty"))).toEqual({ indexed: [], files: [] });
});
