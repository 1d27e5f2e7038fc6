/**
 * The gdb remote stub (docs/GDB.md): `hermitux run --gdb [HOST:]PORT` and
 * `BootOptions.gdb`. packet.ts frames the protocol, commands.ts answers
 * it, regs.ts describes the registers, target.ts reads and changes a
 * stopped guest, socket.ts listens, stub.ts ties them to the run.
 * @module
 */
export { type DebugHook, GdbStub, type RunEnd } from "./stub.ts";
export { type ListenAddress, parseListenAddress } from "./socket.ts";
export { targetXml } from "./regs.ts";
