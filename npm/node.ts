/**
 * hermitux for Node: installs the `Deno` shim (FFI on koffi), then exports
 * the library (mod.ts) unchanged.
 *
 * ```js
 * import { boot } from "@hermitux/core";
 * const r = await boot({ path: "/bin/true" });
 * ```
 * @module
 */
import "./shim/install.ts";
export * from "../mod.ts";
