/**
 * Every HTTP download goes through here, with one policy: a timeout per attempt, retries with
 * exponential backoff for what may pass (network errors, timeouts, truncated bodies, 429, 5xx),
 * an immediate failure for the rest, conditional requests (ETag / Last-Modified) when the caller
 * has a cached copy, and a size limit. Errors name the URL.
 */
import type { FileHandle } from "node:fs/promises";

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

/**
 * Hands the body to `write` chunk by chunk (each awaited) within the size limit; returns its
 * length. A body shorter than its Content-Length is a truncated download (retried).
 */
async function streamBody(
  res: Response,
  url: string,
  maxBytes: number,
  write: (chunk: Buffer) => void | Promise<void>,
): Promise<number> {
  const declared = res.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) {
    await res.body?.cancel();
    throw new HttpError(
      url,
      `${url}: the body (${declared} bytes announced) is larger than the limit of ${maxBytes} bytes`,
    );
  }
  let total = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      total += chunk.length;
      if (total > maxBytes) {
        await res.body.cancel().catch(() => undefined);
        throw new HttpError(url, `${url}: the body is larger than the limit of ${maxBytes} bytes`);
      }
      await write(Buffer.from(chunk));
    }
  }
  if (declared !== null && res.headers.get("content-encoding") === null && Number(declared) !== total) {
    throw new Retryable(`truncated download: ${total} of ${declared} bytes`);
  }
  return total;
}

async function readBody(res: Response, url: string, maxBytes: number): Promise<Buffer> {
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
  consume: (res: Response, maxBytes: number) => Promise<T>,
): Promise<{ notModified: true } | { notModified: false; value: T; validators: HttpValidators }> {
  const attempts = opts.attempts ?? 3;
  const delay = opts.retryDelayMs ?? 250;
  const maxBytes = opts.maxBytes ?? 1 << 30;
  let lastError = "";
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) await sleep(delay * 2 ** (attempt - 2));
    try {
      const headers: Record<string, string> = { "user-agent": "ramroot" };
      if (opts.validators?.etag) headers["if-none-match"] = opts.validators.etag;
      if (opts.validators?.lastModified) headers["if-modified-since"] = opts.validators.lastModified;
      const res = await fetch(url, {
        headers,
        signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
        redirect: "follow",
      });
      if (res.status === 304 && opts.validators) {
        await res.body?.cancel();
        return { notModified: true };
      }
      if (res.status === 429 || res.status >= 500) {
        await res.body?.cancel();
        throw new Retryable(`HTTP ${res.status} ${res.statusText}`);
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw new HttpError(url, `${url}: HTTP ${res.status} ${res.statusText}`, res.status);
      }
      const value = await consume(res, maxBytes);
      const validators: HttpValidators = {};
      const etag = res.headers.get("etag");
      const lastModified = res.headers.get("last-modified");
      if (etag) validators.etag = etag;
      if (lastModified) validators.lastModified = lastModified;
      return { notModified: false, value, validators };
    } catch (err) {
      if (err instanceof HttpError) throw err;
      const cause = (err as { cause?: { code?: string } }).cause;
      lastError = cause?.code ? `${(err as Error).message} (${cause.code})` : (err as Error).message;
      if (attempt < attempts) opts.onRetry?.(`${url}: attempt ${attempt}/${attempts} failed: ${lastError}; retrying`);
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
