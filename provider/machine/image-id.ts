/**
 * How a booted machine knows which image it runs and whether this boot is a trial: ramroot puts
 * `ramroot.image=<id>` on every entry's kernel command line and `ramroot.trial=1` on the trial
 * entry only; the machine's image-id.sh publishes them under /run/ramroot, where a deploy that
 * waits for the machine (boot/trial.ts) and `ramroot status` read them.
 */

/** The kernel parameter naming the image an entry boots (every entry ramroot writes sets it). */
export const IMAGE_PARAMETER = "ramroot.image";
/**
 * The kernel parameter naming the slot an entry boots, on an entry whose initrds are layers in the
 * partition's shared store (slot.ts slotEntry): no path on its command line names the slot then
 * (systemd-boot adds `initrd=\layers\...` for each), so the running slot is read from this.
 */
export const SLOT_PARAMETER = "ramroot.slot";
/** The kernel parameter that marks a trial boot (only the trial entry sets it). */
export const TRIAL_PARAMETER = "ramroot.trial";
/** Where the running machine publishes its image id (image-id.sh). */
export const IMAGE_ID_PATH = "/run/ramroot/image-id";
/** Where the running machine publishes the trial it is on, when it is (image-id.sh). */
export const TRIAL_PATH = "/run/ramroot/trial";

/** The command line parameter that names the image an entry boots. */
export function imageParameter(imageId: string): string {
  return `${IMAGE_PARAMETER}=${imageId}`;
}

/** The trial entry's command line: the entry's own, marked as a trial. */
export function trialAppend(append: string): string {
  return `${append} ${TRIAL_PARAMETER}=1`.trim();
}
