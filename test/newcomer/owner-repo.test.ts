import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { buildImageRepo } from "../fixtures/image-repo";
import { freshShell, type FreshShell } from "../fixtures/fresh-shell";
import { step } from "../fixtures/scenario-step";

// An owner's own repository, as the README's "Your own machine" makes one, in an empty directory
// outside this checkout: ramroot packed with `npm pack`, `ramroot init` with that tarball as the
// dependency (installed from npm's cache only: npm_config_offline), the owner's `npm run setup`,
// then `npm run preview`, `npm start`, the disk booted in QEMU, an edit under root/ that the
// preview names, `pulumi up`, `ramroot rollback`. The plugin, the CLI and the setup all run from
// node_modules/ramroot; nothing reads the checkout but `npm pack` and the `ramroot init` run from
// it (what `npx ramroot init` runs before ramroot is published). The machine's packages come from
// a signed repository of Debian binaries (test/fixtures/image-repo.ts), as the demo's do.
jest.setTimeout(3_600_000);

const REPO_ROOT = path.resolve(__dirname, "..", "..");
const PACKAGES = "alpine-baselayout,busybox,ramroot-init";

let work: string;
let tarball: string;
let shell: FreshShell;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-owner-"));
  // The package as `npm publish` would send it, from the dist/ the setup compiled (the engine
  // tests run the same one; `npm pack` alone would compile it again first, with prepack).
  const packed = await execa("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], {
    cwd: REPO_ROOT,
  });
  const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
  tarball = path.join(work, info.filename);
  const files = info.files.map((f) => f.path);
  for (const needed of [
    "bin/ramroot.js",
    "dist/components/index.js",
    "dist/components/index.d.ts",
    "dist/provider/cli/main.js",
    "dist/provider/resources/main.js",
    "provider/plugin/pulumi-resource-ramroot",
    "provider/plugin/PulumiPlugin.yaml",
    "scripts/setup.sh",
    "scripts/setup-pulumi.sh",
    "scripts/owner.sh",
  ])
    expect([needed, files.includes(needed)]).toEqual([needed, true]);
  // what an owner does not run: the tests' fixtures, the benchmarks, source maps of missing sources
  expect(files.filter((f) => /^dist\/(test|bench|scripts)\/|\.map$|^test\//.test(f))).toEqual([]);
  await buildImageRepo(path.join(work, "repo"));
  shell = freshShell(work, {
    RAMROOT_IMAGE_CACHE: path.join(work, "images"),
    RAMROOT_CHECK_ARCHIVES: "1",
    // npm may take packages from its cache only: an offline install or none
    npm_config_offline: "true",
    PULUMI_CONFIG_PASSPHRASE: "the owner's own passphrase",
  });
});

afterAll(() => {
  if (shell) console.log(`owner repository, step by step:\n${shell.timings.join("\n")}`);
  fs.rmSync(work, { recursive: true, force: true });
});

/** `ramroot init DIR` as the checkout's `npx ramroot init` runs it, with the packed tarball as the dependency. */
function init(dir: string, ...flags: string[]): Promise<string> {
  return shell.ok(
    [
      `node ${REPO_ROOT}/bin/ramroot.js init ${dir} --ramroot ${tarball}`,
      `--repository repo/repo --key repo/trusted --packages ${PACKAGES}`,
      ...flags,
    ].join(" "),
  );
}

/** Every file of the repository that is the owner's (not installed, not state), recursively. */
function ownFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .filter((f) => !/^(node_modules|state|\.git|\.ramroot)\//.test(f))
    .sort();
}

test("init, setup, preview, up, boot, an edit under root/, up, rollback: all from the installed package", async () => {
  const box = path.join(work, "mybox");
  const inBox = { cwd: box };
  const env = "source .ramroot/env.sh && ";

  await step("ramroot init writes the repository and installs ramroot from npm's cache", async () => {
    const out = await init("mybox");
    expect(out).toContain("(from npm's cache, as package-lock.json pins them)");
    expect(out).toContain("git init: a new repository");
    expect(ownFiles(box)).toEqual(
      [
        ".gitignore",
        "Pulumi.yaml",
        "README.md",
        "index.ts",
        "package-lock.json",
        "package.json",
        "root/etc/motd",
        "stacks/Pulumi.machine.yaml",
      ].sort(),
    );
    expect(fs.readFileSync(path.join(box, "Pulumi.yaml"), "utf8")).toContain(
      "path: ./node_modules/ramroot/provider/plugin",
    );
    const manifest = JSON.parse(fs.readFileSync(path.join(box, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    expect(manifest.dependencies).toEqual({ ramroot: `file:../${path.basename(tarball)}` });
    expect(fs.existsSync(path.join(box, "node_modules", "ramroot", "dist", "provider", "resources", "main.js"))).toBe(
      true,
    );
    // nothing the owner keeps names this checkout
    for (const f of ownFiles(box)) expect([f, fs.readFileSync(path.join(box, f), "utf8")]).not.toContain(REPO_ROOT);
    // state, caches, installed packages and disk images stay out of git
    const kept = ["state/.pulumi", "node_modules/ramroot", ".ramroot/env.sh", "machine.img"];
    const ignored = await shell.ok(`git check-ignore ${kept.join(" ")}`, inBox);
    expect(ignored.trim().split("\n")).toEqual(kept);
  });

  await step("npm run setup writes the owner's env.sh: no demo backend, no demo passphrase", async () => {
    await shell.ok("npm run setup", inBox);
    const envFile = fs.readFileSync(path.join(box, ".ramroot", "env.sh"), "utf8");
    expect(envFile).toContain(`${box}/node_modules/.bin`);
    expect(envFile).not.toMatch(/PULUMI_BACKEND_URL|PULUMI_CONFIG_PASSPHRASE/);
    expect(envFile).not.toContain(REPO_ROOT);
  });

  await step("the disk the stack's target names, then npm run preview", async () => {
    await shell.ok(`${env}npx ramroot disk create --size 64 machine.img`, inBox);
    const preview = await shell.ok("npm run preview", inBox);
    expect(preview).toContain("Created stack 'machine'");
    expect(preview).toMatch(/\+ ramroot:index:BootSlot: \(create\)[\s\S]*slot +: "a"/);
    expect(preview).toMatch(/ramroot-init +: "1\.0-r0"/);
    expect(preview).toMatch(/etc\/motd *: "file 644 [0-9a-f]{12}"/);
  });

  let first = "";
  await step("npm start deploys slot a; the state is in the repository's state/", async () => {
    const up = await shell.ok("npm start -- --yes", inBox);
    expect(up).toMatch(/\+ \d+ created/);
    expect(up).toContain("boot test passed");
    expect(fs.existsSync(path.join(box, "state", ".pulumi", "stacks", "mybox", "machine.json"))).toBe(true);
    first = (await shell.ok(`${env}pulumi stack output imageId --stack machine`, inBox)).trim();
    expect(first).toMatch(/^[0-9a-f]{64}$/);
  });

  await step("the disk boots in QEMU through syslinux, running the deployed image", async () => {
    const boot = await shell.ok(
      `${env}npx ramroot qemu --stack machine --expect "ramroot: image ${first}" --timeout 300`,
      inBox,
    );
    expect(boot).toContain(`seen: ramroot: image ${first}`);
  });

  await step("an edit under root/: the preview names the file, up writes slot b", async () => {
    fs.appendFileSync(path.join(box, "root", "etc", "motd"), "Edited by its owner.\n");
    const preview = await shell.ok(`${env}pulumi preview --diff --stack machine`, inBox);
    expect(preview).toMatch(/~ etc\/motd *: "file 644 [0-9a-f]{12}" => "file 644 [0-9a-f]{12}"/);
    expect(preview).toMatch(/\+ ramroot:index:BootSlot: \(create\)[\s\S]*slot +: "b"/);
    expect(preview).toMatch(/~ defaultLabel *: "a" => "b"/);
    await shell.ok(`${env}pulumi up --yes --skip-preview --stack machine`, inBox);
    const status = await shell.ok(`${env}npx ramroot status --stack machine`, inBox);
    expect(status).toMatch(/^DEFAULT +b -> slot b$/m);
  });

  await step("ramroot rollback goes back to slot a and pins it", async () => {
    await shell.ok(`${env}npx ramroot rollback --stack machine`, inBox);
    const status = await shell.ok(`${env}npx ramroot status --stack machine`, inBox);
    expect(status).toMatch(/^DEFAULT +a -> slot a$/m);
    expect(status).toMatch(/^PINNED +to update 1 \(image [0-9a-f]{12}\)/m);
    expect(status).toMatch(/^slot a +image ([0-9a-f]{12}) .*\[DEFAULT since update 3: rollback to update 1\]$/m);
    expect(status).toContain(`slot a   image ${first.slice(0, 12)}`);
    // the pin is in the stack's file, which is the owner's (in git)
    expect(fs.readFileSync(path.join(box, "stacks", "Pulumi.machine.yaml"), "utf8")).toMatch(
      /ramroot:pins: .*"machine"/,
    );
  });
});

test("init --yaml: a Pulumi YAML program that previews the same machine", async () => {
  const box = path.join(work, "yamlbox");
  await init("yamlbox", "--yaml", "--stack", "nas");
  expect(ownFiles(box)).not.toContain("index.ts");
  expect(fs.readFileSync(path.join(box, "Pulumi.yaml"), "utf8")).toMatch(/^runtime: yaml$/m);
  await shell.ok("npm run setup", { cwd: box });
  await shell.ok("source .ramroot/env.sh && npx ramroot disk create --size 64 machine.img", { cwd: box });
  const preview = await shell.ok("npm run preview", { cwd: box });
  expect(preview).toContain("Created stack 'nas'");
  expect(preview).toMatch(/\+ ramroot:index:AbSystem: \(create\)/);
  expect(preview).toMatch(/ramroot-init +: "1\.0-r0"/);
  expect(preview).toMatch(/\+ ramroot:index:BootSlot: \(create\)[\s\S]*slot +: "a"/);
});

test("init refuses a directory that has the files it would write, and writes nothing", async () => {
  const box = path.join(work, "taken");
  fs.mkdirSync(box);
  fs.writeFileSync(path.join(box, "Pulumi.yaml"), "name: mine\n");
  const r = await shell.sh(`node ${REPO_ROOT}/bin/ramroot.js init taken --no-install`);
  expect(r.code).toBe(1);
  expect(r.out).toContain(
    `ramroot: ${box} already has Pulumi.yaml: init writes a new repository and overwrites nothing`,
  );
  expect(fs.readdirSync(box)).toEqual(["Pulumi.yaml"]);
});
