import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { machineEntries } from "../../../provider/image/machine-services";
import { parseImageConfig } from "../../../provider/image/plan";
import { HEALTH_PATH, TRIAL_REPORT_FILE } from "../../../provider/machine/health-report";
import {
  IMAGE_ID_PATH,
  IMAGE_PARAMETER,
  TRIAL_PARAMETER,
  TRIAL_PATH,
  imageParameter,
  trialAppend,
} from "../../../provider/machine/image-id";
import { CHECKS_DIR, CONF, GUARD_PATH, LIBEXEC, scriptsDir, scriptsDirFrom } from "../../../provider/machine/scripts";

const PROVIDER = path.join(__dirname, "..", "..", "..", "provider");
const script = (name: string) => fs.readFileSync(path.join(scriptsDir(), name), "utf8");

/** The modules a provider/ directory imports from its sibling directories, as "file -> dir/module". */
function crossImports(dir: string): string[] {
  const found: string[] = [];
  for (const file of fs.readdirSync(path.join(PROVIDER, dir)).filter((f) => f.endsWith(".ts"))) {
    const text = fs.readFileSync(path.join(PROVIDER, dir, file), "utf8");
    for (const m of text.matchAll(/^(?:import|export)[^"]*?from "(\.\.\/[^"]+)"/gm))
      found.push(`${dir}/${file} -> ${m[1]!.slice(3)}`);
  }
  return found;
}

test("image/ and boot/ meet only through machine/: neither imports the other, and machine/ imports neither", () => {
  const crossing = (from: string, to: string) => crossImports(from).filter((i) => i.includes(` -> ${to}/`));
  expect(crossing("image", "boot")).toEqual([]);
  expect(crossing("boot", "image")).toEqual([]);
  expect([...crossing("machine", "image"), ...crossing("machine", "boot")]).toEqual([]);
  // the contract is used from both sides (so the test above is not true of an empty machine/)
  expect(crossing("image", "machine").length).toBeGreaterThan(0);
  expect(crossing("boot", "machine").length).toBeGreaterThan(0);
});

test("the scripts publish and read what the TypeScript side of the contract names", () => {
  const imageId = script("image-id.sh");
  expect(imageId).toContain(`${IMAGE_PARAMETER}=*) image=\${word#${IMAGE_PARAMETER}=}`);
  expect(imageId).toContain(`${TRIAL_PARAMETER}=*) trial=\${word#${TRIAL_PARAMETER}=}`);
  expect(imageId).toContain(`publish ${IMAGE_ID_PATH} "$image"`);
  expect(imageId).toContain(`publish ${TRIAL_PATH} "$trial"`);
  // the guard reads what image-id.sh publishes, and publishes its report at HEALTH_PATH
  const guard = script("guard.sh");
  expect(path.dirname(IMAGE_ID_PATH)).toBe(path.dirname(HEALTH_PATH));
  expect(path.dirname(TRIAL_PATH)).toBe(path.dirname(HEALTH_PATH));
  expect(guard).toContain(`run=\${RAMROOT_RUN:-${path.dirname(HEALTH_PATH)}}`);
  expect(guard).toContain(`image=$(cat "$run/${path.basename(IMAGE_ID_PATH)}"`);
  expect(guard).toContain(`[ -s "$run/${path.basename(TRIAL_PATH)}" ] && trial=yes`);
  expect(guard).toContain(`mv "$run/health.tmp" "$run/${path.basename(HEALTH_PATH)}"`);
  expect(guard).toContain(`"$BOOT_MOUNTPOINT/${TRIAL_REPORT_FILE}"`);
  expect(guard).toContain(`checks=\${RAMROOT_CHECKS:-/${CHECKS_DIR}}`);
  expect(guard).toContain(`. "\${RAMROOT_CONF:-/${CONF}}"`);
  for (const name of ["mounts.sh", "network.sh", "ssh-host-keys.sh"]) expect(script(name)).toContain(`\n. /${CONF}\n`);
  for (const name of ["mounts.sh", "network.sh", "guard.sh"]) expect(script(name)).toContain(`/${LIBEXEC}/coldplug`);
  expect(script("network.sh")).toContain(`-s /${LIBEXEC}/udhcpc.script`);
  expect(GUARD_PATH).toBe(`/${LIBEXEC}/guard`);
  // what ramroot puts on the command line is what image-id.sh looks for
  expect(imageParameter("3f9c")).toBe(`${IMAGE_PARAMETER}=3f9c`);
  expect(trialAppend("console=ttyS0")).toBe(`console=ttyS0 ${TRIAL_PARAMETER}=1`);
  expect(trialAppend("")).toBe(`${TRIAL_PARAMETER}=1`);
});

test("every .sh file here is packed, byte for byte, into an image that asks for every service", () => {
  const config = parseImageConfig({
    packages: ["busybox"],
    repositories: ["/nowhere"],
    keys: ["/nowhere"],
    network: { mode: "dhcp" },
    dataDisk: { label: "data" },
    bootPartition: { label: "RAMROOT" },
    sshHostKeys: {},
    health: { checks: [{ name: "true", command: "true" }] },
  });
  const packed = new Map(
    machineEntries(config, ["busybox"])
      .filter((e) => e.path.startsWith(`${LIBEXEC}/`) && Buffer.isBuffer(e.source))
      .map((e) => [e.source as Buffer, e.path.slice(LIBEXEC.length + 1)] as const),
  );
  const files = fs.readdirSync(scriptsDir()).filter((f) => f.endsWith(".sh"));
  expect(files.length).toBe(7);
  for (const file of files) {
    const bytes = fs.readFileSync(path.join(scriptsDir(), file));
    const onMachine = [...packed].find(([b]) => b.equals(bytes))?.[1];
    expect({ file, onMachine: onMachine ?? "not packed" }).toEqual({
      file,
      onMachine: file === "udhcpc.sh" ? "udhcpc.script" : file.replace(/\.sh$/, ""),
    });
  }
});

test("the npm package ships the scripts (the compiled provider reads them from provider/machine)", () => {
  const root = path.join(PROVIDER, "..");
  const listing = JSON.parse(
    execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, stdio: "pipe" }).toString(),
  ) as Array<{ files: Array<{ path: string }> }>;
  const shipped = listing[0]!.files.map((f) => f.path);
  const scripts = fs
    .readdirSync(scriptsDir())
    .filter((f) => f.endsWith(".sh"))
    .map((f) => `provider/machine/${f}`);
  expect(scripts.filter((s) => !shipped.includes(s))).toEqual([]);
});

test("compiled, the scripts are read from the package's provider/machine, wherever the compiler put the modules", () => {
  const pkg = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-scripts-dir-"));
  try {
    const sources = path.join(pkg, "provider", "machine");
    fs.mkdirSync(sources, { recursive: true });
    fs.writeFileSync(path.join(sources, "guard.sh"), "#!/bin/sh\n");
    expect(scriptsDirFrom(sources)).toBe(sources);
    for (const compiled of ["dist/provider/machine", "node_modules/.cache/ramroot-cli-1/provider/machine"]) {
      fs.mkdirSync(path.join(pkg, compiled), { recursive: true });
      expect(scriptsDirFrom(path.join(pkg, compiled))).toBe(sources);
    }
    fs.rmSync(sources, { recursive: true });
    expect(() => scriptsDirFrom(path.join(pkg, "dist/provider/machine"))).toThrow(
      /the machine scripts \(guard\.sh and the others\) are in none of .*dist\/provider\/machine, .*; the ramroot package is incomplete/,
    );
  } finally {
    fs.rmSync(pkg, { recursive: true, force: true });
  }
});
