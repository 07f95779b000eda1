/**
 * Values kept on objects — encodings of the objects they encode, links
 * between a process and its brief form (src/process/cache.ts) — in private fields (which
 * for...in, Object.keys, JSON.stringify, spread, Object.assign and
 * structured clones all skip), so copies do not inherit a stale one.
 * Objects that carry them are never changed after they are built: process
 * objects (see src/process/builder.ts), the capability sets, namespaces and
 * workloads they share, and events once published. A field on the object
 * rather than a WeakMap: tens of thousands of WeakMap entries made the
 * garbage collector's ephemeron pass a measurable part of the agent's CPU
 * in exec storms; and a private field rather than a non-enumerable symbol
 * property: Object.defineProperty took ~1 µs a process.
 */
class Host {
  constructor(o: object) {
    // the object being constructed is o: a subclass's private field lands on it
    // biome-ignore lint/correctness/noConstructorReturn: the point of this class
    return o as Host;
  }
}

/** One kept value: a private field any object can be given. */
export function slot<V>(): { get(o: object): V | undefined; set(o: object, v: V): void } {
  class Kept extends Host {
    #v: V;
    constructor(o: object, v: V) {
      super(o);
      this.#v = v;
    }
    static get(o: object): V | undefined {
      return #v in o ? (o as Kept).#v : undefined;
    }
  }
  return {
    get: Kept.get,
    set(o, v) {
      // frozen shared constants are encoded each time
      if (Object.isExtensible(o)) new Kept(o, v);
    },
  };
}

export type Slot<V> = ReturnType<typeof slot<V>>;
