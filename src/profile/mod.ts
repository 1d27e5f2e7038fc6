/**
 * Profiling a guest: `BootOptions.profile` samples every vCPU's call stack
 * into a {@linkcode Profile} (folded stacks), and {@linkcode flameGraph}
 * draws them as an SVG flame graph. `hermitux run --profile` does both.
 *
 * ```ts ignore
 * import { boot, flameGraph } from "./mod.ts";
 * const r = await boot({ path: "./prog", profile: { hz: 99 } });
 * await Deno.writeTextFile("prog.svg", flameGraph(r.profile!.folded()));
 * ```
 * @module
 */
export { DEFAULT_HZ, Profile, type ProfileOptions } from "./profile.ts";
export { flameGraph, type FlameGraphOptions } from "./flamegraph.ts";
