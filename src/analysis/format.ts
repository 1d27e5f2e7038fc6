/**
 * The human-readable report of `hermitux analyze`: the objects, a table of
 * system calls (name, sites, objects), the unresolved sites, then totals.
 * @module
 */
import type { Analysis } from "./analyze.ts";

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * Formats an analysis for a terminal.
 *
 * @param a The analysis, from `analyzeBinary`.
 * @returns Lines of text, ending with a newline.
 */
export function formatAnalysis(a: Analysis): string {
  const out: string[] = [];
  out.push(`${a.binary}: ${plural(a.totals.objects, "object")}`);
  const roleWidth = Math.max(...a.objects.map((o) => o.role.length));
  const pathWidth = Math.max(...a.objects.map((o) => o.path.length));
  for (const o of a.objects) {
    const from = o.neededBy === undefined
      ? ""
      : `  (${o.needed}, needed by ${basename(o.neededBy)})`;
    out.push(
      `  ${o.role.padEnd(roleWidth)}  ${o.path.padEnd(pathWidth)}  ` +
        `${plural(o.sites, "site")}, ${o.syscalls.length} syscalls${from}`,
    );
  }
  for (const m of a.missing) {
    out.push(`  missing  ${m.name} (needed by ${m.neededBy}): ${m.reason}`);
  }
  out.push("");
  const nameWidth = Math.max(7, ...a.syscalls.map((s) => s.name.length));
  out.push(`${"nr".padStart(4)}  ${"syscall".padEnd(nameWidth)}  ${"sites".padStart(5)}  objects`);
  for (const s of a.syscalls) {
    out.push(
      `${String(s.nr).padStart(4)}  ${s.name.padEnd(nameWidth)}  ${String(s.sites).padStart(5)}  ` +
        s.objects.map(basename).join(", "),
    );
  }
  if (a.unresolved.length > 0) {
    out.push("", `unresolved sites (${a.unresolved.length}):`);
    for (const u of a.unresolved) {
      const partial = u.partial.length > 0 ? `, also ${u.partial.join(" ")}` : "";
      out.push(`  ${basename(u.object)} ${u.address} ${u.symbol} (${u.instruction}${partial})`);
      for (const r of u.reasons) {
        const where = r.object === u.object ? "" : `${basename(r.object)} `;
        out.push(`      at ${where}${r.address} ${r.symbol}: ${r.reason}`);
      }
    }
  }
  if (a.legacy.length > 0) {
    out.push("", `32-bit entries (i386 numbers, not counted above):`);
    for (const l of a.legacy) {
      out.push(`  ${basename(l.object)} ${l.address} ${l.symbol} (${l.instruction}): ${l.numbers}`);
    }
  }
  const t = a.totals;
  const uncalled = t.uncalled > 0 ? `, ${t.uncalled} in wrappers nobody calls` : "";
  out.push(
    "",
    `totals: ${plural(t.syscalls, "system call")} from ${plural(t.sites, "site")} in ` +
      `${plural(t.objects, "object")} (${t.resolved} resolved, ${t.unresolved} unresolved` +
      `${uncalled}); ${t.instructions} instructions${a.complete ? "" : "; incomplete"}`,
  );
  return out.join("\n") + "\n";
}
