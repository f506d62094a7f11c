import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { writeIndexArchive } from "../../../provider/apk/index-archive";
import { type CliRun, type CompiledCli, compileCli } from "../../fixtures/ramroot-cli";

// Every test starts the compiled CLI (a Node process): seconds each on a loaded machine.
jest.setTimeout(60_000);

let cli: CompiledCli;
const run = (args: string[], stdin = ""): Promise<CliRun> => cli.run(args, stdin);

const INDEX =
  "C:Q1a\nP:a\nV:1.0-r0\nA:x86_64\nD:b>=2\n\nC:Q1b1\nP:b\nV:1.0-r0\nA:x86_64\n\nC:Q1b2\nP:b\nV:2.1-r0\nA:x86_64\n\n";

let tmp: string;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-apkcli-"));
  cli = await compileCli();
}, 180_000);
afterAll(() => {
  cli?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("ramroot apk version", () => {
  test("-t compares two arguments", async () => {
    expect(await run(["apk", "version", "-t", "1.0_rc1", "1.0"])).toEqual({ stdout: "<\n", stderr: "", code: 0 });
  });
  test("-t reads pairs from standard input, one result per line", async () => {
    const r = await run(["apk", "version", "-t"], "1.0 1.1\n2.0-r1 2.0\n1.2 1.2\n");
    expect(r).toEqual({ stdout: "<\n>\n=\n", stderr: "", code: 0 });
  });
  test("-c prints the invalid versions and exits with how many, at most 99, as apk 2.14.4 does", async () => {
    // as the real apk 2.14.4: "1.x" is valid (a number, an empty number, a letter), "bad" is not
    expect(await run(["apk", "version", "-c", "1.0", "1.x", "2-r1", "bad"])).toEqual({
      stdout: "bad\n",
      stderr: "",
      code: 1,
    });
    expect(await run(["apk", "version", "-c", "1.0"])).toEqual({ stdout: "", stderr: "", code: 0 });
    expect(await run(["apk", "version", "-c"], "1.0\n1.0bc\n")).toEqual({ stdout: "1.0bc\n", stderr: "", code: 1 });
    // `apk version -c 1.2_foo0 1.2_foo1` exits 2; a hundred invalid ones exit 99 (checked against the real apk)
    expect((await run(["apk", "version", "-c", "1.2_foo0", "1.0", "1.2_foo1"])).code).toBe(2);
    const hundred = Array.from({ length: 100 }, (_, i) => `1.2_foo${i}`);
    expect((await run(["apk", "version", "-c", ...hundred])).code).toBe(99);
  });
});

describe("ramroot apk index and resolve", () => {
  test("index prints signer, verification and packages of a signed archive", async () => {
    const { privateKey, publicKey } = crypto.generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
    const keys = path.join(tmp, "keys");
    fs.mkdirSync(keys);
    fs.writeFileSync(path.join(keys, "test-1234.rsa.pub"), publicKey);
    const file = path.join(tmp, "APKINDEX.tar.gz");
    fs.writeFileSync(
      file,
      writeIndexArchive(INDEX, "test repo", { keyName: "test-1234.rsa.pub", privateKeyPem: privateKey }),
    );
    const r = await run(["apk", "index", "--keys", keys, file]);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json).toMatchObject({
      signer: "test-1234.rsa.pub",
      verified: true,
      description: "test repo",
      packageCount: 3,
    });
    expect(json.packages[0]).toEqual({
      checksum: "Q1a",
      name: "a",
      version: "1.0-r0",
      arch: "x86_64",
      depends: ["b>=2"],
      provides: [],
      installIf: [],
      replaces: [],
    });
    const untrusted = await run(["apk", "index", file]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/not signed by a trusted key/);
  });

  test("resolve prints the lock from a plain APKINDEX with --allow-untrusted", async () => {
    const file = path.join(tmp, "APKINDEX");
    fs.writeFileSync(file, INDEX);
    const r = await run(["apk", "resolve", "--allow-untrusted", "--arch", "x86_64", "--repository", file, "a"]);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({
      world: ["a"],
      packages: [
        { name: "a", version: "1.0-r0", arch: "x86_64", checksum: "Q1a", repository: file },
        { name: "b", version: "2.1-r0", arch: "x86_64", checksum: "Q1b2", repository: file },
      ],
      installOrder: ["b", "a"],
    });
  });

  test("resolve fails like apk on an unsatisfiable world, and refuses a bad --arch", async () => {
    const file = path.join(tmp, "APKINDEX");
    fs.writeFileSync(file, INDEX);
    const r = await run(["apk", "resolve", "--allow-untrusted", "--arch", "x86_64", "--repository", file, "a", "b<2"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "ERROR: unable to select packages:\n  b-2.1-r0:\n    breaks: world[b<2]\n    satisfies: a-1.0-r0[b>=2]\n",
    );
    const bad = await run(["apk", "resolve", "--arch", "mips", "--repository", file, "a"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--arch "mips" is not accepted; use one of x86_64/);
  });

  test("index into a pipe the reader closes early (`| head`) stops quietly, without an EPIPE crash", async () => {
    const file = path.join(tmp, "APKINDEX.big");
    // big enough that the JSON overflows the pipe buffer after the reader is gone
    fs.writeFileSync(
      file,
      Array.from(
        { length: 3000 },
        (_, i) => `C:Q1x${i}\nP:pkg-${i}\nV:1.0-r0\nA:x86_64\nT:${"description ".repeat(8)}\n\n`,
      ).join(""),
    );
    const { file: node, args } = cli.commandLine(["apk", "index", "--allow-untrusted", file]);
    const child = execa(node, args, { reject: false, buffer: { stdout: false, stderr: true }, stdout: "pipe" });
    child.stdout!.once("data", () => child.stdout!.destroy());
    const r = await child;
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
  });

  test("help lists the apk verbs", async () => {
    const r = await run(["apk", "--help"]);
    for (const verb of ["version", "index", "resolve"]) expect(r.stdout).toContain(verb);
  });
});
