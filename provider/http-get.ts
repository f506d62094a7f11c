/**
 * Every HTTP download goes through here, with one policy: a timeout per attempt, retries with
 * exponential backoff for what may pass (network errors, timeouts, truncated bodies, 429, 5xx),
 * an immediate failure for the rest, conditional requests (ETag / Last-Modified) when the caller
 * has a cached copy, and a size limit. Errors name the URL.
 *
 * Node's own http/https clients, not fetch: the undici inside Node's fetch asserts (and ends the
 * process) when a server closes the connection to end a body the reader has paused, as every
 * HTTP/1.0 server without Content-Length does while a download waits for the disk.
 */
import type { FileHandle } from "node:fs/promises";
import * as http from "node:http";
import * as https from "node:https";

export interface HttpValidators {
  etag?: string;
  lastModified?: string;
}

export interface HttpGetOptions {
  /** milliseconds per attempt (default 60 s) */
  timeoutMs?: number;
  /** attempts before giving up (default 3) */
  attempts?: number;
  /** the first backoff; doubled on each retry (default 250 ms) */
  retryDelayMs?: number;
  /** a cached copy's validators: the server may answer 304 Not Modified */
  validators?: HttpValidators;
  /** refuse a body larger than this many bytes (default 1 GiB) */
  maxBytes?: number;
  /** told about each failed attempt that will be retried */
  onRetry?: (message: string) => void;
}

export type HttpGetResult = { notModified: true } | { notModified: false; body: Buffer; validators: HttpValidators };

/** A download that failed for good; `url` is what was asked for. */
export class HttpError extends Error {
  constructor(
    readonly url: string,
    message: string,
    /** the HTTP status, when the server answered */
    readonly status?: number,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

class Retryable extends Error {}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Redirects followed at most (fetch's limit is 20; a repository needs one or two). */
const MAX_REDIRECTS = 10;

/** One answer: its status, headers and body (a stream that must be read or destroyed). */
interface Answer {
  url: string;
  status: number;
  statusText: string;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
}

/** One GET, redirects followed; `signal` ends it whole (connection, body) when it fires. */
function getOnce(url: string, headers: Record<string, string>, signal: AbortSignal, hops = 0): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      reject(new HttpError(url, `${url}: not a URL`));
      return;
    }
    if (target.protocol !== "http:" && target.protocol !== "https:") {
      reject(new HttpError(url, `${url}: only http:// and https:// are fetched`));
      return;
    }
    const get = target.protocol === "https:" ? https.get : http.get;
    const req = get(target, { headers, signal }, (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if ([301, 302, 303, 307, 308].includes(status) && location !== undefined) {
        res.resume();
        if (hops >= MAX_REDIRECTS) {
          reject(new HttpError(url, `${url}: more than ${MAX_REDIRECTS} redirects`));
          return;
        }
        getOnce(new URL(location, target).href, headers, signal, hops + 1).then(resolve, reject);
        return;
      }
      resolve({ url, status, statusText: res.statusMessage ?? "", headers: res.headers, body: res });
    });
    req.on("error", reject);
  });
}

/**
 * Hands the body to `write` chunk by chunk (each awaited) within the size limit; returns its
 * length. A body shorter than its Content-Length is a truncated download (retried); so is one the
 * server cut (the connection closed or reset mid-body).
 */
async function streamBody(
  res: Answer,
  url: string,
  maxBytes: number,
  write: (chunk: Buffer) => void | Promise<void>,
): Promise<number> {
  const declared = res.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBytes) {
    res.body.destroy();
    throw new HttpError(
      url,
      `${url}: the body (${declared} bytes announced) is larger than the limit of ${maxBytes} bytes`,
    );
  }
  let total = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) {
        res.body.destroy();
        throw new HttpError(url, `${url}: the body is larger than the limit of ${maxBytes} bytes`);
      }
      await write(chunk);
    }
  } catch (err) {
    if (err instanceof HttpError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ECONNRESET" || (err as Error).message === "aborted")
      throw new Retryable(
        `the connection closed after ${total} bytes${declared !== undefined ? ` of ${declared}` : ""}`,
      );
    throw err;
  }
  if (declared !== undefined && Number(declared) !== total) {
    throw new Retryable(`truncated download: ${total} of ${declared} bytes`);
  }
  return total;
}

async function readBody(res: Answer, url: string, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await streamBody(res, url, maxBytes, (chunk) => {
    chunks.push(chunk);
  });
  return Buffer.concat(chunks);
}

/** GETs `url` under the policy above, `consume` reading a 200 answer's body (again on each retry). */
async function request<T>(
  url: string,
  opts: HttpGetOptions,
  consume: (res: Answer, maxBytes: number) => Promise<T>,
): Promise<{ notModified: true } | { notModified: false; value: T; validators: HttpValidators }> {
  const attempts = opts.attempts ?? 3;
  const delay = opts.retryDelayMs ?? 250;
  const maxBytes = opts.maxBytes ?? 1 << 30;
  let lastError = "";
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) await sleep(delay * 2 ** (attempt - 2));
    const headers: Record<string, string> = { "user-agent": "ramroot" };
    if (opts.validators?.etag) headers["if-none-match"] = opts.validators.etag;
    if (opts.validators?.lastModified) headers["if-modified-since"] = opts.validators.lastModified;
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const signal = AbortSignal.timeout(timeoutMs);
    let res: Answer | undefined;
    try {
      res = await getOnce(url, headers, signal);
      if (res.status === 304 && opts.validators) return { notModified: true };
      if (res.status === 429 || res.status >= 500) throw new Retryable(`HTTP ${res.status} ${res.statusText}`);
      if (res.status < 200 || res.status > 299)
        throw new HttpError(url, `${url}: HTTP ${res.status} ${res.statusText}`, res.status);
      const value = await consume(res, maxBytes);
      const validators: HttpValidators = {};
      const etag = res.headers.etag;
      const lastModified = res.headers["last-modified"];
      if (etag) validators.etag = etag;
      if (lastModified) validators.lastModified = lastModified;
      return { notModified: false, value, validators };
    } catch (err) {
      if (err instanceof HttpError) throw err;
      const e = err as NodeJS.ErrnoException;
      lastError = signal.aborted
        ? `no complete answer within ${timeoutMs} ms`
        : e.code && !e.message.includes(e.code)
          ? `${e.message} (${e.code})`
          : e.message;
      if (attempt < attempts) opts.onRetry?.(`${url}: attempt ${attempt}/${attempts} failed: ${lastError}; retrying`);
    } finally {
      // Whatever was not read (an error answer, a refused body) is let go with its connection.
      res?.body.destroy();
    }
  }
  throw new HttpError(url, `${url}: cannot be reached after ${attempts} attempts: ${lastError}`);
}

/** GETs `url` under the policy above. */
export async function httpGet(url: string, opts: HttpGetOptions = {}): Promise<HttpGetResult> {
  const result = await request(url, opts, (res, maxBytes) => readBody(res, url, maxBytes));
  return result.notModified ? result : { notModified: false, body: result.value, validators: result.validators };
}

/**
 * GETs `url` unconditionally into `file` (an open handle, emptied before each attempt), never
 * holding the body in memory; returns its length.
 */
export async function httpGetToFile(
  url: string,
  file: FileHandle,
  opts: Omit<HttpGetOptions, "validators"> = {},
): Promise<number> {
  const result = await request(url, opts, async (res, maxBytes) => {
    await file.truncate(0);
    let at = 0;
    return streamBody(res, url, maxBytes, async (chunk) => {
      for (let done = 0; done < chunk.length;) {
        const { bytesWritten } = await file.write(chunk, done, chunk.length - done, at);
        done += bytesWritten;
        at += bytesWritten;
      }
    });
  });
  if (result.notModified) throw new HttpError(url, `${url}: answered 304 Not Modified to an unconditional request`);
  return result.value;
}

/** GETs `url` unconditionally and returns the body. */
export async function httpGetBody(url: string, opts: Omit<HttpGetOptions, "validators"> = {}): Promise<Buffer> {
  const result = await httpGet(url, opts);
  if (result.notModified) throw new HttpError(url, `${url}: answered 304 Not Modified to an unconditional request`);
  return result.body;
}
