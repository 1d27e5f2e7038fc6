/**
 * The remote protocol's commands, one handler each: from a packet's text
 * to the reply, or to how the stopped guest goes on (continue, step, kill,
 * detach). The handlers see the stop through {@linkcode Session}; a packet
 * they do not know gets the empty reply, a malformed one `E01`, an address
 * outside the guest's memory `E14` (EFAULT).
 * @module
 */
import { escapeBinary, fromHex, parseHexNumber, toHex, unescapeBinary } from "./packet.ts";
import {
  allRegistersHex,
  G_PACKET_BYTES,
  readRegister,
  registerHex,
  REGISTERS,
  writeRegister,
} from "./regs.ts";
import type { StoppedThread } from "./target.ts";
import type { RegisterFile } from "./regs.ts";

/** How the stopped guest goes on. */
export type Resume =
  /** Runs on (`step`: for one instruction), delivering `signal` if not 0. */
  | { kind: "continue"; step: boolean; signal: number }
  /** The process is killed. */
  | { kind: "kill" }
  /** Breakpoints go, gdb goes, the program runs on. */
  | { kind: "detach" };

/** What a handler gives back: a reply to send, a way to go on, or both. */
export interface Outcome {
  /** The reply payload (unframed, escaped where binary). */
  reply?: string | Uint8Array;
  /** Set when the guest resumes (after the reply, if any). */
  resume?: Resume;
}

/** What the handlers need of the stub: the stop, memory, breakpoints, documents. */
export interface Session {
  /** The thread that stopped. */
  stop: StoppedThread;
  /** The thread `Hg` chose for register access (0: the one that stopped). */
  selected: number;
  /** Another thread's registers (read only), or undefined if they cannot be read. */
  registersOf(tid: number): RegisterFile | undefined;
  /** Live thread ids of the process. */
  threads(): number[];
  /** The process id. */
  pid: number;
  /** `len` bytes at `addr` as the program sees them (no breakpoints), or undefined. */
  readMemory(addr: number, len: number): Uint8Array | undefined;
  /** Writes guest memory; false if out of bounds. */
  writeMemory(addr: number, data: Uint8Array): boolean;
  /** Sets (`on`) or clears a software breakpoint; false if it cannot. */
  breakpoint(addr: number, on: boolean): boolean;
  /** The documents `qXfer:OBJECT:read:ANNEX` serves, or undefined. */
  document(object: string, annex: string): Uint8Array | undefined;
  /** The reply to `?`: the current stop. */
  stopReply(): string;
  /** Whether gdb turned acknowledgements off. */
  noAck: boolean;
}

/** The largest memory transfer answered at once (gdb asks again for more). */
export const MAX_TRANSFER = 0x1000;

const SUPPORTED = [
  `PacketSize=${(2 * MAX_TRANSFER + 64).toString(16)}`,
  "qXfer:features:read+",
  "qXfer:auxv:read+",
  "qXfer:exec-file:read+",
  "swbreak+",
  "QStartNoAckMode+",
  "vContSupported+",
].join(";");

/** An address and a length, `ADDR,LEN` in hex; undefined if malformed. */
function addrLen(s: string): [number, number] | undefined {
  const m = /^([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(s);
  if (!m) return undefined;
  const a = parseHexNumber(m[1]), n = parseHexNumber(m[2]);
  if (a === undefined || n === undefined) return undefined;
  // An address past 2^53 is outside guest memory anyway: the bounds check says so.
  const at = a > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(a);
  return [at, Number(n > 0x100000n ? 0x100000n : n)];
}

/** A signal number from two hex digits; undefined if malformed. */
function signalOf(s: string): number | undefined {
  return /^[0-9a-fA-F]{2}$/.test(s) ? parseInt(s, 16) : undefined;
}

/** Handles one packet (its payload, escapes intact, as text of bytes). */
export function handlePacket(s: Session, raw: Uint8Array): Outcome {
  const text = latin1(raw);
  const head = text[0] ?? "";
  const body = text.slice(1);
  switch (head) {
    case "?":
      return { reply: s.stopReply() };
    case "g": {
      const file = registers(s);
      return { reply: file ? allRegistersHex(file) : "E01" };
    }
    case "G":
      return { reply: other(s) ? "E01" : writeAll(s, body) };
    case "p": {
      const n = parseHexNumber(body), file = registers(s);
      const hex = n === undefined || !file ? undefined : registerHex(file, Number(n));
      return { reply: hex ?? "E01" };
    }
    case "P": {
      if (other(s)) return { reply: "E01" }; // only the stopped thread's registers change
      const m = /^([0-9a-fA-F]+)=([0-9a-fA-F]*)$/.exec(body);
      const bytes = m ? fromHex(m[2]) : undefined;
      if (!m || !bytes) return { reply: "E01" };
      const part = writeRegister(s.stop.regs, parseInt(m[1], 16), bytes);
      if (!part) return { reply: "E01" };
      s.stop.touched(part);
      return { reply: "OK" };
    }
    case "m": {
      const al = addrLen(body);
      if (!al) return { reply: "E01" };
      const data = s.readMemory(al[0], Math.min(al[1], MAX_TRANSFER));
      return { reply: data ? toHex(data) : "E14" };
    }
    case "M": {
      const m = /^([^:]*):([0-9a-fA-F]*)$/.exec(body);
      const al = m ? addrLen(m[1]) : undefined;
      const data = m ? fromHex(m[2]) : undefined;
      if (!al || !data || data.length !== al[1]) return { reply: "E01" };
      return { reply: s.writeMemory(al[0], data) ? "OK" : "E14" };
    }
    case "X": {
      const colon = raw.indexOf(0x3a);
      const al = colon > 0 ? addrLen(latin1(raw.subarray(1, colon))) : undefined;
      if (!al) return { reply: "E01" };
      const data = unescapeBinary(raw.subarray(colon + 1));
      if (data.length !== al[1]) return { reply: "E01" };
      return { reply: data.length === 0 || s.writeMemory(al[0], data) ? "OK" : "E14" };
    }
    case "c":
    case "s":
      return { resume: { kind: "continue", step: head === "s", signal: 0 } };
    case "C":
    case "S": {
      const sig = signalOf(body.slice(0, 2));
      if (sig === undefined) return { reply: "E01" };
      return { resume: { kind: "continue", step: head === "S", signal: sig } };
    }
    case "Z":
    case "z":
      return breakpoint(s, head === "Z", body);
    case "H":
      return { reply: selectThread(s, body) };
    case "T": {
      const tid = parseHexNumber(body);
      return { reply: tid !== undefined && s.threads().includes(Number(tid)) ? "OK" : "E01" };
    }
    case "k":
      return { resume: { kind: "kill" } };
    case "D":
      return { reply: "OK", resume: { kind: "detach" } };
    case "q":
    case "Q":
      return query(s, text);
    case "v":
      return vPacket(s, text);
    default:
      return { reply: "" };
  }
}

/** Whether `Hg` chose a thread other than the one that stopped. */
function other(s: Session): boolean {
  return s.selected !== 0 && s.selected !== s.stop.tid;
}

function registers(s: Session): RegisterFile | undefined {
  return other(s) ? s.registersOf(s.selected) : s.stop.regs;
}

function selectThread(s: Session, body: string): string {
  const m = /^([gc])(-1|0|[0-9a-fA-F]+)$/.exec(body);
  if (!m) return "E01";
  if (m[1] === "c") return "OK"; // every thread resumes together
  const tid = m[2] === "-1" ? 0 : parseInt(m[2], 16);
  if (tid !== 0 && !s.threads().includes(tid)) return "E01";
  s.selected = tid;
  return "OK";
}

function writeAll(s: Session, hex: string): string {
  const bytes = fromHex(hex);
  if (!bytes || bytes.length > G_PACKET_BYTES) return "E01";
  let off = 0;
  for (let n = 0; n < REGISTERS.length && off + REGISTERS[n].bytes <= bytes.length; n++) {
    const size = REGISTERS[n].bytes;
    const value = bytes.subarray(off, off + size);
    off += size;
    // Registers that cannot change (orig_rax, selectors) are taken as they are.
    const same = readRegister(s.stop.regs, n).every((b, i) => b === value[i]);
    if (same) continue;
    const part = writeRegister(s.stop.regs, n, value.slice());
    if (part) s.stop.touched(part);
  }
  return "OK";
}

function breakpoint(s: Session, on: boolean, body: string): Outcome {
  const m = /^([0-4]),([0-9a-fA-F]+),([0-9a-fA-F]+)/.exec(body);
  if (!m) return { reply: "E01" };
  if (m[1] !== "0") return { reply: "" }; // hardware breakpoints and watchpoints: not supported
  const addr = parseHexNumber(m[2]);
  if (addr === undefined || addr > BigInt(Number.MAX_SAFE_INTEGER)) return { reply: "E01" };
  return { reply: s.breakpoint(Number(addr), on) ? "OK" : "E14" };
}

function query(s: Session, text: string): Outcome {
  if (text.startsWith("qSupported")) return { reply: SUPPORTED };
  if (text === "QStartNoAckMode") {
    s.noAck = true;
    return { reply: "OK" };
  }
  if (text === "qAttached" || text.startsWith("qAttached:")) return { reply: "0" };
  if (text === "qC") return { reply: `QC${s.stop.tid.toString(16)}` };
  if (text === "qfThreadInfo") {
    return { reply: "m" + s.threads().map((t) => t.toString(16)).join(",") };
  }
  if (text === "qsThreadInfo") return { reply: "l" };
  if (text === "qSymbol::") return { reply: "OK" };
  if (text.startsWith("qThreadExtraInfo,")) {
    return { reply: toHex(new TextEncoder().encode(`vCPU thread`)) };
  }
  const xfer = /^qXfer:([a-z-]+):read:([^:]*):([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(text);
  if (xfer) {
    const doc = s.document(xfer[1], xfer[2]);
    if (!doc) return { reply: "E00" };
    const off = parseInt(xfer[3], 16), len = Math.min(parseInt(xfer[4], 16), MAX_TRANSFER);
    const part = doc.subarray(Math.min(off, doc.length), Math.min(off + len, doc.length));
    const more = off + len < doc.length;
    const esc = escapeBinary(part);
    const out = new Uint8Array(esc.length + 1);
    out[0] = more ? 0x6d : 0x6c; // m: more follows, l: last
    out.set(esc, 1);
    return { reply: out };
  }
  return { reply: "" };
}

function vPacket(s: Session, text: string): Outcome {
  if (text === "vCont?") return { reply: "vCont;c;C;s;S" };
  if (text.startsWith("vKill")) return { reply: "OK", resume: { kind: "kill" } };
  if (text.startsWith("vCont;")) {
    // The action for this thread: one naming it, else the default (no thread).
    let chosen: string | undefined;
    for (const a of text.slice(6).split(";")) {
      const [action, thread] = a.split(":");
      if (thread === undefined) chosen ??= action;
      else if (thread === "-1" || parseHexNumber(thread) === BigInt(s.stop.tid)) {
        chosen = action;
        break;
      }
    }
    if (!chosen) return { reply: "E01" };
    const kind = chosen[0];
    if (kind === "c" || kind === "s") {
      return { resume: { kind: "continue", step: kind === "s", signal: 0 } };
    }
    if (kind === "C" || kind === "S") {
      const sig = signalOf(chosen.slice(1, 3));
      if (sig === undefined) return { reply: "E01" };
      return { resume: { kind: "continue", step: kind === "S", signal: sig } };
    }
    return { reply: "E01" };
  }
  return { reply: "" };
}

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}
