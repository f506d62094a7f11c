/**
 * OpenRC runlevels: a service is enabled by a symlink /etc/runlevels/<level>/<name> ->
 * /etc/init.d/<name>, which is all `rc-update add` does.
 */
import { StagingRoot } from "../apk/staging-root";
import { RUNLEVELS, type Runlevel } from "./image-config";
import { FieldError } from "../ramroot-error";

export interface ServiceLinks {
  enabled: Record<Runlevel, string[]>;
  /** default services that no installed package provides */
  skipped: string[];
}

export function enableServices(
  root: string,
  services: Record<Runlevel, { name: string; required: boolean }[]>,
): ServiceLinks {
  const enabled = {} as Record<Runlevel, string[]>;
  const skipped: string[] = [];
  const staging = new StagingRoot(root, "services");
  for (const level of RUNLEVELS) {
    enabled[level] = [];
    for (const { name, required } of services[level]) {
      if (!staging.exists(`etc/init.d/${name}`)) {
        if (required) {
          throw new FieldError(
            `services.${level}`,
            `"${name}" has no /etc/init.d/${name} in the image; install the package that provides it or drop it from services`,
          );
        }
        skipped.push(`${level}/${name}`);
        continue;
      }
      staging.symlink(`etc/runlevels/${level}/${name}`, `/etc/init.d/${name}`);
      enabled[level].push(name);
    }
  }
  return { enabled, skipped };
}
