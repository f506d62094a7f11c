/**
 * A repository mirror that misbehaves at the HTTP level, served by a raw TCP server so that every
 * byte on the wire is the test's: HTTP/1.0 bodies ended by closing the connection, a connection
 * closed early, an endless body, a Content-Length that is not the body's. `ramroot build` either
 * succeeds (HTTP/1.0 is HTTP) or fails with one error line naming the URL; never a crash or a
 * stack trace.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { compileCli, type CompiledCli } from "../fixtures/ramroot-cli";
import { hostileBuilds, type HostileBuilds } from "../fixtures/hostile-builds";
import { buildRepo, signingKey, type SigningKey } from "../fixtures/hostile-repo";

jest.setTimeout(600_000);

let cli: CompiledCli;
let work: string;
let key: SigningKey;
let builds: HostileBuilds;
let repo: string;

beforeAll(async () => {
  cli = await compileCli();
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-sec-mirror-"));
  key = signingKey(path.join(work, "key"));
  builds = hostileBuilds(cli, key);
  repo = buildRepo(work, key, [
    // large enough that the body arrives in many pieces while the download waits for the disk
    { spec: { name: "payload", version: "1.0-r0" }, files: { "usr/share/payload": randomText(6 << 20) } },
  ]);
});
afterAll(() => {
  cli?.dispose();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function randomText(bytes: number): string {
  let out = "";
  let x = 12345;
  while (out.length < bytes) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out += x.toString(36);
  }
  return out.slice(0, bytes);
}

type Misbehaviour = "http10" | "early-close" | "endless" | "short-length" | "long-length";

/** Serves the repository's files the way `how` says; resolves to its URL and a closer. */
async function mirror(how: Misbehaviour): Promise<{ url: string; close: () => void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    s.once("data", (request) => {
      const wanted = /^GET (\S+) /.exec(request.toString("latin1"))?.[1] ?? "/";
      const file = path.join(repo, decodeURIComponent(wanted));
      if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
        s.end("HTTP/1.0 404 Not Found\r\n\r\n");
        return;
      }
      const body = fs.readFileSync(file);
      if (how === "http10") {
        s.write("HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n");
        s.end(body);
      } else if (how === "early-close") {
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
        s.write(body.subarray(0, Math.floor(body.length / 2)));
        s.destroy();
      } else if (how === "endless") {
        s.write("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n");
        const chunk = Buffer.alloc(1 << 16, 0x41);
        const pump = () => {
          while (!s.destroyed && s.write(chunk));
        };
        s.on("drain", pump);
        pump();
      } else if (how === "short-length") {
        s.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length - 100}\r\n\r\n`), body]));
      } else {
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length + 100}\r\n\r\n`);
        s.end(body);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** The stderr lines that are not progress ("[ramroot] ...") nor /usr/bin/time's. */
function errorLines(stderr: string): string[] {
  return stderr
    .split("\n")
    .filter(
      (l) =>
        l.trim() !== "" && !l.startsWith("[ramroot]") && !l.startsWith("MAXRSS=") && !l.startsWith("Command exited"),
    );
}

test("an HTTP/1.0 mirror (bodies ended by closing the connection) serves a whole build, three times over", async () => {
  const server = await mirror("http10");
  try {
    for (let round = 0; round < 3; round++) {
      const dir = path.join(work, `http10-${round}`);
      fs.mkdirSync(dir, { recursive: true });
      const r = await builds.build(dir, builds.writeConfig(dir, { repositories: [server.url], packages: ["payload"] }));
      expect({ round, code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
      expect(r.stderr).not.toMatch(/AssertionError|\n\s+at /);
    }
  } finally {
    server.close();
  }
});

test.each([
  ["early-close", /cannot be reached after 3 attempts: the connection closed after \d+ bytes of \d+/],
  ["endless", /the body is larger than the limit of \d+ bytes/],
  ["short-length", /signature|not signed|checksum|corrupt|truncated|gzip/i],
  [
    "long-length",
    /cannot be reached after 3 attempts: the connection closed after \d+ bytes of \d+|truncated download/,
  ],
] as const)("a mirror whose answers are %s: one error line naming the URL, no crash", async (how, message) => {
  const server = await mirror(how);
  try {
    const dir = path.join(work, how);
    fs.mkdirSync(dir, { recursive: true });
    const r = await builds.build(dir, builds.writeConfig(dir, { repositories: [server.url], packages: ["payload"] }), [
      "--plan-only",
    ]);
    expect(r.code).not.toBe(0);
    const lines = errorLines(r.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(server.url);
    expect(lines[0]).toMatch(message);
    expect(r.maxRssKiB).toBeLessThan(300 * 1024);
  } finally {
    server.close();
  }
});
