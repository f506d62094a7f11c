/** What one benchmark reports: tables of variants (one is the baseline of the ratios), notes. */
import type { VariantResult } from "./harness";

export interface ResultTable {
  caption: string;
  /** the label ratios are taken against */
  baseline: string;
  rows: VariantResult[];
  /** bytes of input every variant processed: adds a MB/s column */
  inputBytes?: number;
  /** show the output size column */
  showBytes?: boolean;
  /** add CPU and peak RSS ratios against the baseline (comparisons that judge them) */
  resourceRatios?: boolean;
  runs: number;
}

export interface SectionResult {
  id: string;
  title: string;
  /** what is measured and over what */
  intro: string;
  tables: ResultTable[];
  /** findings, explanations, plans */
  notes: string[];
  /** set when the section was measured in a partial run merged into RESULTS.md (BENCH_MERGE) */
  measured?: { date: string; command: string; loadBefore: number[]; loadAfter: number[] };
}

export interface BenchContext {
  /** rounds for cheap comparisons */
  runs: number;
  /** rounds for comparisons that take minutes per round */
  heavyRuns: number;
  /** scratch space, removed at the end */
  scratch: string;
  log: (message: string) => void;
}
