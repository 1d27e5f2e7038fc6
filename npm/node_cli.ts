/**
 * The hermitux command line for Node (`@hermitux/core/cli`): installs the
 * `Deno` shim, then exports cli.ts's `main` unchanged.
 * @module
 */
import "./shim/install.ts";
export * from "../cli.ts";
