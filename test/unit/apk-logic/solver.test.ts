import { parseApkindex } from "../../../provider/apk/apkindex";
import type { RepositoryPackage } from "../../../provider/apk/package-record";
import { installOrder, resolvePackages, SolverError, type Lock } from "../../../provider/apk/solver";

function repo(text: string, order = 0, url = `test://repo${order}`): RepositoryPackage[] {
  return parseApkindex(text.replace(/^\n/, ""), url).map((r) => ({ ...r, repository: url, repositoryOrder: order }));
}

/** Package records in the compact form apk-tools' solver tests use. */
function pkg(name: string, version: string, extra: Record<string, string> = {}): string {
  return (
    [
      `C:Q1${Buffer.from(`${name}-${version}`).toString("base64")}`,
      `P:${name}`,
      `V:${version}`,
      "S:1",
      "I:1",
      ...Object.entries(extra).map(([k, v]) => `${k}:${v}`),
    ].join("\n") + "\n\n"
  );
}

/** What apk prints as "Installing" lines, in order. */
function installs(lock: Lock): string[] {
  return installOrder(lock).map((e) => `${e.name} (${e.version})`);
}

function solveError(world: string[], packages: RepositoryPackage[]): string {
  try {
    resolvePackages(world, packages);
  } catch (err) {
    expect(err).toBeInstanceOf(SolverError);
    return (err as Error).message;
  }
  throw new Error(`world ${world.join(" ")} resolved, but a failure was expected`);
}

// apk-tools test/provides.repo
const PROVIDES_REPO = repo(`
C:Q1EyN5AdpAOBJWKMR89pp/C66o+OE=
P:libfoo
V:1
S:1
I:1
p:so:foo.so.1=1.0

C:Q1EyN5AdpAOBJWKMR89pp/C66o+FE=
P:libfoo
V:2
S:1
I:1
p:so:foo.so.2=1.0

C:Q1eVpkasfqZAukAXFYbgwt4xAMZWU=
P:app
V:2
S:1
I:1
D:so:foo.so.1

C:Q1eVpsasfqZAukAXFYbgwt4xAMZWX=
P:app2
V:2
S:1
I:1
D:so:foo.so.2

C:Q1EyN5AdpAOBJWKMR89ppC66EEEEj=
P:mymailreader
V:0.1
S:1
I:1

C:Q1EyN5AdpAOBJWKMR89pp/C66FFFF=
P:mymailreader
V:1
S:1
I:1
p:mail-reader
k:1

C:Q1eVpkasfqZAukAXFYbgwt4xAEEEe=
P:mailreadplus
V:1
S:1
I:1
p:mail-reader
k:2

C:Q1EyN5AdpAOBJWKMR89pp/C77FFFF=
P:server-a
V:1
S:1
I:1
p:theservice=1

C:Q1eVpkasfqZAukAXFYbgwt444EEEe=
P:server-b
V:1
S:1
I:1
p:theservice=2

C:Q1eVpkasfqZAukAXFYbgwt444Edde=
P:selfconflicting
V:1
S:1
I:1
p:selfprovided=2
p:selfprovided=3

C:Q1EyN5AdpAOBJWKMR89ppC66aaaaj=
P:conflicted-provider-a
V:0.1
S:1
I:1
p:conflicted-provider

C:Q1EyN5AdpAOBJWKMR89ppC66bbbbj=
P:conflicted-provider-b
V:0.1
S:1
I:1
p:conflicted-provider conflicted-provider-2

C:Q1EyN5AdpAOBJWKMR89ppC66ccccj=
P:conflicted-dep
V:0.1
S:1
I:1
D:conflicted-provider

C:Q1EyN5AdpAOBJWKMR89ppC66ddddj=
P:conflicted-parent
V:0.1
S:1
I:1
D:conflicted-dep

C:Q1Eyd5AdpAOBJWKMR89ppC66bbbbj=
P:self-provide
V:0.1
S:1
I:1
p:self-provide

C:Q1EyN5AdpAOBJWKMR89ppC66eeeej=
P:conflicted-dep-2
V:0.1
S:1
I:1
D:conflicted-provider-2

C:Q1inqy40xXhjHaXUlG+qIshN+TIvA=
P:pulseaudio-alsa
V:1
S:1
I:1
k:10

c:a79b3f751d72fd4bdb6729139660d0b4f5b87a33
P:pulseaudio
V:1
S:1
I:1
k:10

C:Q1FAFBeAhWPV1XXEdoW+TSjrUghxU=
P:pipewire-pulse
V:1
S:1
I:1
k:1
p:pulseaudio=1 pulseaudio-alsa=1
`);

/** apk's report for the virtual name conflicted-provider, whose two providers have no provider_priority. */
function conflictedProvider(requiredBy: string): string {
  return `ERROR: unable to select packages:
  conflicted-provider (virtual):
    note: please select one of the 'provided by'
          packages explicitly
    provided by: conflicted-provider-a
                 conflicted-provider-b
    required by: ${requiredBy}`;
}

describe("apk-tools solver tests on provides.repo", () => {
  test.each([
    ["provides1", ["app"], ["libfoo (1)", "app (2)"]],
    ["provides2", ["mail-reader"], ["mailreadplus (1)"]],
    ["provides3", ["mail-reader", "mymailreader"], ["mymailreader (1)"]],
    ["provides4", ["mymailreader", "mailreadplus"], ["mailreadplus (1)", "mymailreader (1)"]],
    ["provides8", ["mail-reader", "mailreadplus"], ["mailreadplus (1)"]],
    ["provides13", ["pulseaudio", "pulseaudio-alsa"], ["pulseaudio (1)", "pulseaudio-alsa (1)"]],
  ])("%s: add %j", (_name, world, expected) => {
    expect(installs(resolvePackages(world, PROVIDES_REPO))).toEqual(expected);
  });

  test.each([
    [
      "provides5",
      ["server-a", "server-b"],
      `ERROR: unable to select packages:
  server-a-1:
    conflicts: server-b-1[theservice=1]
    satisfies: world[server-a]
  server-b-1:
    conflicts: server-a-1[theservice=2]
    satisfies: world[server-b]`,
    ],
    [
      "provides6",
      ["app", "app2"],
      `ERROR: unable to select packages:
  libfoo-1:
    conflicts: libfoo-2
    satisfies: app-2[so:foo.so.1]
  libfoo-2:
    conflicts: libfoo-1
    satisfies: app2-2[so:foo.so.2]`,
    ],
    [
      "provides7",
      ["selfconflicting"],
      `ERROR: unable to select packages:
  selfconflicting-1:
    conflicts: selfconflicting-1[selfprovided=2]
               selfconflicting-1[selfprovided=3]
    satisfies: world[selfconflicting]`,
    ],
    ["provides9", ["conflicted-provider"], conflictedProvider("world[conflicted-provider]")],
    ["provides10", ["conflicted-dep"], conflictedProvider("conflicted-dep-0.1[conflicted-provider]")],
    ["provides11", ["conflicted-parent"], conflictedProvider("conflicted-dep-0.1[conflicted-provider]")],
    [
      "provides12",
      ["self-provide"],
      `ERROR: unable to select packages:
  self-provide-0.1:
    conflicts: self-provide-0.1[self-provide]
    satisfies: world[self-provide]`,
    ],
  ])("%s: add %j fails like apk", (_name, world, expected) => {
    expect(solveError(world, PROVIDES_REPO)).toBe(expected);
  });
});

describe("apk-tools installif8", () => {
  const r = repo(pkg("foo", "1", { i: "bar=1 !baz" }) + pkg("bar", "1") + pkg("baz", "1"));
  test("install_if with a conflict condition joins when the condition holds", () => {
    expect(installs(resolvePackages(["bar"], r))).toEqual(["bar (1)", "foo (1)"]);
  });
  test("install_if does not join when its conflict condition fails", () => {
    expect(installs(resolvePackages(["bar", "baz"], r))).toEqual(["bar (1)", "baz (1)"]);
  });
});

describe("solver rules", () => {
  test("an unknown package fails naming the chain", () => {
    expect(solveError(["foo"], repo(pkg("bar", "1")))).toBe(
      "ERROR: unable to select packages:\n  foo (no such package):\n    required by: world[foo]",
    );
    expect(solveError(["a"], repo(pkg("a", "1", { D: "b" }) + pkg("b", "1", { D: "missing>=2" })))).toBe(
      "ERROR: unable to select packages:\n  missing (no such package):\n    required by: b-1[missing>=2]",
    );
  });

  test("an unsatisfiable version says what it breaks", () => {
    expect(solveError(["a>5"], repo(pkg("a", "1") + pkg("a", "2")))).toBe(
      "ERROR: unable to select packages:\n  a-2:\n    breaks: world[a>5]",
    );
  });

  test("the highest version wins, constraints narrow it, ~ matches a prefix", () => {
    const r = repo(pkg("a", "1.2.3-r0") + pkg("a", "1.10-r0") + pkg("a", "1.2.10-r1") + pkg("a", "2.0_rc1-r0"));
    expect(resolvePackages(["a"], r).packages.map((p) => p.version)).toEqual(["2.0_rc1-r0"]);
    expect(resolvePackages(["a<2"], r).packages.map((p) => p.version)).toEqual(["1.10-r0"]);
    expect(resolvePackages(["a~1.2"], r).packages.map((p) => p.version)).toEqual(["1.2.10-r1"]);
    expect(resolvePackages(["a=1.2.3-r0"], r).packages.map((p) => p.version)).toEqual(["1.2.3-r0"]);
  });

  test("backtracks when the best candidate leads to a dead end", () => {
    const r = repo(
      pkg("a", "1", { D: "b c<2" }) +
        pkg("b", "2", { D: "c>=2" }) +
        pkg("b", "1", { D: "c" }) +
        pkg("c", "1") +
        pkg("c", "2"),
    );
    const lock = resolvePackages(["a"], r);
    expect(lock.packages.map((p) => `${p.name}-${p.version}`)).toEqual(["a-1", "b-1", "c-1"]);
    expect(installs(lock)).toEqual(["c (1)", "b (1)", "a (1)"]);
  });

  test("conflicts: !name keeps a package out", () => {
    const r = repo(pkg("a", "1", { D: "!b" }) + pkg("c", "2", { D: "b" }) + pkg("c", "1") + pkg("b", "1"));
    expect(resolvePackages(["a", "c"], r).packages.map((p) => `${p.name}-${p.version}`)).toEqual(["a-1", "c-1"]);
    expect(solveError(["a", "b"], r)).toBe(
      "ERROR: unable to select packages:\n  b-1:\n    breaks: a-1[!b]\n    satisfies: world[b]",
    );
    expect(resolvePackages(["a", "!d"], r).world).toEqual(["a", "!d"]);
  });

  test("so:, cmd: and pc: names resolve through versioned provides, highest provided version first", () => {
    const r = repo(
      pkg("musl", "1.2.5-r0", { p: "so:libc.musl-x86_64.so.1=1" }) +
        pkg("tool", "1", { D: "so:libc.musl-x86_64.so.1 cmd:helper pc:zlib>=1.3" }) +
        pkg("helper-old", "1", { p: "cmd:helper=1" }) +
        pkg("helper-new", "1", { p: "cmd:helper=2" }) +
        pkg("zlib-dev", "1.3.1-r0", { p: "pc:zlib=1.3.1" }),
    );
    expect(installs(resolvePackages(["tool"], r))).toEqual([
      "musl (1.2.5-r0)",
      "helper-new (1)",
      "zlib-dev (1.3.1-r0)",
      "tool (1)",
    ]);
  });

  test("provider_priority decides between equal versions; an unversioned provide without it is not auto-selected", () => {
    const r = repo(
      pkg("sh-a", "1", { p: "/bin/sh", k: "10" }) +
        pkg("sh-b", "1", { p: "/bin/sh", k: "20" }) +
        pkg("v1", "1", { p: "virt" }),
    );
    expect(resolvePackages(["/bin/sh"], r).packages.map((p) => p.name)).toEqual(["sh-b"]);
    expect(solveError(["virt"], r)).toContain("virt (virtual):");
    expect(resolvePackages(["virt", "v1"], r).packages.map((p) => p.name)).toEqual(["v1"]);
  });

  test("the earlier repository wins a tie", () => {
    const text = pkg("a", "1").replace(/^C:.*$/m, "C:Q1second");
    const both = [...repo(text, 1, "https://second"), ...repo(pkg("a", "1"), 0, "https://first")];
    expect(resolvePackages(["a"], both).packages[0]!.repository).toBe("https://first");
  });

  test("an unknown upper-case field makes a package uninstallable; a lower-case one is ignored", () => {
    const r = repo(pkg("a", "2", { X: "future" }) + pkg("a", "1", { x: "ignored" }));
    expect(resolvePackages(["a"], r).packages[0]!.version).toBe("1");
    expect(solveError(["a>1"], r)).toContain("uninstallable: unknown field X");
  });

  test("a malformed dependency makes a package uninstallable", () => {
    const r = repo(pkg("a", "2", { D: "b=not-a-version" }) + pkg("a", "1") + pkg("b", "1"));
    expect(resolvePackages(["a"], r).packages.map((p) => `${p.name}-${p.version}`)).toEqual(["a-1"]);
  });

  test("install_if joins only when every condition holds, and brings its dependencies", () => {
    const r = repo(
      pkg("app", "1") +
        pkg("lang", "1") +
        pkg("app-lang", "1", { i: "app lang", D: "extra" }) +
        pkg("extra", "1") +
        pkg("app-doc", "1", { i: "app docs" }),
    );
    expect(resolvePackages(["app"], r).packages.map((p) => p.name)).toEqual(["app"]);
    expect(installs(resolvePackages(["app", "lang"], r))).toEqual(["app (1)", "lang (1)", "extra (1)", "app-lang (1)"]);
  });

  test("an install_if package whose dependencies cannot be met stays out", () => {
    const r = repo(pkg("app", "1") + pkg("app-extra", "1", { i: "app", D: "nowhere" }));
    expect(resolvePackages(["app"], r).packages.map((p) => p.name)).toEqual(["app"]);
  });

  test("arch filter keeps the requested arch and noarch", () => {
    const r = repo(
      pkg("a", "2", { A: "aarch64" }) + pkg("a", "1", { A: "x86_64", D: "b" }) + pkg("b", "1", { A: "noarch" }),
    );
    expect(
      resolvePackages(["a"], r, { arch: "x86_64" }).packages.map((p) => `${p.name}-${p.version}-${p.arch}`),
    ).toEqual(["a-1-x86_64", "b-1-noarch"]);
  });

  test("the lock is deterministic whatever the input order", () => {
    const text =
      pkg("a", "1", { D: "b c" }) +
      pkg("b", "1", { D: "c" }) +
      pkg("c", "1", { D: "a" }) +
      pkg("c", "2", { D: "a" }) +
      pkg("d", "1");
    const r = repo(text);
    const first = resolvePackages(["d", "a"], r);
    const second = resolvePackages(["a", "d"], [...r].reverse());
    expect(JSON.stringify(second)).toBe(JSON.stringify(first));
    expect(first.world).toEqual(["a", "d"]);
    expect(first.packages.map((p) => p.name)).toEqual(["a", "b", "c", "d"]);
    // a -> b -> c -> a: the cycle is cut where the walk re-enters it, as apk does
    expect(installs(first)).toEqual(["c (2)", "b (1)", "a (1)", "d (1)"]);
  });

  test("bad world entries are refused naming the entry", () => {
    expect(() => resolvePackages(["a=1.0-x"], [])).toThrow(/world\[0\].*invalid version/);
    expect(() => resolvePackages(["<1"], [])).toThrow(/world\[0\].*name is empty/);
  });
});
