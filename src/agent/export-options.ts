/**
 * The export options of the agent, checked at start before anything is
 * attached, and split by where they apply:
 *
 *   - redaction filters apply to every event before it reaches the bus, so
 *     that no sink (API streams, the store, the export files, stdout) ever
 *     holds a secret: a password redacted in the export file but visible in
 *     `osprey events` or in the store would not be redacted at all;
 *   - the allow/deny lists, field filters and the rate limit shape what the
 *     export file holds (Tetragon's export flags), and leave the other sinks
 *     whole: a rate limit meant to protect a log pipeline must not blind the
 *     store or a live investigation.
 */
import type { ExportEvent } from '../events/types.js';
import {
  ExportOptionError,
  ExportPipeline,
  type ExportPipelineStats,
  parseFieldFilters,
  parseFilterList,
  parseRedactionFilters,
  pipelineSink,
  Redactor,
} from '../export/index.js';
import type { AgentConfig } from './config.js';
import { UserError } from './fs-util.js';

export interface RedactionStatus {
  filters: number;
  /** events that had something redacted */
  events_redacted: number;
}

type Sink = (batch: ExportEvent[]) => void | Promise<void>;

function checked<T>(flag: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof ExportOptionError) throw new UserError(`--${flag}: ${err.message}`);
    throw err;
  }
}

export class ExportOptions {
  private readonly redactor: Redactor | undefined;
  private readonly redactionCount: number;
  private readonly pipeline: ExportPipeline | undefined;
  private stopTimer: (() => void) | undefined;

  /** Parse and check every option; a bad one is a UserError naming its flag, line and field. */
  constructor(cfg: AgentConfig) {
    const redactions = checked('redaction-filters', () =>
      parseRedactionFilters(cfg.redactionFilters, 'redaction filters'),
    );
    this.redactionCount = redactions.length;
    this.redactor = redactions.length > 0 ? new Redactor(redactions) : undefined;
    const allow = checked('export-allowlist', () =>
      parseFilterList(cfg.exportAllowlist, 'export allow list'),
    );
    const deny = checked('export-denylist', () => parseFilterList(cfg.exportDenylist, 'export deny list'));
    const fields = checked('field-filters', () => parseFieldFilters(cfg.fieldFilters, 'field filters'));
    const file = checked(
      'export-rate-limit',
      () =>
        new ExportPipeline({
          allow,
          deny,
          fields,
          // redaction happened before the bus
          nodeName: cfg.nodeName,
          ...(cfg.exportRateLimit !== -1 ? { rateLimitPerMinute: cfg.exportRateLimit } : {}),
        }),
    );
    this.pipeline = file.active ? file : undefined;
  }

  /** Events with their secrets redacted (copies; the rest are passed through as they are). */
  redact(events: ExportEvent[]): ExportEvent[] {
    const r = this.redactor;
    if (!r) return events;
    let out: ExportEvent[] | undefined;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      const red = r.apply(ev, payloadKey(ev));
      if (red !== ev) {
        out ??= events.slice();
        out[i] = red;
      }
    }
    return out ?? events;
  }

  /** The file exporter's sink with the lists, field filters and rate limit in front of it. */
  fileSink(sink: Sink): Sink {
    if (!this.pipeline) return sink;
    const ps = pipelineSink(this.pipeline, sink);
    this.stopTimer = ps.stop;
    this.finalSink = sink;
    return ps.sink;
  }

  private finalSink: Sink | undefined;

  /**
   * Stop the rate_limit_info timer and hand the file what was dropped since
   * the last rate_limit_info, so that a gap is never silent, even when the
   * agent stops before the interval is over.
   */
  async closeFile(): Promise<void> {
    this.stopTimer?.();
    this.stopTimer = undefined;
    const info = this.pipeline?.flushInfo();
    if (info && info.length > 0 && this.finalSink) await this.finalSink(info);
  }

  fileStats(): ExportPipelineStats | undefined {
    return this.pipeline?.stats();
  }

  redactionStatus(): RedactionStatus | null {
    return this.redactor ? { filters: this.redactionCount, events_redacted: this.redactor.redacted } : null;
  }
}

function payloadKey(ev: ExportEvent): string {
  for (const k in ev) if (k !== 'node_name' && k !== 'time' && k !== 'aggregation_info') return k;
  return 'unknown';
}
