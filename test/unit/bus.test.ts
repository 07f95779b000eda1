import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventBus } from '../../src/agent/bus.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('EventBus', () => {
  it('delivers every event to every subscriber, in order, in batches', async () => {
    const bus = new EventBus<number>();
    const a: number[] = [];
    const b: number[][] = [];
    bus.subscribe((batch) => void a.push(...batch), { name: 'a' });
    bus.subscribe((batch) => void b.push(batch), { name: 'b' });
    bus.publish([1, 2, 3]);
    // a sink that takes its batch synchronously has it when publish returns
    assert.deepEqual(a, [1, 2, 3]);
    bus.publish([4]);
    assert.deepEqual(a, [1, 2, 3, 4]);
    assert.deepEqual(b, [[1, 2, 3], [4]]);
    assert.equal(bus.published, 4);
    await tick();
    assert.deepEqual(b, [[1, 2, 3], [4]], 'nothing left to deliver later');
  });

  it('queues behind a sink still busy with its batch, and hands over what waited as one batch', async () => {
    const bus = new EventBus<number>();
    const got: number[][] = [];
    let release: () => void = () => {};
    bus.subscribe(
      (batch) => {
        got.push(batch);
        return new Promise<void>((r) => {
          release = r;
        });
      },
      { name: 'busy' },
    );
    bus.publish([1]);
    bus.publish([2]);
    bus.publish([3, 4]);
    assert.deepEqual(got, [[1]]);
    release();
    await tick();
    assert.deepEqual(got, [[1], [2, 3, 4]]);
  });

  it('keeps a stalled subscriber from holding up the others, and counts its drops', async () => {
    const bus = new EventBus<number>();
    const fast: number[] = [];
    let release: () => void = () => {};
    const stalled = new Promise<void>((r) => {
      release = r;
    });
    const slowSeen: number[] = [];
    const slow = bus.subscribe(
      async (batch) => {
        slowSeen.push(...batch);
        await stalled;
      },
      { name: 'slow', group: 'export', maxEvents: 5 },
    );
    bus.subscribe((batch) => void fast.push(...batch), { name: 'fast', group: 'export', maxEvents: 5 });

    bus.publish([0]); // the slow sink takes this one and stalls
    await tick();
    for (let i = 1; i <= 20; i++) {
      bus.publish([i]);
      await tick();
    }
    assert.deepEqual(
      fast,
      Array.from({ length: 21 }, (_, i) => i),
    );
    assert.deepEqual(slowSeen, [0]);
    assert.equal(slow.queued, 5, 'the slow queue stays at its bound');
    assert.equal(slow.dropped, 15);
    assert.equal(bus.dropped('export'), 15);
    assert.equal(bus.dropped('other'), 0);

    release();
    await slow.idle();
    assert.deepEqual(slowSeen, [0, 1, 2, 3, 4, 5], 'after the stall it gets what was queued');
  });

  it('bounds a queue by bytes as well as events', async () => {
    const bus = new EventBus<string>();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const got: string[] = [];
    const sub = bus.subscribe(
      async (batch) => {
        got.push(...batch);
        await gate;
      },
      { name: 's', maxEvents: 100, maxBytes: 10, sizeOf: (s) => s.length },
    );
    bus.publish(['first']);
    await tick();
    bus.publish(['aaaa', 'bbbb', 'cccc', 'dd']); // 4 + 4 fit, 'cccc' would make 12, 'dd' makes 10
    assert.equal(sub.queued, 3);
    assert.equal(sub.dropped, 1);
    release();
    await sub.idle();
    assert.deepEqual(got, ['first', 'aaaa', 'bbbb', 'dd']);
  });

  it('takes one oversized event into an empty queue rather than refusing it forever', async () => {
    const bus = new EventBus<string>();
    const got: string[] = [];
    bus.subscribe((b) => void got.push(...b), { name: 's', maxBytes: 4, sizeOf: (s) => s.length });
    bus.publish(['much too long']);
    await tick();
    assert.deepEqual(got, ['much too long']);
  });

  it('applies a subscriber filter before queueing', async () => {
    const bus = new EventBus<number>();
    const even: number[] = [];
    const sub = bus.subscribe((b) => void even.push(...b), { name: 'even', filter: (n) => n % 2 === 0 });
    bus.publish([1, 2, 3, 4, 5, 6]);
    await sub.idle();
    assert.deepEqual(even, [2, 4, 6]);
    assert.equal(sub.delivered, 3);
  });

  it('closes a subscriber whose sink throws and tells it why', async () => {
    const bus = new EventBus<number>();
    const errors: string[] = [];
    const other: number[] = [];
    const bad = bus.subscribe(
      () => {
        throw new Error('disk on fire');
      },
      { name: 'bad', onError: (e) => errors.push((e as Error).message) },
    );
    bus.subscribe((b) => void other.push(...b), { name: 'ok' });
    bus.publish([1]);
    await tick();
    bus.publish([2]);
    await tick();
    assert.deepEqual(errors, ['disk on fire']);
    assert.ok(bad.closed);
    assert.equal(bus.subscriptions().length, 1);
    assert.deepEqual(other, [1, 2]);
  });

  it('calls onDrop for each dropped event', async () => {
    const bus = new EventBus<number>();
    let drops = 0;
    bus.subscribe(() => new Promise<void>(() => {}), { name: 's', maxEvents: 1, onDrop: () => drops++ });
    bus.publish([1]);
    await tick();
    bus.publish([2, 3, 4]);
    assert.equal(drops, 2);
  });

  it('settle waits for sinks, and gives up at its timeout', async () => {
    const bus = new EventBus<number>();
    const got: number[] = [];
    bus.subscribe(
      async (b) => {
        await new Promise((r) => setTimeout(r, 20));
        got.push(...b);
      },
      { name: 'slowish', group: 'export' },
    );
    bus.subscribe(() => new Promise<void>(() => {}), { name: 'stuck', group: 'api' });
    bus.publish([1, 2]);
    assert.equal(await bus.settle(2000, ['export']), true);
    assert.deepEqual(got, [1, 2]);
    const t0 = Date.now();
    assert.equal(await bus.settle(50), false);
    assert.ok(Date.now() - t0 < 1000);
  });
});
