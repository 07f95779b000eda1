import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ExportEvent } from '../../src/events/types.js';
import { CONTENT_TYPE, MetricsServer, OspreyMetrics, Registry } from '../../src/metrics/index.js';

const execOf = (binary: string): ExportEvent => ({
  process_exec: {
    process: {
      exec_id: 'eA',
      pid: 7,
      uid: 0,
      cwd: '/',
      binary,
      arguments: '',
      flags: 'execve',
      start_time: '2026-01-10T12:00:00Z',
      auid: 0,
      tid: 7,
    },
  },
  node_name: 'n',
  time: '2026-01-10T12:00:00Z',
});
const kprobeOf = (binary: string, policy: string): ExportEvent => ({
  process_kprobe: {
    process: (execOf(binary) as { process_exec: { process: unknown } }).process_exec.process,
    function_name: '__x64_sys_openat',
    action: 'KPROBE_ACTION_POST',
    policy_name: policy,
  },
  node_name: 'n',
  time: '2026-01-10T12:00:00Z',
});

/** The value of one series in a scrape, undefined when absent. */
function seriesValue(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

async function scrape(url: string): Promise<{ status: number; type: string | null; body: string }> {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

describe('metrics', () => {
  it('serves /metrics on 127.0.0.1 and the counters move between scrapes', async () => {
    // an interface, as the agent's DropsStatus is: no index signature
    interface Drops {
      kernel_ringbuf: number;
      bus_queue_overflow: number;
    }
    let drops: Drops = { kernel_ringbuf: 3, bus_queue_overflow: 0 };
    let apiClients = 1;
    const m = new OspreyMetrics({
      version: '0.1.0',
      sources: {
        drops: () => drops,
        queues: () => ({ export_file: 12 }),
        ringBuffers: () => ({ events: 4096 }),
        processCache: () => ({ size: 321, evictions: 5 }),
        programs: () => [
          { name: 'osprey_exec', hook: 'tp_btf/sched_process_exec', run_count: 10, run_time_ns: 2e9 },
        ],
        policyActions: () => [{ policy: 'block-nc', action: 'sigkill', outcome: 'taken', count: 2 }],
        apiClients: () => apiClients,
      },
    });
    const server = await MetricsServer.listen({ host: '127.0.0.1', port: 0, metrics: m });
    try {
      assert.ok(server.port > 0);
      assert.equal(server.url, `http://127.0.0.1:${server.port}/metrics`);
      const ls = 'osprey_events_total{type="process_exec",policy="",binary="/bin/ls"}';

      let r = await scrape(server.url);
      assert.equal(r.status, 200);
      assert.equal(r.type, CONTENT_TYPE);
      assert.match(r.body, /^# HELP osprey_events_total /m);
      assert.match(r.body, /^# TYPE osprey_events_total counter$/m);
      assert.equal(seriesValue(r.body, ls), undefined);
      assert.equal(seriesValue(r.body, 'osprey_event_drops_total{stage="kernel_ringbuf"}'), 3);
      assert.equal(seriesValue(r.body, 'osprey_api_clients'), 1);

      m.observeEvent(execOf('/bin/ls'));
      m.observeEvent(execOf('/bin/ls'));
      m.observeEvents([kprobeOf('/usr/bin/cat', 'file-watch'), execOf('/usr/bin/cat')]);
      m.observeDrop('kernel_ringbuf', 2);
      m.observePolicyAction('block-nc', 'sigkill', 'monitor');
      drops = { kernel_ringbuf: 7, bus_queue_overflow: 1 };
      apiClients = 0;

      r = await scrape(server.url);
      assert.equal(seriesValue(r.body, ls), 2);
      assert.equal(
        seriesValue(
          r.body,
          'osprey_events_total{type="process_kprobe",policy="file-watch",binary="/usr/bin/cat"}',
        ),
        1,
      );
      assert.equal(
        seriesValue(r.body, 'osprey_events_total{type="process_exec",policy="",binary="/usr/bin/cat"}'),
        1,
      );
      // pushed and pulled counts of the same series add up
      assert.equal(seriesValue(r.body, 'osprey_event_drops_total{stage="kernel_ringbuf"}'), 9);
      assert.equal(seriesValue(r.body, 'osprey_event_drops_total{stage="bus_queue_overflow"}'), 1);
      assert.equal(seriesValue(r.body, 'osprey_api_clients'), 0);
      assert.equal(seriesValue(r.body, 'osprey_queue_depth{queue="export_file"}'), 12);
      assert.equal(seriesValue(r.body, 'osprey_ringbuf_pending_bytes{ring="events"}'), 4096);
      assert.equal(seriesValue(r.body, 'osprey_process_cache_size'), 321);
      assert.equal(seriesValue(r.body, 'osprey_process_cache_evictions_total'), 5);
      const prog = '{program="osprey_exec",hook="tp_btf/sched_process_exec"}';
      assert.equal(seriesValue(r.body, `osprey_bpf_program_runs_total${prog}`), 10);
      assert.equal(seriesValue(r.body, `osprey_bpf_program_run_seconds_total${prog}`), 2);
      assert.equal(
        seriesValue(
          r.body,
          'osprey_policy_actions_total{policy="block-nc",action="sigkill",outcome="taken"}',
        ),
        2,
      );
      assert.equal(
        seriesValue(
          r.body,
          'osprey_policy_actions_total{policy="block-nc",action="sigkill",outcome="monitor"}',
        ),
        1,
      );
      assert.equal(seriesValue(r.body, 'osprey_build_info{version="0.1.0"}'), 1);
      assert.ok((seriesValue(r.body, 'process_resident_memory_bytes') ?? 0) > 0);
      // no store source yet: the gauge has no value; then the store opens
      assert.equal(seriesValue(r.body, 'osprey_store_size_bytes'), 0);
      m.setSources({
        store: () => ({ bytes: 4096, rows: 3, written: 3, skipped: 1, failed: 0, deleted_by_retention: 0 }),
      });
      r = await scrape(server.url);
      assert.equal(seriesValue(r.body, 'osprey_store_size_bytes'), 4096);
      assert.equal(seriesValue(r.body, 'osprey_store_skipped_total'), 1);

      const head = await fetch(server.url, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal((await scrape(`http://127.0.0.1:${server.port}/nope`)).status, 404);
      assert.equal((await fetch(server.url, { method: 'POST' })).status, 405);
      assert.equal(server.stats().scrapes, 4);
    } finally {
      await server.close();
    }
  });

  it('bounds the binary and policy labels, counting the rest as "other"', () => {
    const m = new OspreyMetrics({ maxBinaries: 2, maxPolicies: 1 });
    for (const b of ['/a', '/b', '/c', '/d', '/a', '/d']) m.observeEvent(execOf(b));
    m.observeEvent(kprobeOf('/a', 'p1'));
    m.observeEvent(kprobeOf('/a', 'p2'));
    const text = m.render();
    const series = text.split('\n').filter((l) => l.startsWith('osprey_events_total{'));
    assert.deepEqual(series.sort(), [
      'osprey_events_total{type="process_exec",policy="",binary="/a"} 2',
      'osprey_events_total{type="process_exec",policy="",binary="/b"} 1',
      'osprey_events_total{type="process_exec",policy="",binary="other"} 3',
      'osprey_events_total{type="process_kprobe",policy="other",binary="/a"} 1',
      'osprey_events_total{type="process_kprobe",policy="p1",binary="/a"} 1',
    ]);
    assert.equal(seriesValue(text, 'osprey_metrics_label_overflow_total{label="binary"}'), 3);
    assert.equal(seriesValue(text, 'osprey_metrics_label_overflow_total{label="policy"}'), 1);
  });

  it('escapes label values and survives a source that throws', () => {
    const r = new Registry();
    r.counter('t_total', 'help with \\ and\nnewline', ['v']).inc(['a "quoted" \\ value\nx']);
    r.gauge('t_broken', 'a source that fails', ['x']).collect(() => {
      throw new Error('boom');
    });
    r.gauge('t_ok', 'after the broken one').set([], 1.5);
    const text = r.render();
    assert.match(text, /^# HELP t_total help with \\\\ and\\nnewline$/m);
    assert.match(text, /^t_total\{v="a \\"quoted\\" \\\\ value\\nx"\} 1$/m);
    assert.match(text, /^t_ok 1\.5$/m);
    assert.equal(r.lastCollectError, 't_broken: boom');
    assert.throws(() => r.counter('t_total', 'again'), /registered twice/);
    assert.throws(() => r.counter('bad name', 'x'), /not valid/);
    assert.throws(() => r.get('t_total')?.inc(['a', 'b']), /takes 1 label value/);
  });

  it('says what to do when the port is taken', async () => {
    const m = new OspreyMetrics();
    const a = await MetricsServer.listen({ port: 0, metrics: m });
    try {
      await assert.rejects(
        MetricsServer.listen({ port: a.port, metrics: m }),
        new RegExp(
          `metrics address 127\\.0\\.0\\.1:${a.port} is already in use; choose another with --metrics-address`,
        ),
      );
    } finally {
      await a.close();
    }
    await assert.rejects(MetricsServer.listen({ port: 70000, metrics: m }), /port 70000 must be an integer/);
  });
});
