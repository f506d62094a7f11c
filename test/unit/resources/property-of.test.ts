import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { archInfo } from "../../../provider/arch";
import { loadRepository } from "../../../provider/apk/repository";
import { loadPublicKeyFile } from "../../../provider/apk/signature";
import { scanOverlay } from "../../../provider/image/overlay";
import { propertyOf } from "../../../provider/resources/alpine-image-resource";
import { FieldError, RamrootError } from "../../../provider/ramroot-error";

// A planning failure names the property to fix from the error itself (its `property`), never
// from its wording: each error below comes from the code that throws it for real.

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-property-of-"));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("nothing was thrown");
}

test("a missing overlay, an unknown arch: input errors that carry their field", () => {
  const overlay = thrown(() => scanOverlay(path.join(tmp, "no-such-root")));
  expect(overlay).toBeInstanceOf(FieldError);
  expect(overlay).toMatchObject({ kind: "input", property: "overlay" });
  expect((overlay as Error).message).toMatch(/^overlay: directory ".*no-such-root" does not exist/);
  expect(propertyOf(overlay)).toBe("overlay");
  const arch = thrown(() => archInfo("mips"));
  expect(propertyOf(arch)).toBe("arch");
  expect((arch as Error).message).toMatch(/^arch: "mips" is not supported; expected one of x86_64, aarch64/);
});

test("a private key named as trusted is a trust error on keys, with its fix", () => {
  const file = path.join(tmp, "signer.rsa");
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 1024 });
  fs.writeFileSync(file, privateKey.export({ type: "pkcs8", format: "pem" }));
  const err = thrown(() => loadPublicKeyFile(file));
  expect(err).toMatchObject({ kind: "trust", property: "keys", fix: expect.stringMatching(/signer\.rsa\.pub/) });
  expect(propertyOf(err)).toBe("keys");
});

test("a repository that is not there is the repositories'; an error without a property too", async () => {
  const err = await loadRepository(path.join(tmp, "no-repo"), { arch: "x86_64" }, 0).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(RamrootError);
  expect(propertyOf(err)).toBe("repositories");
  expect(propertyOf(new Error("EACCES"))).toBe("repositories");
});
