/**
 * Resource ids of the boot-side resources, which are also what `pulumi import` takes:
 *
 *   local:/mnt/boot                          a mounted boot partition
 *   image:/srv/disk.img[?partition=N]        a FAT disk image (partition auto-detected without N)
 *   ssh:[user@]host[:port]:/media/boot[?knownHostsFile=F&sshConfigFile=C&strictHostKeyChecking=false]
 *
 * SyslinuxConfig's id is the target's; BootSlot's adds `#<slot>` (`image:/srv/disk.img#a`).
 * A private key is never part of an id: an imported ssh target is reached with the ssh agent
 * or ssh config until the program gives its key (a connection-only update).
 */
import * as path from "node:path";
import { parseTargetSpec, type TargetSpec } from "../boot/target";
import { FieldError } from "../ramroot-error";

const QUERY_FIELDS = ["knownHostsFile", "sshConfigFile", "strictHostKeyChecking"] as const;

export function formatTargetId(spec: TargetSpec): string {
  switch (spec.kind) {
    case "local":
      return `local:${path.resolve(spec.path)}`;
    case "image":
      return `image:${path.resolve(spec.path)}${spec.partition !== undefined ? `?partition=${spec.partition}` : ""}`;
    case "ssh": {
      const host = spec.host.includes(":") && !spec.host.startsWith("[") ? `[${spec.host}]` : spec.host;
      const query = new URLSearchParams();
      for (const field of QUERY_FIELDS) if (spec[field] !== undefined) query.set(field, String(spec[field]));
      const q = query.toString();
      return `ssh:${spec.user !== undefined ? `${spec.user}@` : ""}${host}${spec.port !== undefined ? `:${spec.port}` : ""}:${spec.path}${q ? `?${q}` : ""}`;
    }
  }
}

const ACCEPTED =
  "expected local:/path, image:/path/disk.img[?partition=N] or ssh:[user@]host[:port]:/path[?knownHostsFile=...], and #slot for a BootSlot";

/** Parses an id (or an import id) into a target spec and, for slots, the slot name. */
export function parseTargetId(id: string): { target: TargetSpec; slot?: string } {
  const hash = id.lastIndexOf("#");
  const slot = hash >= 0 ? id.slice(hash + 1) : undefined;
  const rest = hash >= 0 ? id.slice(0, hash) : id;
  const q = rest.indexOf("?");
  const location = q >= 0 ? rest.slice(0, q) : rest;
  const query = new URLSearchParams(q >= 0 ? rest.slice(q + 1) : "");
  const colon = location.indexOf(":");
  const kind = colon >= 0 ? location.slice(0, colon) : "";
  const where = location.slice(colon + 1);
  const fail = (why: string): never => {
    throw new FieldError("id", `got ${JSON.stringify(id)}; ${why}; ${ACCEPTED}`);
  };
  let spec: Record<string, unknown>;
  switch (kind) {
    case "local":
      spec = { kind, path: where };
      break;
    case "image": {
      const partition = query.get("partition");
      spec = { kind, path: where, ...(partition !== null ? { partition: Number(partition) } : {}) };
      break;
    }
    case "ssh": {
      const m = /^(?:([^@/]+)@)?(\[[^\]]+\]|[^:/[\]]+)(?::(\d+))?:(\/.*)$/.exec(where);
      if (!m) return fail("the ssh location is not [user@]host[:port]:/absolute/path");
      spec = {
        kind,
        host: m[2]!.replace(/^\[(.*)\]$/, "$1"),
        path: m[4]!,
        ...(m[1] !== undefined ? { user: m[1] } : {}),
        ...(m[3] !== undefined ? { port: Number(m[3]) } : {}),
      };
      for (const field of QUERY_FIELDS) {
        const value = query.get(field);
        if (value !== null) spec[field] = field === "strictHostKeyChecking" ? value !== "false" : value;
      }
      break;
    }
    default:
      return fail(`"${kind}" is not a target kind`);
  }
  return { target: parseTargetSpec(spec), ...(slot !== undefined ? { slot } : {}) };
}
