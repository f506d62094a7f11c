/**
 * One plan per operation: the provider process lives for one engine operation (a preview, an
 * update, a refresh), and within it the A/B component and AlpineImage's check and create all
 * need the same plan. Planning reads and verifies repository indexes and hashes the overlay,
 * so it is done once per distinct config and the result shared.
 */
import { canonicalJson, planImage, type PlanOptions, type ResolvedPlan } from "./plan";
import type { ImageConfig } from "./image-config";

const plans = new Map<string, Promise<ResolvedPlan>>();

/** The plan of `config`, computed on the first call in this process; a failure is not kept, so a retry plans again. */
export function planImageOnce(config: ImageConfig, opts: PlanOptions): Promise<ResolvedPlan> {
  const key = canonicalJson({ config, baseDir: opts.baseDir });
  const known = plans.get(key);
  if (known) return known;
  const planned = planImage(config, opts);
  plans.set(key, planned);
  planned.catch(() => plans.delete(key));
  return planned;
}
