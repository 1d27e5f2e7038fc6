/**
 * The GDB Remote Serial Protocol's framing: `$payload#cs` packets with a
 * modulo-256 checksum, `}`-escaping of binary data, `*` run-length
 * encoding (decoded only: the stub never sends it), `+`/`-`
 * acknowledgements and the interrupt byte (0x03). Pure functions and a
 * byte-stream parser, no I/O: the socket is in socket.ts.
 * @module
 */

const DOLLAR = 0x24, HASH = 0x23, ESCAPE = 0x7d, STAR = 0x2a;

/** Bytes that must be escaped in binary data (`$`, `#`, `}`, `*`). */
const SPECIAL = new Set([DOLLAR, HASH, ESCAPE, STAR]);

/** The interrupt byte gdb sends for Ctrl-C. */
export const INTERRUPT = 0x03;

/** The modulo-256 sum of `bytes`. */
export function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return sum;
}

/** `bytes` as lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Hex text to bytes; undefined if it is not whole hex byte pairs. */
export function fromHex(hex: string): Uint8Array | undefined {
  if (hex.length % 2 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A hex number (at most 64 bits); undefined if `s` is not one. */
export function parseHexNumber(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F]{1,16}$/.test(s)) return undefined;
  return BigInt("0x" + s);
}

/** `value` as `bytes` little-endian bytes, in hex (gdb's register encoding). */
export function leHex(value: bigint, bytes: number): string {
  let s = "";
  for (let i = 0; i < bytes; i++) {
    s += Number((value >> BigInt(8 * i)) & 0xffn).toString(16).padStart(2, "0");
  }
  return s;
}

/** Escapes binary data for a packet (`}` then the byte xor 0x20). */
export function escapeBinary(data: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (const b of data) {
    if (SPECIAL.has(b)) out.push(ESCAPE, b ^ 0x20);
    else out.push(b);
  }
  return new Uint8Array(out);
}

/** Undoes {@linkcode escapeBinary} (the `X` packet's data). */
export function unescapeBinary(data: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) {
    if (data[i] === ESCAPE && i + 1 < data.length) out.push(data[++i] ^ 0x20);
    else out.push(data[i]);
  }
  return new Uint8Array(out);
}

/** Expands `*` run-length encoding: `X*n` repeats X (n - 29) more times. */
export function expandRle(data: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) {
    if (data[i] === STAR && out.length && i + 1 < data.length) {
      const n = data[++i] - 29;
      const prev = out[out.length - 1];
      for (let k = 0; k < n; k++) out.push(prev);
    } else {
      out.push(data[i]);
    }
  }
  return new Uint8Array(out);
}

/** `payload` (text or bytes, already escaped) framed as `$payload#cs`. */
export function framePacket(payload: string | Uint8Array): Uint8Array {
  const body = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const out = new Uint8Array(body.length + 4);
  out[0] = DOLLAR;
  out.set(body, 1);
  out[body.length + 1] = HASH;
  out.set(new TextEncoder().encode(checksum(body).toString(16).padStart(2, "0")), body.length + 2);
  return out;
}

/** What the parser found in the byte stream. */
export type Incoming =
  /** A packet with a good checksum: its payload (escapes and RLE left as sent). */
  | { kind: "packet"; payload: Uint8Array }
  /** A packet whose checksum did not match (answer `-`). */
  | { kind: "bad" }
  /** The interrupt byte. */
  | { kind: "interrupt" }
  /** `+` or `-` from gdb. */
  | { kind: "ack"; ok: boolean };

/** The longest packet accepted; longer ones are dropped as bad. */
export const MAX_PACKET = 0x4000;

/**
 * Splits a byte stream into {@linkcode Incoming} items. Feed it what the
 * socket gives ({@linkcode PacketParser.push}); take items with
 * {@linkcode PacketParser.next}. Garbage between packets is skipped.
 */
export class PacketParser {
  #buf: number[] = [];
  #items: Incoming[] = [];
  /** 0 outside a packet, 1 in its payload, 2/3 in its checksum digits. */
  #state = 0;
  #sum = "";
  #overflow = false;

  /** Adds received bytes. */
  push(bytes: Uint8Array): void {
    for (const b of bytes) this.#byte(b);
  }

  /** The next complete item, if any. */
  next(): Incoming | undefined {
    return this.#items.shift();
  }

  /** Puts `items` back in front, in order (taken with {@linkcode next} and not used yet). */
  unshift(items: Incoming[]): void {
    this.#items.unshift(...items);
  }

  #byte(b: number): void {
    switch (this.#state) {
      case 0:
        if (b === DOLLAR) {
          this.#buf = [];
          this.#overflow = false;
          this.#state = 1;
        } else if (b === INTERRUPT) this.#items.push({ kind: "interrupt" });
        else if (b === 0x2b || b === 0x2d) this.#items.push({ kind: "ack", ok: b === 0x2b });
        return;
      case 1:
        if (b === HASH) {
          this.#state = 2;
          this.#sum = "";
        } else if (this.#buf.length < MAX_PACKET) this.#buf.push(b);
        else this.#overflow = true;
        return;
      default: {
        this.#sum += String.fromCharCode(b);
        if (this.#state === 2) {
          this.#state = 3;
          return;
        }
        this.#state = 0;
        const payload = new Uint8Array(this.#buf);
        const want = parseInt(this.#sum, 16);
        const ok = /^[0-9a-fA-F]{2}$/.test(this.#sum) && want === checksum(payload);
        this.#items.push(ok && !this.#overflow ? { kind: "packet", payload } : { kind: "bad" });
      }
    }
  }
}
