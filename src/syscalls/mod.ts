/**
 * The syscall layer: registry, modules, tables.
 * @module
 */
import { SyscallRegistry } from "./registry.ts";
import { stdioModule } from "./stdio.ts";
import { processModule } from "./process.ts";
import { fsModule } from "./fs.ts";
import { mmModule } from "./mm.ts";
import { pollModule } from "./poll.ts";
import { timeModule } from "./time.ts";
import { signalModule } from "./sigcalls.ts";
import { timersModule } from "./timers.ts";
import { futexModule } from "./futex.ts";
import { threadModule } from "./thread.ts";
import { procsModule } from "./procs.ts";
import { netModule } from "../net/sockets.ts";
import { xattrModule } from "./xattr.ts";
import { schedModule } from "./sched.ts";
import { signalfdModule } from "./signalfd.ts";
import { fifoModule } from "./fifo.ts";
import { spliceModule } from "./splice.ts";
import { pidfdModule } from "./pidfd.ts";
import { privilegedModule } from "./privileged.ts";
import { cputimeModule } from "./cputime.ts";

export * from "./registry.ts";
export * from "./errno.ts";
export { SYSCALL_NAMES, SYSCALL_NUMBERS, syscallName } from "./table.ts";
export { stdioModule } from "./stdio.ts";
export { processModule } from "./process.ts";
export { fsModule } from "./fs.ts";
export { mmModule } from "./mm.ts";
export { pollModule } from "./poll.ts";
export { timeModule } from "./time.ts";
export { signalModule } from "./sigcalls.ts";
export { timersModule } from "./timers.ts";
export { futexModule } from "./futex.ts";
export {
  attachThreads,
  type CloneSpec,
  type ThreadHost,
  threadModule,
  threadsOf,
} from "./thread.ts";
export {
  attachProcesses,
  processesOf,
  type ProcessHost,
  type ProcInfo,
  procsModule,
  type WaitMatch,
} from "./procs.ts";
export { netModule } from "../net/sockets.ts";
export { xattrModule } from "./xattr.ts";
export { schedModule } from "./sched.ts";
export { signalfdModule } from "./signalfd.ts";
export { fifoModule } from "./fifo.ts";
export { spliceModule } from "./splice.ts";
export { pidfdModule } from "./pidfd.ts";
export { privilegedModule } from "./privileged.ts";
export { cputimeModule } from "./cputime.ts";
export { formatSyscall } from "./trace.ts";

/** The built-in modules, in registration order. */
export const DEFAULT_MODULES = [
  stdioModule,
  processModule,
  fsModule,
  mmModule,
  timeModule,
  signalModule,
  timersModule,
  pollModule,
  futexModule,
  threadModule,
  procsModule,
  netModule,
  xattrModule,
  schedModule,
  signalfdModule,
  fifoModule,
  spliceModule,
  pidfdModule,
  privilegedModule,
  cputimeModule,
];

/** A registry with every built-in module registered. */
export function defaultRegistry(): SyscallRegistry {
  const r = new SyscallRegistry();
  for (const m of DEFAULT_MODULES) r.register(m);
  return r;
}
