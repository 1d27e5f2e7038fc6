/**
 * Backward data flow from a `syscall` instruction to the constant that
 * becomes its number. From the site, every path backwards is followed
 * (fall-through and direct jumps), tracking one location (a register, or a
 * stack slot after a `pop`) through moves, `lea`, `xor r, r`, constant
 * additions, `xchg` and `push`/`pop`, until a constant sets it. A location
 * still live at a function's entry is an argument: the walk continues at
 * every direct call of that function (and, for an exported function, at
 * every call through another object's PLT or GOT), which resolves wrappers
 * such as libc's `syscall(long nr, ...)` at their callers. Whatever else
 * sets the location (a load from memory, a call's result, ...) leaves the
 * site unresolved, with the instruction that stopped the search.
 * @module
 */
import { type Disassembly, Kind, REG_NAMES } from "./disasm.ts";

/** An object's code, as the data flow sees it. */
export interface CodeObject {
  /** Name for reports (its path). */
  name: string;
  /** Its instructions. */
  code: Disassembly;
  /** Function entry addresses: symbols, call targets, the entry point. */
  entries: ReadonlySet<number>;
  /** Exported (dynamic) function names by address. */
  exports: ReadonlyMap<number, readonly string[]>;
  /** Imported symbol names by GOT slot address. */
  imports: ReadonlyMap<number, string>;
  /** `name+0x12` for an address in the object. */
  symbolize(addr: number): string;
}

/** A place in one of the objects (`object` indexes the resolver's list). */
export interface Place {
  /** Index of the object. */
  object: number;
  /** Link-time address in that object. */
  addr: number;
}

/** Where the search for a site's number stopped, and why. */
export interface Stuck extends Place {
  /** What stopped it, e.g. `set by mov eax,[rbp-4]`. */
  reason: string;
}

/** A function whose callers supply a site's number. */
export interface Wrapper extends Place {
  /** Where the number is at the function's entry: a register or `stack+N`. */
  location: string;
  /** Its direct calls (and calls through other objects' PLT/GOT). */
  callers: number;
}

/** What the data flow found for one site. */
export interface SiteResult extends Place {
  /** `Kind.SYSCALL`, `Kind.SYSENTER` or `Kind.INT80`. */
  kind: number;
  /** Each number the site can make, with the instructions that set it. */
  values: Map<number, Place[]>;
  /** Paths the search could not follow to a constant. */
  stuck: Stuck[];
  /** Functions passed through on the way to the constants. */
  wrappers: Wrapper[];
}

interface Outcome {
  values: Map<number, Place[]>;
  stuck: Stuck[];
  wrappers: Wrapper[];
  /** Depends on a function entry still being resolved (do not cache). */
  partial: boolean;
}

/** A location: register family 0-15, or STACK + depth for `[rsp + depth]`. */
const STACK = 16;
const RAX = 0;
const RSP = 4;
/** rbx, rbp, r12-r15: a call preserves them. */
const CALLEE_SAVED = new Set([3, 5, 12, 13, 14, 15]);
/** Most instructions one search may visit. */
const STEP_LIMIT = 20000;
/** Most wrapper levels followed (a wrapper of a wrapper of ...). */
const MAX_DEPTH = 8;
/** Deepest chain of calls followed to tell whether a function returns. */
const MAX_NORETURN_DEPTH = 256;
/** Most origins kept per value (enough to name the objects involved). */
const MAX_ORIGINS = 64;

function locationName(loc: number): string {
  return loc < STACK ? REG_NAMES[loc] : `stack+${loc - STACK}`;
}

function fallsThrough(kind: number): boolean {
  return kind !== Kind.JMP && kind !== Kind.RET && kind !== Kind.IJMP && kind !== Kind.STOP;
}

function empty(): Outcome {
  return { values: new Map(), stuck: [], wrappers: [], partial: false };
}

function addValue(out: Outcome, value: number, origins: readonly Place[]): void {
  let list = out.values.get(value);
  if (list === undefined) out.values.set(value, list = []);
  for (const o of origins) {
    if (list.length >= MAX_ORIGINS) break;
    if (!list.some((p) => p.object === o.object && p.addr === o.addr)) list.push(o);
  }
}

/**
 * How the value at some point becomes the site's number:
 * `((v & keep) | set) + add` (`keep` -1 and `set` 0 unless a partial write
 * such as `mov al, 56` came in between).
 */
interface Transform {
  add: number;
  keep: number;
  set: number;
}

const IDENTITY: Transform = { add: 0, keep: -1, set: 0 };

function apply(t: Transform, v: number): number {
  return (t.keep === -1 ? v : ((v & t.keep) | t.set) >>> 0) + t.add;
}

function merge(out: Outcome, from: Outcome, t: Transform): void {
  for (const [v, origins] of from.values) addValue(out, apply(t, v), origins);
  for (const s of from.stuck) {
    if (
      !out.stuck.some((t) => t.object === s.object && t.addr === s.addr && t.reason === s.reason)
    ) {
      out.stuck.push(s);
    }
  }
  for (const w of from.wrappers) {
    if (!out.wrappers.some((x) => x.object === w.object && x.addr === w.addr)) out.wrappers.push(w);
  }
  out.partial ||= from.partial;
}

/** One step backwards through an instruction. */
type Step =
  | { loc: number; add: number; low?: { bits: number; value: number } }
  | { value: number }
  | { stuck: string };

/** A caller of a function: a call or jump instruction in some object. */
interface Caller {
  object: number;
  index: number;
  /** A call (pushes a return address) rather than a jump. */
  isCall: boolean;
}

/** Resolves the system call numbers of every site in a set of objects. */
export class Resolver {
  readonly #objects: readonly CodeObject[];
  readonly #memo = new Map<string, Outcome>();
  readonly #busy = new Set<string>();
  readonly #noreturn = new Map<string, boolean>();
  #noreturnDepth = 0;
  #importers?: Map<string, Caller[]>;
  #exporters?: Map<string, Place>;

  /** Creates a resolver over objects that may call each other's exports. */
  constructor(objects: readonly CodeObject[]) {
    this.#objects = objects;
  }

  /**
   * Resolves the site at instruction index `index` of object `object`.
   *
   * @param object Index of the object.
   * @param index Index of the `syscall` (or `sysenter`, `int 0x80`) instruction.
   * @returns The numbers found and where the search stopped.
   */
  resolve(object: number, index: number): SiteResult {
    const code = this.#objects[object].code;
    const out = this.#walk(object, index, RAX, 0);
    return {
      object,
      addr: code.addrs[index],
      kind: code.kinds[index],
      values: out.values,
      stuck: out.stuck,
      wrappers: out.wrappers,
    };
  }

  /** Every site of every object, resolved. */
  resolveAll(): SiteResult[] {
    return this.#objects.flatMap((o, i) => o.code.sites.map((index) => this.resolve(i, index)));
  }

  /** Follows `loc` backwards from just before instruction `start`. */
  #walk(object: number, start: number, startLoc: number, depth: number): Outcome {
    const out = empty();
    const obj = this.#objects[object];
    const code = obj.code;
    const seen = new Set<string>();
    const todo: [number, number, Transform][] = [[start, startLoc, IDENTITY]];
    let steps = 0;
    const stuck = (addr: number, reason: string) => {
      if (!out.stuck.some((s) => s.object === object && s.addr === addr && s.reason === reason)) {
        out.stuck.push({ object, addr, reason });
      }
    };
    while (todo.length > 0) {
      const [p, loc, t] = todo.pop()!;
      const key = `${p},${loc},${t.add},${t.keep},${t.set}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (++steps > STEP_LIMIT) {
        stuck(code.addrs[start], "search limit reached");
        break;
      }
      const addr = code.addrs[p];
      if (obj.entries.has(addr)) {
        merge(out, this.#entry(object, addr, loc, depth), t);
        continue;
      }
      const fall = code.contiguous(p) && this.#returns(object, p - 1);
      const preds: [number, boolean][] = fall ? [[p - 1, false]] : [];
      for (const j of code.jumpsTo.get(addr) ?? []) if (!fall || j !== p - 1) preds.push([j, true]);
      if (preds.length === 0) {
        // Alignment padding after a jump or a call that does not return: dead.
        if (!code.effect(p).nop) {
          stuck(addr, `${locationName(loc)} comes from code reached only indirectly`);
        }
        continue;
      }
      for (const [q, taken] of preds) {
        const known = this.#implied(object, q, taken, loc);
        if (known !== undefined) {
          addValue(out, apply(t, known), [{ object, addr: code.addrs[q - 1] }]);
          continue;
        }
        const step = this.#through(object, q, loc);
        if ("loc" in step) {
          let next = t;
          if (step.low) {
            const mask = 2 ** step.low.bits - 1;
            next = { add: t.add, keep: t.keep & ~mask, set: t.set | (step.low.value & t.keep) };
          } else if (step.add !== 0) {
            if (t.keep !== -1) {
              stuck(code.addrs[q], `arithmetic below a partial write ('${code.text(q)}')`);
              continue;
            }
            next = { ...t, add: t.add + step.add };
          }
          todo.push([q, step.loc, next]);
        } else if ("value" in step) {
          addValue(out, apply(t, step.value), [{ object, addr: code.addrs[q] }]);
        } else {
          stuck(code.addrs[q], step.stuck);
        }
      }
    }
    return out;
  }

  /**
   * The value of register `loc` that the edge out of branch `q` implies: 0
   * after `test r, r; je` taken (or `jne` not taken), N after `cmp r, N`.
   */
  #implied(object: number, q: number, taken: boolean, loc: number): number | undefined {
    const code = this.#objects[object].code;
    if (loc >= STACK || code.kinds[q] !== Kind.JCC || !code.contiguous(q)) return undefined;
    const cond = code.effect(q).cond;
    if (cond !== (taken ? "e" : "ne")) return undefined;
    const op = code.effect(q - 1).op;
    return op.t === "test" && op.reg === loc ? op.value : undefined;
  }

  /** Whether control can pass from instruction `i` to the next one. */
  #returns(object: number, i: number): boolean {
    const code = this.#objects[object].code;
    const kind = code.kinds[i];
    if (!fallsThrough(kind)) return false;
    if (kind !== Kind.CALL) return true;
    return !this.#callNeverReturns(object, code.targets.get(i)!);
  }

  /** Whether a call to `target` (maybe a PLT stub) never returns. */
  #callNeverReturns(object: number, target: number): boolean {
    const obj = this.#objects[object];
    const slot = obj.code.stubs.get(target);
    if (slot === undefined) return this.#isNoreturn(object, target);
    const name = obj.imports.get(slot);
    const def = name === undefined ? undefined : this.#exporter(name);
    return def !== undefined && this.#isNoreturn(def.object, def.addr);
  }

  /** The object that defines exported function `name` (the first, as ld.so binds). */
  #exporter(name: string): Place | undefined {
    if (this.#exporters === undefined) {
      this.#exporters = new Map();
      this.#objects.forEach((obj, object) => {
        for (const [addr, names] of obj.exports) {
          for (const n of names) {
            if (!this.#exporters!.has(n)) this.#exporters!.set(n, { object, addr });
          }
        }
      });
    }
    return this.#exporters.get(name);
  }

  /**
   * Whether the function at `entry` never returns: no path from its entry
   * reaches a `ret` or an indirect jump. Recursion counts as returning.
   */
  #isNoreturn(object: number, entry: number): boolean {
    const key = `${object}:${entry}`;
    const known = this.#noreturn.get(key);
    if (known !== undefined) return known;
    // Deep call chains are not followed (nor cached): assuming a return is the safe side.
    if (this.#noreturnDepth >= MAX_NORETURN_DEPTH) return false;
    this.#noreturn.set(key, false); // while busy: assume it returns
    const obj = this.#objects[object];
    const code = obj.code;
    const start = code.indexOf(entry);
    let result = start >= 0;
    const seen = new Set<number>();
    const todo = [start];
    const goTo = (target: number) => {
      if (target !== entry && obj.entries.has(target)) {
        if (!this.#callNeverReturns(object, target)) result = false; // a tail call
        return;
      }
      const t = code.indexOf(target);
      if (t < 0) result = false;
      else todo.push(t);
    };
    const next = (i: number) => {
      if (i + 1 < code.length && code.contiguous(i + 1)) todo.push(i + 1);
      else result = false;
    };
    this.#noreturnDepth++;
    while (result && todo.length > 0) {
      const i = todo.pop()!;
      if (seen.has(i)) continue;
      seen.add(i);
      if (seen.size > STEP_LIMIT) result = false;
      switch (code.kinds[i]) {
        case Kind.RET:
        case Kind.IJMP:
          result = false;
          break;
        case Kind.STOP:
          break;
        case Kind.JMP:
          goTo(code.targets.get(i)!);
          break;
        case Kind.JCC:
          goTo(code.targets.get(i)!);
          next(i);
          break;
        case Kind.CALL:
          if (!this.#callNeverReturns(object, code.targets.get(i)!)) next(i);
          break;
        default:
          next(i);
      }
    }
    this.#noreturnDepth--;
    this.#noreturn.set(key, result);
    return result;
  }

  /** What `loc` was before instruction `q`, given what it is after. */
  #through(object: number, q: number, loc: number): Step {
    const obj = this.#objects[object];
    const code = obj.code;
    const kind = code.kinds[q];
    const isCall = kind === Kind.CALL || kind === Kind.ICALL;
    if (loc < STACK) {
      if (isCall) {
        if (CALLEE_SAVED.has(loc)) return { loc, add: 0 };
        const target = code.targets.get(q);
        const callee = target === undefined ? code.text(q) : obj.symbolize(target);
        return { stuck: `${REG_NAMES[loc]} is set by the call to ${callee}` };
      }
      const e = code.effect(q);
      if ((e.writes & (1 << loc)) === 0) return { loc, add: 0 };
      const op = e.op;
      switch (op.t) {
        case "const":
          if (op.dst === loc) return { value: op.value };
          break;
        case "copy":
          if (op.dst === loc) return { loc: op.src, add: op.add };
          break;
        case "addi":
          if (op.dst === loc) return { loc, add: op.add };
          break;
        case "xchg":
          if (op.a === loc) return { loc: op.b, add: 0 };
          if (op.b === loc) return { loc: op.a, add: 0 };
          break;
        case "pop":
          if (op.dst === loc) return { loc: STACK, add: 0 };
          break;
        case "setlow":
          if (op.dst === loc) return { loc, add: 0, low: { bits: op.bits, value: op.value } };
          break;
      }
      return { stuck: `${REG_NAMES[loc]} is set by '${e.text}'` };
    }
    // A stack slot [rsp + depth].
    const depth = loc - STACK;
    if (isCall) return { loc, add: 0 }; // the callee works below rsp
    const e = code.effect(q);
    const op = e.op;
    const slot = (d: number): Step =>
      d >= 0 ? { loc: STACK + d, add: 0 } : { stuck: `stack slot moved below rsp by '${e.text}'` };
    switch (op.t) {
      case "push":
        if (depth !== 0) return slot(depth - 8);
        if (op.value !== undefined) return { value: op.value };
        if (op.src !== undefined && op.src !== RSP) return { loc: op.src, add: 0 };
        return { stuck: `stack slot is set by '${e.text}'` };
      case "pop":
        return slot(depth + 8);
      case "rsp":
        return slot(depth + op.delta);
      case "store":
        if (op.disp === depth) {
          if (op.value !== undefined) return { value: op.value };
          return { loc: op.src!, add: 0 };
        }
        if (Math.abs(op.disp - depth) < 8) return { stuck: `stack slot is set by '${e.text}'` };
        break;
    }
    if (e.writes & (1 << RSP)) return { stuck: `rsp is changed by '${e.text}'` };
    if (e.stackWrite) return { stuck: `stack slot may be set by '${e.text}'` };
    return { loc, add: 0 };
  }

  /** `loc` at the entry of the function at `addr`: continue at its callers. */
  #entry(object: number, addr: number, loc: number, depth: number): Outcome {
    const key = `${object}:${addr}:${loc}`;
    const cached = this.#memo.get(key);
    if (cached) return cached;
    const out = empty();
    const obj = this.#objects[object];
    if (this.#busy.has(key)) {
      out.partial = true; // a cycle: the outer search covers the other paths
      return out;
    }
    if (loc === RSP || (loc >= STACK && loc < STACK + 8)) {
      out.stuck.push({ object, addr, reason: `${locationName(loc)} at a function entry` });
      return out;
    }
    if (depth >= MAX_DEPTH) {
      out.stuck.push({ object, addr, reason: "too many wrapper levels" });
      return out;
    }
    this.#busy.add(key);
    const callers = this.#callers(object, addr);
    out.wrappers.push({ object, addr, location: locationName(loc), callers: callers.length });
    if (callers.length === 0 && !obj.exports.has(addr)) {
      out.stuck.push({
        object,
        addr,
        reason: `${locationName(loc)} is an argument of ${
          obj.symbolize(addr)
        }, which has no direct callers`,
      });
    }
    for (const c of callers) {
      const at = loc >= STACK && c.isCall ? loc - 8 : loc;
      merge(out, this.#walk(c.object, c.index, at, depth + 1), IDENTITY);
    }
    this.#busy.delete(key);
    if (!out.partial) this.#memo.set(key, out);
    return out;
  }

  /** Direct calls and jumps to `addr`, and calls of its exported names from any object. */
  #callers(object: number, addr: number): Caller[] {
    const code = this.#objects[object].code;
    const out: Caller[] = [];
    for (const index of code.callsTo.get(addr) ?? []) out.push({ object, index, isCall: true });
    for (const index of code.jumpsTo.get(addr) ?? []) out.push({ object, index, isCall: false });
    for (const name of this.#objects[object].exports.get(addr) ?? []) {
      out.push(...this.#importersOf(name));
    }
    return out;
  }

  /** Calls through a PLT stub or a GOT slot that name `name`, in every object. */
  #importersOf(name: string): Caller[] {
    if (this.#importers === undefined) {
      const all = new Map<string, Caller[]>();
      const add = (n: string, c: Caller) => {
        const list = all.get(n);
        if (list) list.push(c);
        else all.set(n, [c]);
      };
      this.#objects.forEach((obj, object) => {
        const code = obj.code;
        for (const [entry, slot] of code.stubs) {
          const n = obj.imports.get(slot);
          if (n === undefined) continue;
          for (const index of code.callsTo.get(entry) ?? []) {
            add(n, { object, index, isCall: true });
          }
          for (const index of code.jumpsTo.get(entry) ?? []) {
            add(n, { object, index, isCall: false });
          }
        }
        for (const [index, slot] of code.slotBranches) {
          const n = obj.imports.get(slot);
          if (n === undefined || code.stubs.has(code.addrs[index])) continue;
          if (index > 0 && code.stubs.has(code.addrs[index - 1])) continue;
          add(n, { object, index, isCall: code.kinds[index] === Kind.ICALL });
        }
      });
      this.#importers = all;
    }
    return this.#importers.get(name) ?? [];
  }
}
