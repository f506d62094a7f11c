import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createDisk } from "../../../provider/boot/disk-create";
import { samePartition, sameTarget, targetLocation } from "../../../provider/boot/target-identity";
import { diffTarget } from "../../../provider/resources/target-diff";
import { formatTargetId, parseTargetId } from "../../../provider/resources/target-id";
import { openTarget } from "../../../provider/boot/target";

jest.setTimeout(60_000);

let dir: string;
let disk: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-identity-"));
  disk = path.join(dir, "disk.img");
  await createDisk({ output: disk, sizeMiB: 8, layout: "mbr", slots: ["a", "b"] });
  fs.mkdirSync(path.join(dir, "boot"));
  fs.symlinkSync(path.join(dir, "boot"), path.join(dir, "boot-link"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test("an auto-detected partition and the same partition named are one identity; another partition is not", () => {
  expect(targetLocation({ kind: "image", path: disk })).toBe(
    targetLocation({ kind: "image", path: disk, partition: 1 }),
  );
  expect(targetLocation({ kind: "image", path: disk })).toMatch(/@1048576$/);
  expect(sameTarget({ kind: "image", path: disk }, { kind: "image", path: `${dir}/./disk.img` })).toBe(true);
  // A partition the disk does not have is spelled out, so it differs from the real one.
  expect(sameTarget({ kind: "image", path: disk }, { kind: "image", path: disk, partition: 2 })).toBe(false);
  expect(sameTarget({ kind: "image", path: disk }, { kind: "image", path: path.join(dir, "other.img") })).toBe(false);
});

test("a trailing slash or a symlink to the same directory changes nothing; another directory does", () => {
  const boot = path.join(dir, "boot");
  expect(sameTarget({ kind: "local", path: boot }, { kind: "local", path: `${boot}/` })).toBe(true);
  expect(sameTarget({ kind: "local", path: boot }, { kind: "local", path: path.join(dir, "boot-link") })).toBe(true);
  expect(sameTarget({ kind: "local", path: boot }, { kind: "local", path: dir })).toBe(false);
  expect(sameTarget({ kind: "local", path: boot }, { kind: "image", path: boot })).toBe(false);
});

test("ssh: user, port, key, known hosts, ssh config and host key checking are the connection, not the identity", async () => {
  const old = { kind: "ssh" as const, host: "NAS", path: "/media/boot/", user: "root", port: 22 };
  const moved = {
    kind: "ssh" as const,
    host: "nas",
    path: "/media/boot",
    user: "admin",
    port: 2222,
    knownHostsFile: "/k",
    strictHostKeyChecking: false,
    sshConfigFile: "/c",
  };
  const d = await diffTarget(old, undefined, moved);
  expect(d.replace).toBe(false);
  expect(Object.keys(d.changes).sort()).toEqual([
    "target.host",
    "target.knownHostsFile",
    "target.path",
    "target.port",
    "target.sshConfigFile",
    "target.strictHostKeyChecking",
    "target.user",
  ]);
  // Hosts that cannot be reached show no volume: another host or path is another place, a replacement.
  expect((await diffTarget(old, undefined, { ...old, host: "other.invalid" })).replace).toBe(true);
  expect((await diffTarget(old, undefined, { ...old, path: "/media/other" })).replace).toBe(true);
  expect(await diffTarget(old, undefined, old)).toEqual({ changes: {}, replace: false });
});

test("the partition is its FAT volume: a byte copy of a disk is the same partition wherever it is, another disk is not, and an old state without a volume is looked at where it was", async () => {
  const copy = path.join(dir, "copy.img");
  fs.copyFileSync(disk, copy);
  const other = path.join(dir, "other-disk.img");
  await createDisk({ output: other, sizeMiB: 8, slots: ["a", "b"] });
  const at = (p: string) => ({ kind: "image" as const, path: p });
  const volume = await readVolume(disk);
  expect(volume).toMatchObject({ label: "RAMROOT", dir: "" });
  // As a resource's state records it, and as an old state (no volume) has it while the disk is still there.
  expect(await samePartition({ target: at(disk), volume }, at(copy))).toBe(true);
  expect(await samePartition({ target: at(disk) }, at(copy))).toBe(true);
  expect((await diffTarget(at(disk), volume, at(copy))).replace).toBe(false);
  expect(await samePartition({ target: at(disk), volume }, at(other))).toBe(false);
  expect((await diffTarget(at(disk), volume, at(other))).replace).toBe(true);
  // An old state whose place is gone, and a new place with no FAT: only the same place counts.
  expect(await samePartition({ target: at(path.join(dir, "gone.img")) }, at(copy))).toBe(false);
  expect(await samePartition({ target: at(disk), volume }, { kind: "local", path: path.join(dir, "boot") })).toBe(
    false,
  );
  expect(await samePartition({ target: at(disk), volume }, at(`${dir}/./disk.img`))).toBe(true);
});

async function readVolume(image: string) {
  const target = await openTarget({ kind: "image", path: image });
  try {
    return await target.bootVolume();
  } finally {
    await target.close();
  }
}

test("ids round-trip, carry no key, and a bad id names what is accepted", () => {
  const ssh = {
    kind: "ssh" as const,
    host: "::1",
    user: "root",
    port: 2222,
    path: "/media/boot",
    knownHostsFile: "/tmp/kh",
    strictHostKeyChecking: false,
  };
  const id = formatTargetId({
    ...ssh,
    privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n",
  });
  expect(id).toBe("ssh:root@[::1]:2222:/media/boot?knownHostsFile=%2Ftmp%2Fkh&strictHostKeyChecking=false");
  expect(parseTargetId(`${id}#b`)).toEqual({ target: ssh, slot: "b" });
  expect(parseTargetId("ssh:nas:/boot")).toEqual({ target: { kind: "ssh", host: "nas", path: "/boot" } });
  expect(parseTargetId(`image:${disk}?partition=1#a`)).toEqual({
    target: { kind: "image", path: disk, partition: 1 },
    slot: "a",
  });
  expect(parseTargetId(formatTargetId({ kind: "local", path: dir }))).toEqual({ target: { kind: "local", path: dir } });
  expect(() => parseTargetId("floppy:/x")).toThrow(
    /id: got "floppy:\/x"; "floppy" is not a target kind; expected local:\/path, image:/,
  );
  expect(() => parseTargetId("ssh:nas")).toThrow(/\[user@\]host\[:port\]:\/absolute\/path/);
});
