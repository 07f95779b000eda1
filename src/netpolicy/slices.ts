/**
 * Long pure work (compiling, packing tables) as a generator that pauses
 * now and then, run either at once or in slices of the event loop, so that
 * a large policy does not hold up the events the agent is taking meanwhile.
 */

/** Runs the steps to their end, at once. */
export function runAll<T>(steps: Generator<void, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Runs the steps in slices of about `sliceMs` of the event loop, with a turn of the loop between. */
export async function runSliced<T>(steps: Generator<void, T>, sliceMs: number): Promise<T> {
  for (;;) {
    const until = performance.now() + sliceMs;
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      if (performance.now() >= until) break;
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
