/**
 * Imported first by ramroot's own entry points (the CLI, the provider plugin, the benchmark's
 * install), before anything else loads: V8's young generation then stays at its initial 1 MiB
 * semi-spaces instead of growing to 8-16 MiB ones. Loading the modules (zod, yaml, the Pulumi
 * SDK) and an install's short-lived garbage (tar headers, pieces, manifest strings) made V8 grow
 * it, and V8 does not give those pages back: that was ~14 MiB of an install's ~115 MiB peak RSS
 * (bench/analysis.md, "Install memory"), for no measurable CPU (what survives a scavenge here
 * is small). It is V8's own sizing knob, set for ramroot's own process only: the flag is read
 * each time the young generation would grow, so setting it at run time takes effect (the size
 * caps, `--max-semi-space-size`, are read once at startup and would need a command-line flag).
 */
import * as v8 from "node:v8";

v8.setFlagsFromString("--semi-space-growth-factor=1");
