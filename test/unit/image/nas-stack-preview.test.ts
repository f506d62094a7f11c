/**
 * stacks/Pulumi.nas.yaml is a real box's stack: Alpine's mirror, Alpine's keys, Alpine's
 * package names. Its image config is previewed (planImage: what `pulumi preview` computes for
 * the image) against a signed repository in Alpine's format that holds those names at Alpine's
 * versions with Alpine's dependencies (test/fixtures/nas-alpine-repo.ts), with only the
 * repositories and keys pointed at it: everything it asks for resolves, and what its kernel,
 * microcode, firmware and services settings need is in the packages it gets.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { parseTargetSpec } from "../../../provider/boot/target-spec";
import { defaultRepositories, type ImageConfigInput } from "../../../provider/image/image-config";
import { parseImageConfig, planImage } from "../../../provider/image/plan";
import { buildNasAlpineRepo, type NasAlpineRepo } from "../../fixtures/nas-alpine-repo";

jest.setTimeout(600_000);

const ROOT = path.resolve(__dirname, "../../..");
const STACK = path.join(ROOT, "stacks", "Pulumi.nas.yaml");

const stack = (parseYaml(fs.readFileSync(STACK, "utf8")) as { config: Record<string, unknown> }).config;
const image = stack["ramroot:image"] as ImageConfigInput & { packages: string[]; services: Record<string, string[]> };

let tmp: string;
let repo: NasAlpineRepo;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-nas-preview-"));
  repo = buildNasAlpineRepo(tmp);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("the stack file is valid and names only the real world: an ssh target, a trial, Alpine's mirror and keys", () => {
  expect(Object.keys(stack).sort()).toEqual(["ramroot:image", "ramroot:strategy", "ramroot:target", "ramroot:trial"]);
  expect(parseTargetSpec(stack["ramroot:target"])).toMatchObject({ kind: "ssh", path: "/media/boot" });
  expect(stack["ramroot:strategy"]).toBe("trial");
  const config = parseImageConfig(image);
  expect(config.repositories).toEqual(defaultRepositories(config.release));
  expect(config.repositories[0]).toMatch(/^https:\/\/dl-cdn\.alpinelinux\.org\/alpine\/v3\.\d+\/main$/);
  expect(config.keys).toBeUndefined(); // Alpine's keys, pinned in code
  expect(fs.existsSync(path.join(ROOT, config.overlay!))).toBe(true);
});

test("previewed against Alpine's names and versions: every package resolves, and the kernel, microcode, firmware and services it names are in them", async () => {
  const progress: string[] = [];
  const { plan, lock } = await planImage(
    { ...image, repositories: [repo.repository], keys: [repo.keysDir] },
    { baseDir: ROOT, onProgress: (m) => progress.push(m) },
  );
  expect(progress.filter((m) => m.startsWith("WARNING"))).toEqual([]);
  // what the stack asks for, at Alpine's versions (odd ones among them)
  expect(plan.packages).toMatchObject({
    "alpine-base": "3.23.3-r0",
    "linux-lts": "6.12.67-r0",
    mkinitfs: "3.12.1-r0",
    zfs: "2.3.5-r0",
    "zfs-openrc": "2.3.5-r0",
    "zfs-lts": "6.12.67-r0",
    openssh: "10.2_p1-r0",
    "openssh-server-common-openrc": "10.2_p1-r0",
    chrony: "4.8-r1",
    "chrony-openrc": "4.8-r1",
    "intel-ucode": "20251111-r0",
    "linux-firmware-i915": "20251125-r0",
    syslinux: "6.04_pre1-r19",
    libncursesw: "6.5_p20251123-r0",
    libedit: "20251016.3.1-r0",
    busybox: "1.37.0-r30",
  });
  expect([...plan.world].sort()).toEqual([...image.packages].sort());
  // every locked package is one of the repository's, with its index checksum
  const byKey = new Map(repo.records.map((r) => [`${r.name}-${r.version}`, r.checksum]));
  for (const p of plan.lock) expect([p.name, p.checksum]).toEqual([p.name, byKey.get(`${p.name}-${p.version}`)]);

  const files = new Set(lock.packages.flatMap((p) => repo.files.get(p.name) ?? []));
  expect(files).toContain("boot/vmlinuz-lts"); // kernel: lts
  expect(files).toContain("boot/intel-ucode.img"); // microcode: intel
  expect([...files].filter((f) => f.startsWith("lib/firmware/i915/")).length).toBeGreaterThan(0); // firmware: i915/*
  const named = Object.values(image.services)
    .flat()
    .filter((s) => !s.startsWith("-"));
  expect(named.sort()).toEqual(["chronyd", "sshd", "zfs-import", "zfs-mount"]);
  for (const service of named) expect([service, files.has(`etc/init.d/${service}`)]).toEqual([service, true]);
  // the NAS's own files
  expect(Object.keys(plan.overlay)).toEqual(
    expect.arrayContaining(["etc/ssh/sshd_config", "etc/chrony/chrony.conf", "root/.ssh/authorized_keys"]),
  );
  // a preview is repeatable: the same plan names the same image
  const again = await planImage({ ...image, repositories: [repo.repository], keys: [repo.keysDir] }, { baseDir: ROOT });
  expect(again.plan.planId).toBe(plan.planId);
});
