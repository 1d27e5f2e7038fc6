/**
 * The Worker of src/vm/hostsignals.ts: catches the signals it is given and
 * sets their bits in the shared word, which the run's main thread takes.
 * @module
 */
/// <reference lib="deno.worker" />

self.onmessage = (e: MessageEvent<{ bits: Int32Array; signals: [Deno.Signal, number][] }>) => {
  const { bits, signals } = e.data;
  for (const [name, n] of signals) {
    Deno.addSignalListener(name, () => Atomics.or(bits, 0, 1 << n));
  }
  self.postMessage("ready");
};
