/**
 * The gdb stub: listens (loopback by default), stops the guest at its
 * first instruction (an `int3` the host puts at the entry, ld.so's for a
 * dynamic program), and from then on serves gdb whenever the guest stops:
 * at a breakpoint, after a single step (rflags.TF: the guest's own #DB
 * exception path), or at a fault, before its signal is delivered or its
 * crash report printed. The guest's exception path calls
 * {@linkcode GdbStub.exception}; while gdb is served the vCPU stays stopped
 * in its exception stub, and this (the main) thread blocks on the socket.
 * @module
 */
import { SIGNO } from "../syscalls/signal.ts";
import { vectorSignal } from "../vm/fault.ts";
import type { Guest } from "../vm/guest.ts";
import { ABI, BOOT_INFO } from "../kernel/abi.ts";
import { R } from "../vm/sigframe.ts";
import { framePacket, PacketParser } from "./packet.ts";
import { handlePacket, type Resume, type Session } from "./commands.ts";
import { Breakpoints, INT3, stopOthers, StoppedThread, TF, threadRegisters } from "./target.ts";
import { liveRegs, setRegs } from "../vm/machine.ts";

/** How often the socket is looked at for gdb's Ctrl-C while the guest runs. */
const INTERRUPT_POLL_NS = 50_000_000n;
const NEVER = 0x7fffffffffffffffn;
import type { GuestMemory } from "../vm/memory.ts";
import { targetXml } from "./regs.ts";
import { GdbSocket, type ListenAddress, parseListenAddress } from "./socket.ts";

const AT_NULL = 0;
/** At most this many auxv entries are read from the initial stack. */
const MAX_AUXV = 64;

/** What the guest's exception path asks of a debugger. */
export interface DebugHook {
  /**
   * A CPU exception `vector` in the thread `g` serves (its CPU frame's rip
   * slot at guest address `frame`, its registers `live`): true when the
   * debugger handled it and the vCPU resumes as set; false when it goes on
   * as without a debugger (a signal delivered, or the crash report).
   * @internal
   */
  exception(g: Guest, vector: number, frame: number, live: DataView): boolean;
  /**
   * Fork copied the debugged process's memory into `child`, which gdb does
   * not follow: the child gets the bytes the breakpoints hide (an `int3`
   * left there would kill it with SIGTRAP).
   * @internal
   */
  forked(child: GuestMemory): void;
  /**
   * A vfork child's memory was copied back over the debugged process's
   * (`mem`): its breakpoints go back in.
   * @internal
   */
  rearm(mem: GuestMemory): void;
}

/** How a run ended, for gdb's last reply. */
export interface RunEnd {
  /** The exit code, when the program exited. */
  exitCode?: number;
  /** The signal that killed it, if one did. */
  signal?: number;
}

/** A gdb remote stub for one guest process. */
export class GdbStub implements DebugHook {
  readonly #socket: GdbSocket;
  readonly #parser = new PacketParser();
  readonly #bps = new Breakpoints();
  /** The entry's `int3` (before the first stop) and the byte it hides. */
  #entry?: { addr: number; orig: number };
  #auxv: Uint8Array = new Uint8Array(0);
  /** Addresses of breakpoints gdb has removed (an int3 hit there meanwhile is not the program's). */
  readonly #removed = new Set<number>();
  #execPath = "";
  #stepping = false;
  #attached = true;
  #killed = false;
  #noAck = false;
  #guest?: Guest;
  /** gdb sent its interrupt byte (Ctrl-C) while the guest ran: the next trap stops with SIGINT. */
  #interrupted = false;
  /** When the socket is next looked at for that byte, while the guest runs (monotonic ns). */
  #pollAt = 0n;

  /** Listens on `addr` (`[HOST:]PORT` or an object) and says where on `diag`. */
  constructor(addr: ListenAddress | string, diag: (line: string) => void) {
    this.#socket = new GdbSocket(typeof addr === "string" ? parseListenAddress(addr) : addr);
    diag(`hermitux: gdb: listening on ${this.#socket.host}:${this.#socket.port}`);
  }

  /** The port listened on. */
  get port(): number {
    return this.#socket.port;
  }

  /**
   * Before the guest first runs: an `int3` at the program's first
   * instruction (the entry the guest kernel jumps to), so that the first
   * stop comes before any of the program's code has run.
   * @internal
   */
  arm(g: Guest, execPath: string): void {
    const mem = g.mem!;
    const entry = Number(mem.view.getBigUint64(ABI.BOOT_INFO_ADDR + BOOT_INFO.entry, true));
    const at = mem.check(entry, 1);
    this.#entry = { addr: at, orig: mem.bytes[at] };
    mem.bytes[at] = 0xcc;
    this.#execPath = execPath;
    this.#guest = g;
    // While the guest runs, gdb's Ctrl-C is looked for a few times a second
    // (the guest's timers wake the main thread for it: the host timer).
    g.sig.watches.add({
      due: () => this.#attached ? this.#pollAt : NEVER,
      fire: (now) => {
        this.#pollAt = now + INTERRUPT_POLL_NS;
        this.#checkInterrupt(g);
      },
    });
  }

  /**
   * Takes what gdb sent while the guest ran; on its interrupt byte, sets
   * the trap flag on vCPU 0 (when the host timer has stopped it: its
   * registers are out of KVM_RUN), so that it stops at its next
   * instruction and gdb hears SIGINT, as gdbserver reports a Ctrl-C.
   */
  #checkInterrupt(g: Guest): void {
    if (!this.#socket.readable()) return;
    const bytes = this.#socket.read();
    if (bytes.length === 0) {
      // gdb has gone: as gdbserver, the program does not outlive it.
      this.#attached = false;
      g.process!.exit(0, SIGNO.SIGKILL);
      return;
    }
    this.#parser.push(bytes);
    const kept = [];
    for (let item = this.#parser.next(); item; item = this.#parser.next()) {
      if (item.kind === "interrupt") this.#interrupted = true;
      else kept.push(item);
    }
    this.#parser.unshift(kept);
    if (!this.#interrupted || !g.timerStop || g.process!.ended) return;
    const cpu = g.threads!.main;
    if (cpu.runner || !cpu.alive) return;
    const live = liveRegs(cpu.vcpu, cpu.runView);
    const regs = new BigUint64Array(18);
    for (let i = 0; i < 18; i++) regs[i] = live.getBigUint64(i * 8, true);
    regs[R.rflags] |= TF;
    setRegs(cpu.vcpu, cpu.runView, regs);
  }

  /**
   * See {@linkcode DebugHook.exception}.
   * @internal
   */
  forked(child: GuestMemory): void {
    const hidden = [...this.#bps.hidden()];
    if (this.#entry) hidden.push([this.#entry.addr, this.#entry.orig]);
    for (const [addr, orig] of hidden) if (child.bytes[addr] === INT3) child.bytes[addr] = orig;
  }

  rearm(mem: GuestMemory): void {
    for (const [addr] of this.#bps.hidden()) mem.bytes[addr] = INT3;
    if (this.#entry) mem.bytes[this.#entry.addr] = INT3;
  }

  exception(g: Guest, vector: number, frame: number, live: DataView): boolean {
    if (g !== this.#guest) return false;
    const stop = new StoppedThread(g, vector, frame, live);
    if (!this.#attached) {
      // After detach: an int3 of gdb's that another thread hit meanwhile runs as the program's code.
      const at = Number(stop.rip) - 1;
      if (vector !== 3 || !this.#removed.has(at) || g.mem!.bytes[at] === 0xcc) return false;
      stop.rip = BigInt(at);
      stop.resume(false, live);
      return true;
    }
    if (vector === 1 && this.#stepping && stop.rip < BigInt(ABI.USER_MIN)) {
      // A stepped `syscall` traps at the guest kernel's entry (TF was set
      // when it began; SFMASK has cleared it since): the kernel runs on
      // without TF. Its return's popfq sets TF again from the saved flags,
      // which traps in the kernel once more (before its `jmp *%rcx`): TF
      // stays, and the trap after that jump ends the step past the syscall.
      stop.resume((stop.regs.gprs[R.rflags] & TF) !== 0n, live);
      return true;
    }
    const signal = vectorSignal(vector);
    let swbreak = false, first = false, fault = true;
    const rflags = stop.regs.gprs[R.rflags];
    if (vector === 3) {
      const at = Number(stop.rip) - 1;
      if (this.#entry && at === this.#entry.addr) {
        g.mem!.bytes[at] = this.#entry.orig;
        this.#entry = undefined;
        stop.rip = BigInt(at);
        this.#auxv = readAuxv(g, stop.regs.gprs[R.rsp]);
        first = true;
        fault = false;
      } else if (this.#bps.has(at)) {
        stop.rip = BigInt(at);
        swbreak = true;
        fault = false;
      } else if (this.#removed.has(at) && g.mem!.bytes[at] !== 0xcc) {
        // Another thread hit a breakpoint gdb has taken away since (its
        // exit waited while gdb was served): it runs the instruction now there.
        stop.rip = BigInt(at);
        stop.resume(false, live);
        return true;
      }
    } else if (vector === 1 && this.#stepping) {
      fault = false;
    }
    let reported = signal;
    if (vector === 1 && this.#interrupted) {
      // The trap flag our Ctrl-C set: a stop with SIGINT, not a fault.
      this.#interrupted = false;
      if (!this.#stepping) stop.regs.gprs[R.rflags] &= ~TF;
      fault = false;
      reported = SIGNO.SIGINT;
    }
    if (this.#stepping && rflags & TF) stop.regs.gprs[R.rflags] = rflags & ~TF;
    this.#stepping = false;
    if (first) this.#socket.accept();
    stopOthers(g);
    const reply = this.#stopReply(stop, reported, swbreak);
    if (!first) this.#send(reply);
    const resume = this.#serve(stop, reply);
    switch (resume.kind) {
      case "kill":
        this.#killed = true;
        this.#finishSession(g);
        stop.resume(false, live);
        g.process!.exit(0, SIGNO.SIGKILL);
        return true;
      case "detach":
        this.#finishSession(g);
        stop.resume(false, live);
        // A fault gdb saw is still the program's: it goes on as without gdb.
        return !fault;
      case "continue":
        this.#stepping = resume.step;
        stop.resume(resume.step, live);
        // The fault's own signal passed on: delivered, or the crash report.
        if (fault && resume.signal === signal && signal !== 0) return false;
        return true;
    }
  }

  /** The run ended: gdb is told how (unless it killed it), and the socket closes. */
  ended(end: RunEnd): void {
    if (this.#attached && !this.#killed && this.#socket.connected) {
      this.#send(
        end.signal ? `X${hex2(end.signal)}` : `W${hex2((end.exitCode ?? 0) & 0xff)}`,
      );
    }
    this.#attached = false;
    this.#socket.close();
  }

  /** Closes the socket without a word (the VM is disposed of). */
  close(): void {
    this.#attached = false;
    this.#socket.close();
  }

  #finishSession(g: Guest): void {
    for (const a of this.#bps.addresses) this.#removed.add(a);
    this.#bps.clear(g.mem!);
    this.#attached = false;
    this.#socket.close();
  }

  #stopReply(stop: StoppedThread, signal: number, swbreak: boolean): string {
    // rbp, rsp and rip come with the stop: gdb needs no `g` to show where it is.
    const expedite = [6, 7, 16].map((n) => {
      const b = [...new Uint8Array(new BigUint64Array([stopReg(stop, n)]).buffer)];
      return `${hex2(n)}:${b.map(hex2).join("")};`;
    }).join("");
    return `T${hex2(signal)}${expedite}thread:${stop.tid.toString(16)};` +
      (swbreak ? "swbreak:;" : "");
  }

  /** Answers packets until one resumes the guest; gdb gone: the program is killed. */
  #serve(stop: StoppedThread, reply: string): Resume {
    const g = this.#guest!;
    const session: Session = {
      stop,
      selected: 0,
      registersOf: (tid) => threadRegisters(g, tid),
      pid: g.pid,
      threads: () => g.threads?.cpus.filter((c) => c.alive).map((c) => c.tid) ?? [g.pid],
      readMemory: (a, n) => this.#bps.read(g.mem!, a, n),
      writeMemory: (a, d) => this.#bps.write(g.mem!, a, d),
      breakpoint: (a, on) => {
        if (on) return this.#bps.insert(g.mem!, a);
        if (this.#bps.has(a)) this.#removed.add(a);
        return this.#bps.remove(g.mem!, a);
      },
      document: (object, annex) => this.#document(object, annex),
      stopReply: () => reply,
      noAck: this.#noAck,
    };
    for (;;) {
      const item = this.#parser.next();
      if (!item) {
        const bytes = this.#socket.read();
        if (bytes.length === 0) return { kind: "kill" };
        this.#parser.push(bytes);
        continue;
      }
      if (item.kind === "bad") {
        if (!this.#noAck) this.#socket.write(new Uint8Array([0x2d]));
        continue;
      }
      if (item.kind !== "packet") continue;
      if (!this.#noAck) this.#socket.write(new Uint8Array([0x2b]));
      let out;
      try {
        out = handlePacket(session, item.payload);
      } catch {
        out = { reply: "E01" }; // never the host's crash, whatever gdb sent
      }
      this.#noAck = session.noAck;
      if (out.reply !== undefined) this.#send(out.reply);
      if (out.resume) return out.resume;
    }
  }

  #document(object: string, annex: string): Uint8Array | undefined {
    const enc = new TextEncoder();
    if (object === "features" && annex === "target.xml") return enc.encode(targetXml());
    if (object === "auxv" && annex === "") return this.#auxv;
    if (object === "exec-file") return enc.encode(this.#execPath);
    return undefined;
  }

  #send(payload: string | Uint8Array): void {
    this.#socket.write(framePacket(payload));
    // With acknowledgements on, gdb's `+` is read (and skipped) with the next packet.
  }
}

function stopReg(stop: StoppedThread, n: number): bigint {
  const g = stop.regs.gprs;
  return n === 6 ? g[R.rbp] : n === 7 ? g[R.rsp] : g[R.rip];
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}

/** The auxv the loader wrote on the initial stack at `sp` (argc, argv, envp, auxv). */
function readAuxv(g: Guest, sp: bigint): Uint8Array {
  const mem = g.mem!;
  try {
    let p = Number(sp);
    const argc = Number(mem.u64(p));
    p += 8 * (argc + 2);
    for (let n = 0; mem.u64(p) !== 0n && n < 4096; n++) p += 8;
    p += 8;
    const start = p;
    for (let n = 0; n < MAX_AUXV; n++, p += 16) {
      if (mem.u64(p) === BigInt(AT_NULL)) return mem.slice(start, p + 16 - start).slice();
    }
  } catch { /* a stack the program changed: no auxv */ }
  return new Uint8Array(0);
}
