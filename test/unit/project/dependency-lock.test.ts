import * as fs from "node:fs";
import * as path from "node:path";
import { ownerLock, type PackageLock, type PackedManifest } from "../../../provider/project/dependency-lock";

// The owner's lock against this repository's own package-lock.json (real data: what `npm ci`
// installs here): every package ramroot needs outside development, none that only the
// development tools need, ramroot itself from the tarball, and nothing when the tarball's
// dependencies are not the ones the lock was made for.
const ROOT = path.resolve(__dirname, "..", "..", "..");
const lock = JSON.parse(fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8")) as PackageLock;
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as PackedManifest;
const args = {
  name: "mybox",
  spec: "file:../ramroot-0.1.0.tgz",
  integrity: "sha512-AAAA",
  packed: manifest,
  ramrootLock: lock,
};

test("ramroot's runtime tree goes along, its development tree does not", () => {
  const owner = ownerLock(args)!;
  expect(owner.packages[""]).toEqual({ name: "mybox", dependencies: { ramroot: "file:../ramroot-0.1.0.tgz" } });
  expect(owner.packages["node_modules/ramroot"]).toMatchObject({
    version: manifest.version,
    resolved: "file:../ramroot-0.1.0.tgz",
    integrity: "sha512-AAAA",
    dependencies: manifest.dependencies,
    bin: manifest.bin,
  });
  for (const dep of Object.keys(manifest.dependencies ?? {}))
    expect([dep, owner.packages[`node_modules/${dep}`]?.version]).toEqual([
      dep,
      lock.packages[`node_modules/${dep}`]?.version,
    ]);
  for (const dev of ["jest", "knip", "prettier", "@swc/core"])
    expect([dev, owner.packages[`node_modules/${dev}`]]).toEqual([dev, undefined]);
  expect(Object.values(owner.packages).filter((e) => e.dev === true || e.devOptional === true)).toEqual([]);
  // needed by development and, optionally, at run time (TypeScript is @pulumi/pulumi's optional
  // peer): optional, as npm marks it when it installs without development dependencies
  expect(owner.packages["node_modules/typescript"]?.optional).toBe(true);
  // every kept entry is one npm can take from its cache: a version and its integrity
  for (const [at, entry] of Object.entries(owner.packages))
    if (at !== "") expect([at, typeof entry.version, typeof entry.integrity]).toEqual([at, "string", "string"]);
});

test("a tarball whose dependencies differ from the lock's gets no lock (npm resolves them)", () => {
  const other = { ...manifest, dependencies: { ...manifest.dependencies, "left-pad": "^1.3.0" } };
  expect(ownerLock({ ...args, packed: other })).toBeUndefined();
});
