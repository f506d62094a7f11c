import * as fs from "node:fs";
import * as path from "node:path";
import { SyslinuxConfig } from "../../components/resources";
import { parseSyslinuxConfig } from "../../provider/boot/schemes/syslinux/config";
import { step } from "../fixtures/scenario-step";
import { engineStack, type EngineStack } from "./pulumi-harness";
import { bootPartitionDir } from "../fixtures/boot-partition-dir";

// The real pulumi engine (file backend, no network) drives the real provider plugin.
jest.setTimeout(300_000);

let env: EngineStack;
let bootDir: string;
const FIRST_APPEND = "rdinit=/sbin/init panic=5";
// What the program declares; each test sets what it needs.
let defaultLabel = "a";
let append = FIRST_APPEND;
let wipeOnDelete: boolean | undefined;

const program = async () => {
  const cfg = new SyslinuxConfig("boot", {
    target: { kind: "local", path: bootDir },
    defaultLabel,
    timeout: 10,
    entries: ["a", "b"].map((label) => ({
      label,
      kernel: `/${label}/vmlinuz`,
      initrd: [`/${label}/initramfs`],
      append,
    })),
    ...(wipeOnDelete !== undefined ? { wipeOnDelete } : {}),
  });
  return { path: cfg.path, active: cfg.activeDefault };
};

beforeAll(async () => {
  env = await engineStack("syslinux", program);
  bootDir = await bootPartitionDir(path.join(env.dir, "boot"));
  // Files for both entries: a DEFAULT whose kernel or initramfs is missing is refused.
  for (const slot of ["a", "b"]) {
    fs.mkdirSync(path.join(bootDir, slot), { recursive: true });
    for (const name of ["vmlinuz", "initramfs"]) fs.writeFileSync(path.join(bootDir, slot, name), `${slot} ${name}`);
  }
});
afterAll(async () => env?.cleanup());

const cfgFile = () => path.join(bootDir, "syslinux.cfg");

test("one config's life: preview, up, an update, a hand edit put back, destroy lets go, wipeOnDelete removes", async () => {
  defaultLabel = "a";
  append = FIRST_APPEND;
  wipeOnDelete = undefined;
  await step("preview shows the create and writes nothing", async () => {
    const preview = await env.stack.preview();
    expect(preview.changeSummary.create).toBe(2); // the stack and the config
    expect(fs.existsSync(cfgFile())).toBe(false);
  });

  await step("up writes syslinux.cfg; a second preview shows no changes", async () => {
    const up = await env.stack.up();
    expect(up.summary.result).toBe("succeeded");
    const spec = parseSyslinuxConfig(fs.readFileSync(cfgFile(), "utf8"));
    expect(spec.defaultLabel).toBe("a");
    expect(spec.entries.map((e) => e.label)).toEqual(["a", "b"]);
    expect(up.outputs.active?.value).toBe("a");

    const again = await env.stack.preview({ diff: true });
    expect(again.changeSummary.same).toBe(2);
    expect(again.changeSummary.update ?? 0).toBe(0);
    expect(again.changeSummary.create ?? 0).toBe(0);
  });

  await step("a changed input shows an update naming the property", async () => {
    defaultLabel = "b";
    append = "rdinit=/sbin/init panic=10";
    const preview = await env.stack.preview({ diff: true });
    expect(preview.changeSummary.update).toBe(1);
    expect(preview.stdout).toMatch(/defaultLabel/);
    expect(preview.stdout).toMatch(/entries\[0\]\.append|append/);
    expect(parseSyslinuxConfig(fs.readFileSync(cfgFile(), "utf8")).defaultLabel).toBe("a"); // preview writes nothing
    const up = await env.stack.up();
    expect(up.summary.resourceChanges?.update).toBe(1);
    expect(parseSyslinuxConfig(fs.readFileSync(cfgFile(), "utf8")).defaultLabel).toBe("b");
  });

  await step("refresh names the fields a hand edit changed, and up puts them back", async () => {
    const text = fs.readFileSync(cfgFile(), "utf8");
    fs.writeFileSync(cfgFile(), text.replace("DEFAULT b", "DEFAULT a").replace("TIMEOUT 10", "TIMEOUT 50"));
    const refresh = await env.stack.refresh();
    expect(refresh.summary.resourceChanges?.update).toBe(1);
    expect(refresh.stdout).toMatch(/\[diff: ~defaultLabel,timeout\]/);
    // The refreshed state holds what the file says now, inputs included (Read parses the file).
    const state = await env.stack.exportStack();
    const resource = state.deployment.resources.find(
      (r: { type: string }) => r.type === "ramroot:index:SyslinuxConfig",
    );
    expect(resource.outputs.activeDefault).toBe("a");
    expect(resource.inputs.defaultLabel).toBe("a");
    expect(resource.inputs.timeout).toBe(50);
    const preview = await env.stack.preview({ diff: true });
    expect(preview.stdout).toMatch(/~ timeout\s*: 50 => 10/);
    expect(preview.stdout).toMatch(/~ defaultLabel\s*: "a" => "b"/);
    const up = await env.stack.up();
    expect(up.summary.resourceChanges?.update).toBe(1);
    expect(parseSyslinuxConfig(fs.readFileSync(cfgFile(), "utf8")).defaultLabel).toBe("b");
  });

  await step("destroy lets go of the file: it stays, byte for byte, and the preview says so", async () => {
    const before = fs.readFileSync(cfgFile());
    const preview = await env.stack.preview({ diff: true });
    expect(preview.changeSummary.same).toBe(2);
    const destroy = await env.stack.destroy();
    expect(destroy.summary.resourceChanges?.delete).toBe(2);
    expect(destroy.stdout).toMatch(/left syslinux\.cfg on local:.* in place/);
    expect(fs.readFileSync(cfgFile())).toEqual(before);
  });

  await step(
    "wipeOnDelete, applied by an up (an update that writes nothing), makes destroy remove the file",
    async () => {
      // The stack is empty again: adopt the file as it is, then ask for the wipe.
      const before = fs.readFileSync(cfgFile());
      wipeOnDelete = true;
      const up = await env.stack.up();
      expect(up.summary.resourceChanges?.create).toBe(2);
      expect(fs.readFileSync(cfgFile())).toEqual(before); // the same bytes: nothing rewritten
      const state = await env.stack.exportStack();
      const resource = state.deployment.resources.find(
        (r: { type: string }) => r.type === "ramroot:index:SyslinuxConfig",
      );
      expect(resource.outputs.onDelete).toMatch(/removes the config/);
      const destroy = await env.stack.destroy();
      expect(destroy.summary.resourceChanges?.delete).toBe(2);
      expect(fs.existsSync(cfgFile())).toBe(false);
      const history = await env.stack.history();
      const kinds = history.map((h) => h.kind);
      expect(kinds).toEqual(expect.arrayContaining(["update", "refresh", "destroy"]));
    },
  );
});

test("a bad input fails at preview naming the property, and the file stays", async () => {
  const before = fs.existsSync(cfgFile()) ? fs.readFileSync(cfgFile(), "utf8") : undefined;
  const declared = defaultLabel;
  defaultLabel = "c";
  await expect(env.stack.preview()).rejects.toThrow(/defaultLabel: got "c"; expected one of the entry labels: a, b/);
  defaultLabel = declared;
  // syslinux would take initrd= in APPEND as the entry's initramfs (another slot's); a newline
  // would end the APPEND line. Both stop the preview, not the update.
  const good = append;
  for (const [bad, message] of [
    [
      `${good} initrd=/b/initramfs`,
      /entries\[0\]\.append: got ".*initrd=\/b\/initramfs"; expected no initrd= or BOOT_IMAGE=/,
    ],
    [`${good}\nDEFAULT b`, /entries\[0\]\.append: got ".*\\nDEFAULT b"; expected a single line/],
  ] as const) {
    append = bad;
    await expect(env.stack.preview()).rejects.toThrow(message);
  }
  append = good;
  expect(fs.existsSync(cfgFile()) ? fs.readFileSync(cfgFile(), "utf8") : undefined).toBe(before);
});
