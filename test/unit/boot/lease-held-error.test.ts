import { LeaseHeldError } from "../../../provider/boot/lease";
import { ConflictError } from "../../../provider/ramroot-error";

// The error a second deploy meets: built with and without a holder record (a constructor that
// touched `this` before super threw "Must call super constructor" instead of this error).
test("a held lease is a conflict that names the holder and the way out; a lease without a record says what to remove", () => {
  const held = new LeaseHeldError("image:/srv/disk.img", {
    owner: "pulumi up: BootSlot a",
    user: "root",
    pid: 4242,
    host: "build1",
    token: "t0",
    acquired: "2026-12-06T10:00:00.000Z",
    expires: "2026-12-06T10:02:00.000Z",
  });
  expect(held).toBeInstanceOf(ConflictError);
  expect(held.kind).toBe("conflict");
  expect(held.target).toBe("image:/srv/disk.img");
  expect(held.holder?.pid).toBe(4242);
  expect(held.message).toMatch(
    /^image:\/srv\/disk\.img is leased by "pulumi up: BootSlot a" \(user root, pid 4242 on host build1, since .*\) until .*; wait for it to finish/,
  );
  const orphan = new LeaseHeldError("local:/mnt/boot", undefined);
  expect(orphan.holder).toBeUndefined();
  expect(orphan.message).toMatch(/without a holder record.*; if no deploy is running, remove .* from the partition/);
});
