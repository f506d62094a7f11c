/**
 * Every HTTP download goes through here, with one policy: a timeout per attempt, retries with
 * exponential backoff for what may pass (network errors, timeouts, truncated bodies, 429, 5xx),
 * an immediate failure for the rest, conditional requests (ETag / Last-Modified) when the caller
 * has a cached copy, and a size limit. Errors name the URL.
 */

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

async function readBody(res: Response, url: string, maxBytes: number): Promise<Buffer> {
  const declared = res.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) {
    await res.body?.cancel();
    throw new HttpError(
      url,
      `${url}: the body (${declared} bytes announced) is larger than the limit of ${maxBytes} bytes`,
    );
  }
  const chunks: Buffer[] = [];
  let total = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      total += chunk.length;
      if (total > maxBytes) {
        await res.body.cancel().catch(() => undefined);
        throw new HttpError(url, `${url}: the body is larger than the limit of ${maxBytes} bytes`);
      }
      chunks.push(Buffer.from(chunk));
    }
  }
  const body = Buffer.concat(chunks);
  if (declared !== null && res.headers.get("content-encoding") === null && Number(declared) !== body.length) {
    throw new Retryable(`truncated download: ${body.length} of ${declared} bytes`);
  }
  return body;
}

/** GETs `url` under the policy above. */
export async function httpGet(url: string, opts: HttpGetOptions = {}): Promise<HttpGetResult> {
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
      const body = await readBody(res, url, maxBytes);
      const validators: HttpValidators = {};
      const etag = res.headers.get("etag");
      const lastModified = res.headers.get("last-modified");
      if (etag) validators.etag = etag;
      if (lastModified) validators.lastModified = lastModified;
      return { notModified: false, body, validators };
    } catch (err) {
      if (err instanceof HttpError) throw err;
      const cause = (err as { cause?: { code?: string } }).cause;
      lastError = cause?.code ? `${(err as Error).message} (${cause.code})` : (err as Error).message;
      if (attempt < attempts) opts.onRetry?.(`${url}: attempt ${attempt}/${attempts} failed: ${lastError}; retrying`);
    }
  }
  throw new HttpError(url, `${url}: cannot be reached after ${attempts} attempts: ${lastError}`);
}

/** GETs `url` unconditionally and returns the body. */
export async function httpGetBody(url: string, opts: Omit<HttpGetOptions, "validators"> = {}): Promise<Buffer> {
  const result = await httpGet(url, opts);
  if (result.notModified) throw new HttpError(url, `${url}: answered 304 Not Modified to an unconditional request`);
  return result.body;
}
