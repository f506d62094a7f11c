import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { HttpError, httpGet, httpGetBody, httpGetToFile } from "../../../provider/http-get";

let server: http.Server;
let base: string;
const hits: Record<string, number> = {};
const seenHeaders: Record<string, http.IncomingHttpHeaders> = {};

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = req.url ?? "/";
    hits[url] = (hits[url] ?? 0) + 1;
    seenHeaders[url] = req.headers;
    if (url === "/etag") {
      if (req.headers["if-none-match"] === '"v1"') return void res.writeHead(304).end();
      return void res.writeHead(200, { etag: '"v1"', "last-modified": "Mon, 01 Jan 2024 00:00:00 GMT" }).end("body-v1");
    }
    if (url === "/flaky") {
      if ((hits[url] ?? 0) < 3) return void res.writeHead(503).end("busy");
      return void res.writeHead(200).end("finally");
    }
    if (url === "/missing") return void res.writeHead(404).end("no");
    if (url === "/slow") return void setTimeout(() => res.writeHead(200).end("late"), 2000).unref();
    if (url === "/big") return void res.writeHead(200).end(Buffer.alloc(4096));
    res.writeHead(500).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

test("conditional requests: validators sent, 304 reported as not modified", async () => {
  const first = await httpGet(`${base}/etag`);
  if (first.notModified) throw new Error("expected a body");
  expect(first.body.toString()).toBe("body-v1");
  expect(first.validators).toEqual({ etag: '"v1"', lastModified: "Mon, 01 Jan 2024 00:00:00 GMT" });
  const again = await httpGet(`${base}/etag`, { validators: first.validators });
  expect(again).toEqual({ notModified: true });
  expect(seenHeaders["/etag"]?.["if-modified-since"]).toBe("Mon, 01 Jan 2024 00:00:00 GMT");
});

test("5xx is retried with backoff; 404 fails at once naming the URL", async () => {
  const retries: string[] = [];
  expect(
    (await httpGetBody(`${base}/flaky`, { attempts: 3, retryDelayMs: 10, onRetry: (m) => retries.push(m) })).toString(),
  ).toBe("finally");
  expect(retries).toHaveLength(2);
  await expect(httpGetBody(`${base}/missing`, { retryDelayMs: 10 })).rejects.toThrow(
    new HttpError(`${base}/missing`, `${base}/missing: HTTP 404 Not Found`),
  );
  expect(hits["/missing"]).toBe(1);
});

test("a timeout per attempt and a size limit", async () => {
  await expect(httpGetBody(`${base}/slow`, { timeoutMs: 200, attempts: 2, retryDelayMs: 10 })).rejects.toThrow(
    /slow: cannot be reached after 2 attempts/,
  );
  await expect(httpGetBody(`${base}/big`, { maxBytes: 1000 })).rejects.toThrow(/larger than the limit of 1000 bytes/);
});

test("an HTTP/1.0 body ended by closing the connection while the download waits for the disk arrives whole (Node's fetch asserted and ended the process here)", async () => {
  const body = Buffer.alloc(8 << 20, 7);
  const raw = net.createServer((s) => {
    s.on("error", () => {});
    s.once("data", () => {
      s.write("HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n");
      s.end(body);
    });
  });
  await new Promise<void>((r) => raw.listen(0, "127.0.0.1", r));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-http10-"));
  try {
    for (let round = 0; round < 3; round++) {
      const handle = await fs.promises.open(path.join(dir, `out-${round}`), "w+");
      // A slow disk: every write waits, so the body is paused when the server closes.
      const slow = new Proxy(handle, {
        get: (target, prop, receiver) =>
          prop === "write"
            ? async (...args: Parameters<typeof handle.write>) => {
                await new Promise((r) => setTimeout(r, 5));
                return target.write(...args);
              }
            : Reflect.get(target, prop, receiver),
      });
      try {
        const url = `http://127.0.0.1:${(raw.address() as AddressInfo).port}/x`;
        expect(await httpGetToFile(url, slow, { attempts: 1 })).toBe(body.length);
      } finally {
        await handle.close();
      }
    }
  } finally {
    raw.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
