// bench:compare's table: a row per measure, a column per runner, the
// hermitux/native and hermitux/qemu-user ratios, the target, and
// footnotes.
import type { Runner } from "./peers.ts";

/** A figure with a footnote, or only a footnote ("—": no figure). */
export interface Noted {
  /** The figure, if there is one. */
  value?: number;
  /** The footnote's text. */
  note: string;
}

/** A table cell: a figure, a footnoted figure or dash, or nothing ("—"). */
export type Cell = number | Noted | undefined;

/** One row of the table. */
export interface Row {
  /** What is measured, with its unit. */
  name: string;
  /** A cell per runner ("alt": hermitux with `--host-calls=exitless --rewrite=lazy`). */
  cells: Partial<Record<Runner, Cell>>;
  /** The target and whether hermitux meets it. */
  target?: string;
}

/** The number in a cell, if any. */
export function valueOf(c: Cell): number | undefined {
  const v = typeof c === "number" ? c : c?.value;
  return v !== undefined && Number.isFinite(v) ? v : undefined;
}

/** A figure with 3–4 significant digits. */
export function fmt(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return "—";
  const a = Math.abs(x);
  return x.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
}

function ratio(a: Cell, b: Cell): string {
  const x = valueOf(a), y = valueOf(b);
  if (x === undefined || y === undefined || y === 0) return "—";
  const r = x / y;
  return `${
    r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)
  }×`;
}

/** hermitux's ratio to a peer, then the alternative configuration's in parentheses. */
function ratios(r: Row, peer: Runner): string {
  const main = ratio(r.cells.hermitux, r.cells[peer]);
  const alt = ratio(r.cells.alt, r.cells[peer]);
  return alt === "—" ? main : `${main} (${alt})`;
}

/**
 * The table as Markdown lines, footnotes after it: each distinct note gets
 * a number, in order of first use. `altTitle` heads the second hermitux
 * column.
 */
export function renderTable(rows: Row[], altTitle: string): string[] {
  const notes: string[] = [];
  const cell = (c: Cell) => {
    if (c === undefined || typeof c === "number") return fmt(c);
    let i = notes.indexOf(c.note);
    if (i < 0) i = notes.push(c.note) - 1;
    return `${fmt(c.value)} [${i + 1}]`;
  };
  const lines = [
    `| measure | native | qemu-user | gVisor | hermitux | ${altTitle} | ` +
    "hermitux/native | hermitux/qemu-user | target |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    const c = r.cells;
    lines.push(
      `| ${r.name} | ${cell(c.native)} | ${cell(c.qemu)} | ${cell(c.gvisor)} | ` +
        `${cell(c.hermitux)} | ${cell(c.alt)} | ${ratios(r, "native")} | ` +
        `${ratios(r, "qemu")} | ${r.target ?? ""} |`,
    );
  }
  lines.push("", ...notes.map((n, i) => `[${i + 1}] ${n}`));
  return lines;
}
