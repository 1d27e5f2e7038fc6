/**
 * `run --profile`: the run's flame graph and folded stacks, written when
 * it ends.
 * @module
 */
import type { Profile } from "../profile/profile.ts";
import { flameGraph } from "../profile/flamegraph.ts";

/**
 * Writes `FILE` (an SVG flame graph) and the folded stacks beside it
 * (`FILE` less `.svg`, plus `.folded`); returns the line that says so.
 */
export function writeProfile(profile: Profile, file: string, program: string): string {
  const folded = profile.folded();
  const stacks = file.replace(/\.svg$/, "") + ".folded";
  const title = `hermitux profile: ${program} (${profile.samples} samples at ${profile.hz} Hz)`;
  Deno.writeTextFileSync(file, flameGraph(folded, { title }));
  Deno.writeTextFileSync(stacks, folded);
  return `hermitux: profile: ${profile.samples} samples at ${profile.hz} Hz: ${file}, ${stacks}`;
}
