/**
 * OpenRC runlevels: a service is enabled by a symlink /etc/runlevels/<level>/<name> ->
 * /etc/init.d/<name>, which is all `rc-update add` does.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { RUNLEVELS, type Runlevel } from "./image-config";

export interface ServiceLinks {
  enabled: Record<Runlevel, string[]>;
  /** default services that no installed package provides */
  skipped: string[];
}

export function enableServices(root: string, services: Record<Runlevel, { name: string; required: boolean }[]>): ServiceLinks {
  const enabled = {} as Record<Runlevel, string[]>;
  const skipped: string[] = [];
  for (const level of RUNLEVELS) {
    enabled[level] = [];
    for (const { name, required } of services[level]) {
      const script = path.join(root, "etc", "init.d", name);
      if (!fs.existsSync(script)) {
        if (required) {
          throw new Error(`services.${level}: "${name}" has no /etc/init.d/${name} in the image; install the package that provides it or drop it from services`);
        }
        skipped.push(`${level}/${name}`);
        continue;
      }
      const dir = path.join(root, "etc", "runlevels", level);
      fs.mkdirSync(dir, { recursive: true });
      const link = path.join(dir, name);
      fs.rmSync(link, { force: true });
      fs.symlinkSync(`/etc/init.d/${name}`, link);
      enabled[level].push(name);
    }
  }
  return { enabled, skipped };
}
