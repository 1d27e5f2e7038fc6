/**
 * A flame graph of folded stacks as one self-contained SVG: no script, no
 * external font or style. Each frame is a box as wide as its share of the
 * samples, on top of its caller (the root, "all", at the bottom); the
 * boxes' `<title>` gives the name, the count and the share, which
 * browsers show on hover. Drawn in the manner of Brendan Gregg's
 * flamegraph.pl; no code of it.
 * @module
 */

/** How to draw a flame graph. */
export interface FlameGraphOptions {
  /** The heading (default "hermitux profile"). */
  title?: string;
  /** Width in pixels (default 1200). */
  width?: number;
}

interface Node {
  name: string;
  count: number;
  children: Map<string, Node>;
}

const FRAME_H = 16, PAD = 10, TOP = 40, FONT = 12, CHAR_W = 7;

/** Folded stacks (`a;b;c N` lines) as a tree with counts. */
function tree(folded: string): Node {
  const root: Node = { name: "all", count: 0, children: new Map() };
  for (const line of folded.split("\n")) {
    const at = line.lastIndexOf(" ");
    if (at <= 0) continue;
    const n = Number(line.slice(at + 1));
    if (!Number.isFinite(n) || n <= 0) continue;
    root.count += n;
    let node = root;
    for (const name of line.slice(0, at).split(";")) {
      let next = node.children.get(name);
      if (!next) node.children.set(name, next = { name, count: 0, children: new Map() });
      next.count += n;
      node = next;
    }
  }
  return root;
}

function depthOf(n: Node): number {
  let d = 0;
  for (const c of n.children.values()) d = Math.max(d, depthOf(c));
  return d + 1;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A warm colour from the name, stable across runs; host calls and the kernel in blue. */
function colour(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  if (name.startsWith("[host]") || name === "[kernel]") {
    return `rgb(${80 + h % 40},${140 + (h >> 8) % 50},${200 + (h >> 16) % 55})`;
  }
  return `rgb(${205 + h % 50},${(h >> 8) % 170 + 40},${(h >> 16) % 55})`;
}

/** The flame graph of `folded` (the output of `Profile.folded()`), as SVG text. */
export function flameGraph(folded: string, options: FlameGraphOptions = {}): string {
  const width = options.width ?? 1200, title = options.title ?? "hermitux profile";
  const root = tree(folded), depth = depthOf(root);
  const height = TOP + depth * FRAME_H + PAD * 2;
  const scale = root.count ? (width - 2 * PAD) / root.count : 0;
  const out: string[] = [
    `<?xml version="1.0" standalone="no"?>`,
    `<svg version="1.1" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `xmlns="http://www.w3.org/2000/svg" font-family="Verdana, sans-serif" font-size="${FONT}">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#f8f8f0"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="17">${escapeXml(title)}</text>`,
  ];
  if (!root.count) out.push(`<text x="${PAD}" y="${TOP + FONT}">no samples</text>`);
  const draw = (n: Node, x: number, level: number) => {
    const w = n.count * scale;
    if (w < 0.3) return; // narrower than a pixel's third: left out, as flamegraph.pl does
    const y = height - PAD - (level + 1) * FRAME_H;
    const share = ((n.count / root.count) * 100).toFixed(2);
    const label = `${n.name} (${n.count} sample${n.count === 1 ? "" : "s"}, ${share}%)`;
    const fits = Math.floor((w - 6) / CHAR_W);
    const text = fits < 3 ? "" : n.name.length <= fits ? n.name : n.name.slice(0, fits - 2) + "..";
    out.push(
      `<g><title>${escapeXml(label)}</title>` +
        `<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${FRAME_H - 1}" ` +
        `rx="2" fill="${colour(n.name)}"/>` +
        (text
          ? `<text x="${(x + 3).toFixed(1)}" y="${y + FRAME_H - 4}">${escapeXml(text)}</text>`
          : "") +
        `</g>`,
    );
    let cx = x;
    const kids = [...n.children.values()].sort((a, b) => a.name < b.name ? -1 : 1);
    for (const c of kids) {
      draw(c, cx, level + 1);
      cx += c.count * scale;
    }
  };
  if (root.count) draw(root, PAD, 0);
  out.push(`</svg>`, "");
  return out.join("\n");
}
