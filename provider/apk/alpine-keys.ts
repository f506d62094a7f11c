/**
 * Trust for Alpine's own mirrors. The public keys are not shipped in this repository: their
 * SHA-256 fingerprints are pinned here, and on first use the key files are fetched from
 * alpinelinux.org and kept only when they match the pin. Keys a user gives are always used.
 */
import { writeFileAtomicSync } from "../atomic-file";
import { cacheDir } from "../cache-dir";
import { httpGetBody } from "../http-get";
import { sha256Hex } from "../file-hash";
import * as fs from "node:fs";
import * as path from "node:path";
import { FieldError, TrustError } from "../ramroot-error";

export const ALPINE_KEYS_URL = "https://alpinelinux.org/keys";

/** sha256 of each `.rsa.pub` file, per architecture. */
export const ALPINE_KEY_PINS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  x86_64: {
    "alpine-devel@lists.alpinelinux.org-4a6a0840.rsa.pub":
      "9c102bcc376af1498d549b77bdbfa815ae86faa1d2d82f040e616b18ef2df2d4",
    "alpine-devel@lists.alpinelinux.org-5261cecb.rsa.pub":
      "12f899e55a7691225603d6fb3324940fc51cd7f133e7ead788663c2b7eecb00c",
    "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub":
      "207e4696d3c05f7cb05966aee557307151f1f00217af4143c1bcaf33b8df733f",
  },
  aarch64: {
    "alpine-devel@lists.alpinelinux.org-58199dcc.rsa.pub":
      "73867d92083f2f8ab899a26ccda7ef63dfaa0032a938620eda605558958a8041",
    "alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub":
      "d11f6b21c61b4274e182eb888883a8ba8acdbf820dcc7a6d82a7d9fc2fd2836d",
  },
};

/**
 * Alpine's keys for `arch` (file name -> PEM), fetched once and checked against the pins. A
 * key whose bytes do not match its pin is refused with both fingerprints in the message.
 */
export async function alpineKeys(
  arch: string,
  opts: { cacheDir?: string; baseUrl?: string } = {},
): Promise<Map<string, Buffer>> {
  const pins = ALPINE_KEY_PINS[arch];
  if (!pins)
    throw new FieldError(
      "arch",
      `no pinned Alpine keys for "${arch}"; expected one of ${Object.keys(ALPINE_KEY_PINS).join(", ")}`,
    );
  const keyDir = opts.cacheDir ?? cacheDir("alpine-keys");
  fs.mkdirSync(keyDir, { recursive: true });
  const keys = new Map<string, Buffer>();
  for (const [name, pin] of Object.entries(pins)) {
    const cached = path.join(keyDir, name);
    let data: Buffer | undefined = fs.existsSync(cached) ? fs.readFileSync(cached) : undefined;
    if (data === undefined || sha256Hex(data) !== pin) {
      const url = `${opts.baseUrl ?? ALPINE_KEYS_URL}/${name}`;
      try {
        data = await httpGetBody(url, { timeoutMs: 30_000, maxBytes: 1 << 16 });
      } catch (err) {
        throw new TrustError(
          `cannot fetch Alpine key: ${(err as Error).message}`,
          "give the keys yourself (keys input) when offline",
        );
      }
      const got = sha256Hex(data);
      if (got !== pin)
        throw new TrustError(`Alpine key ${url} has sha256 ${got}, but the pinned fingerprint is ${pin}: refusing it`);
      writeFileAtomicSync(cached, data);
    }
    keys.set(name, data);
  }
  return keys;
}
