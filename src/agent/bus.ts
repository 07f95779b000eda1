/**
 * The event bus: the agent publishes each batch once; every subscriber has
 * its own bounded queue and its own pump that hands queued events to its sink
 * one batch at a time. A sink that is slow (a full disk, a stalled API client)
 * only fills its own queue; once that queue is full further events are
 * dropped for that subscriber alone, and every drop is counted.
 */

/** Receives a batch; the next batch comes only after the returned promise settles. */
export type Sink<T> = (batch: T[]) => void | Promise<void>;

export interface SubscribeOptions<T> {
  /** shown in status */
  name: string;
  /** drops are totalled per group (e.g. "export", "api") */
  group?: string;
  /** queue bound in events (default 10,000) */
  maxEvents?: number;
  /** queue bound in bytes as measured by sizeOf (default: unbounded) */
  maxBytes?: number;
  sizeOf?: (ev: T) => number;
  /** events it rejects never enter the queue */
  filter?: (ev: T) => boolean;
  /** called after each event dropped for this subscriber */
  onDrop?: (sub: Subscription<T>) => void;
  /** the sink threw or rejected; the subscription is closed by then */
  onError?: (err: unknown, sub: Subscription<T>) => void;
  /**
   * What a sink that keeps its own buffer (it takes each batch at once) still
   * holds, so that status shows it with the queue; it drops with countDropped().
   */
  backlog?: () => { events: number; bytes: number };
}

export interface SubscriptionStats {
  name: string;
  group: string;
  queued: number;
  queued_bytes: number;
  delivered: number;
  dropped: number;
}

const DEFAULT_MAX_EVENTS = 10_000;

export class Subscription<T> {
  readonly name: string;
  readonly group: string;
  /** events handed to the sink */
  delivered = 0;
  /** events dropped because the queue was full */
  dropped = 0;
  private queue: T[] = [];
  private bytes = 0;
  private running = false;
  private closedFlag = false;
  private idleWaiters: (() => void)[] = [];
  private readonly maxEvents: number;
  private readonly maxBytes: number;

  /** @internal made by EventBus.subscribe */
  constructor(
    private readonly sink: Sink<T>,
    private readonly opts: SubscribeOptions<T>,
    private readonly onDropped: (group: string, n?: number) => void,
    private readonly onClosed: (sub: Subscription<T>) => void,
  ) {
    this.name = opts.name;
    this.group = opts.group ?? 'default';
    this.maxEvents = opts.maxEvents ?? DEFAULT_MAX_EVENTS;
    this.maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY;
    if (!(this.maxEvents >= 1))
      throw new Error(`subscription ${this.name}: maxEvents ${this.maxEvents} must be >= 1`);
    if (opts.maxBytes !== undefined && !opts.sizeOf) {
      throw new Error(`subscription ${this.name}: maxBytes needs sizeOf`);
    }
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Events waiting for the sink. */
  get queued(): number {
    return this.queue.length;
  }

  /** @internal called by the bus for each published event */
  offer(ev: T): void {
    if (this.closedFlag) return;
    if (this.opts.filter && !this.opts.filter(ev)) return;
    const size = this.opts.sizeOf ? this.opts.sizeOf(ev) : 0;
    // an empty queue always takes one event, however large, so a single big
    // event cannot be refused forever
    if (this.queue.length >= this.maxEvents || (this.queue.length > 0 && this.bytes + size > this.maxBytes)) {
      this.dropped++;
      this.onDropped(this.group);
      this.opts.onDrop?.(this);
      return;
    }
    this.queue.push(ev);
    this.bytes += size;
  }

  /** n events the sink dropped from a buffer of its own: counted as the queue's are */
  countDropped(n: number): void {
    if (n <= 0) return;
    this.dropped += n;
    this.onDropped(this.group, n);
  }

  /**
   * @internal start the pump if it is not running. It runs at once: a sink
   * that takes its batch synchronously (returns no promise) gets it inside
   * publish(), so events reach the sinks (which copy what they keep) while
   * the publisher's next events are not made yet, and none waits in the
   * queue for the publisher's whole turn of the event loop (a ring's
   * wake-up can bring thousands: queued, they outlived young-generation
   * collections together, and overflowed the queue).
   */
  kick(): void {
    if (this.running || this.closedFlag || this.queue.length === 0) return;
    this.running = true;
    void this.pump();
  }

  /** Resolves when the queue is empty and the sink has finished its last batch. */
  idle(): Promise<void> {
    if (!this.running && (this.queue.length === 0 || this.closedFlag)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stop delivering; queued events are discarded (not counted as drops). */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.queue = [];
    this.bytes = 0;
    this.onClosed(this);
    if (!this.running) this.wakeIdle();
  }

  stats(): SubscriptionStats {
    const held = this.opts.backlog?.() ?? { events: 0, bytes: 0 };
    return {
      name: this.name,
      group: this.group,
      queued: this.queue.length + held.events,
      queued_bytes: (Number.isFinite(this.bytes) ? this.bytes : 0) + held.bytes,
      delivered: this.delivered,
      dropped: this.dropped,
    };
  }

  private async pump(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.closedFlag) {
        const batch = this.queue;
        this.queue = [];
        this.bytes = 0;
        this.delivered += batch.length;
        const done = this.sink(batch);
        // only a sink still busy with its batch is waited for
        if (done !== undefined) await done;
      }
    } catch (err) {
      this.close();
      this.opts.onError?.(err, this);
    } finally {
      this.running = false;
      this.wakeIdle();
    }
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }
}

export class EventBus<T> {
  private readonly subs = new Set<Subscription<T>>();
  private readonly drops = new Map<string, number>();
  /** events published so far */
  published = 0;

  subscribe(sink: Sink<T>, opts: SubscribeOptions<T>): Subscription<T> {
    const sub = new Subscription<T>(
      sink,
      opts,
      (g, n = 1) => this.drops.set(g, (this.drops.get(g) ?? 0) + n),
      (s) => this.subs.delete(s),
    );
    this.subs.add(sub);
    return sub;
  }

  /** Offer every event to every subscriber; never waits for a sink. */
  publish(batch: readonly T[]): void {
    if (batch.length === 0) return;
    this.published += batch.length;
    for (const sub of this.subs) {
      for (const ev of batch) sub.offer(ev);
      sub.kick();
    }
  }

  /** Drops so far in a group, including subscriptions since closed. */
  dropped(group: string): number {
    return this.drops.get(group) ?? 0;
  }

  subscriptions(): Subscription<T>[] {
    return [...this.subs];
  }

  /**
   * Wait until every subscriber whose group is listed (all when omitted) has
   * handed its queue to its sink, or until the timeout. Returns whether they did.
   */
  async settle(timeoutMs: number, groups?: string[]): Promise<boolean> {
    const subs = [...this.subs].filter((s) => !groups || groups.includes(s.group));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([Promise.all(subs.map((s) => s.idle())).then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
