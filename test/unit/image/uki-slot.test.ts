/**
 * A slot's Secure Boot UKIs on real inputs: Debian's systemd-boot-efi stub and kernel, a key and
 * certificate made by openssl, sbsign and sbverify (Debian's sbsigntool), binutils' objdump as a
 * PE reader that is not ramroot's. The image's UKI with an entry's command line is byte for
 * byte what uki.ts writes from the stub with that command line, signed or not before.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { efiStubPath } from "../../../provider/image/boot-split";
import { writeUki, type UkiInputs } from "../../../provider/image/uki";
import { ukiCmdline, ukiWithCmdline } from "../../../provider/image/uki-cmdline";
import { signedSlotUkis } from "../../../provider/image/uki-slot";
import { readUkiSigner, signUki, ukiSignatureRefusal } from "../../../provider/secure-boot-signing";
import { InputError } from "../../../provider/ramroot-error";
import { debianDeb } from "../../fixtures/debian-deb";
import { debianKernel } from "../../fixtures/debian-kernel";
import { secureBootKeyPair } from "../../fixtures/secure-boot-keys";

jest.setTimeout(300_000);

let work: string;
let inputs: UkiInputs;
let imageUki: string;

const sha256 = (f: string) => createHash("sha256").update(fs.readFileSync(f)).digest("hex");
const read = (f: string) => fs.readFileSync(f, "utf8");

const keyPair = (name: string) => secureBootKeyPair(work, name);

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-uki-slot-"));
  const stubRoot = debianDeb("systemd-boot-efi", { ready: (r) => fs.existsSync(path.join(r, efiStubPath("x86_64"))) });
  const microcode = path.join(work, "microcode");
  const initramfs = path.join(work, "initramfs");
  fs.writeFileSync(microcode, Buffer.alloc(1001, 0x4d));
  fs.writeFileSync(initramfs, Buffer.alloc(5003, 0x49));
  inputs = {
    arch: "x86_64",
    stub: path.join(stubRoot, efiStubPath("x86_64")),
    kernel: debianKernel("x86_64").vmlinuz,
    initrds: [microcode, initramfs],
    cmdline: "rdinit=/sbin/init console=ttyS0 ramroot.image=0123",
    osRelease: 'ID=alpine\nPRETTY_NAME="Alpine Linux"\n',
  };
  imageUki = path.join(work, "uki.efi");
  await writeUki(inputs, imageUki);
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test("another command line: the same bytes uki.ts writes from the stub with it, from an unsigned or a signed UKI", async () => {
  const cmdline = `${inputs.cmdline} panic=10 quiet zfs.zfs_arc_max=1073741824`;
  const fresh = path.join(work, "fresh.efi");
  await writeUki({ ...inputs, cmdline }, fresh);
  const relaid = path.join(work, "relaid.efi");
  await ukiWithCmdline(imageUki, "x86_64", cmdline, relaid);
  expect(sha256(relaid)).toBe(sha256(fresh));
  expect(ukiCmdline(relaid)).toBe(cmdline);
  // binutils reads the same sections, .cmdline its new length
  const objdump = execFileSync("objdump", ["-h", relaid], { encoding: "utf8" });
  expect(objdump).toMatch(new RegExp(`\\.cmdline\\s+0*${Buffer.byteLength(cmdline).toString(16)}\\s`));
  for (const name of [".osrel", ".initrd", ".linux"]) expect(objdump).toContain(name);
  // A signed image UKI loses its signature and gives the same bytes.
  const db = keyPair("db");
  const signed = path.join(work, "signed.efi");
  await signUki(imageUki, signed, readUkiSigner({ privateKey: db.key, certificate: db.cert }, work), 1700000000);
  const fromSigned = path.join(work, "from-signed.efi");
  await ukiWithCmdline(signed, "x86_64", cmdline, fromSigned);
  expect(sha256(fromSigned)).toBe(sha256(fresh));
  // The same command line back: the image's own UKI.
  const back = path.join(work, "back.efi");
  await ukiWithCmdline(relaid, "x86_64", inputs.cmdline, back);
  expect(sha256(back)).toBe(sha256(imageUki));
});

test("a slot's two signed UKIs: the entry's command line and the trial's, each verified, the same bytes every time; a key not the certificate's is refused naming secureBoot.privateKey", async () => {
  const db = keyPair("slot");
  const signer = readUkiSigner({ privateKey: db.key, certificate: db.cert }, work);
  const cmdline = "rdinit=/sbin/init console=ttyS0 ramroot.image=0123 panic=10";
  const once = async (name: string) => {
    const dir = path.join(work, name);
    fs.mkdirSync(dir);
    return signedSlotUkis(imageUki, { arch: "x86_64", cmdline, signer, epoch: 1700000000, dir });
  };
  const a = await once("a");
  expect(ukiCmdline(a.uki)).toBe(cmdline);
  expect(ukiCmdline(a.trialUki)).toBe(`${cmdline} ramroot.trial=1`);
  for (const f of [a.uki, a.trialUki]) expect(await ukiSignatureRefusal(f, read(db.cert))).toBeUndefined();
  const b = await once("b");
  expect(sha256(b.uki)).toBe(sha256(a.uki));
  expect(sha256(b.trialUki)).toBe(sha256(a.trialUki));
  // A key that is not the certificate's is refused where the pair is read, naming the field, never the key.
  const other = keyPair("other");
  const mixed = () => readUkiSigner({ privateKey: other.key, certificate: db.cert }, work);
  expect(mixed).toThrow(InputError);
  expect(mixed).toThrow(/secureBoot\.privateKey: got a key that is not the certificate's/);
});
