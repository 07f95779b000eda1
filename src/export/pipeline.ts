/**
 * Everything an exporter applies before it writes, in Tetragon's order:
 * allow/deny lists, then the rate limit (only what would be exported counts
 * against it), then redaction, then field filters. rate_limit_info events
 * bypass all of it.
 */
import type { ExportEvent } from '../events/types.js';
import { FieldFilter, type FieldFilterSpec, parseFieldFilters } from './fields.js';
import { type EventFilterSpec, type EventPredicate, makeAllowDeny, parseFilterList } from './filter.js';
import { ExportOptionError } from './json-list.js';
import { RateLimiter } from './rate-limit.js';
import { parseRedactionFilters, type RedactionFilterSpec, Redactor } from './redact.js';

/**
 * The options as the user writes them (flags or config keys): filter lists
 * as JSON text (one object per line, or a JSON array) or already parsed.
 */
export interface ExportOptions {
  /** --export-allowlist */
  allowList?: unknown;
  /** --export-denylist */
  denyList?: unknown;
  /** --field-filters */
  fieldFilters?: unknown;
  /** --redaction-filters */
  redactionFilters?: unknown;
  /** --export-rate-limit: events per minute; undefined or -1 for no limit */
  rateLimitPerMinute?: number;
  /** node_name of rate_limit_info events */
  nodeName: string;
  /** how often at most a rate_limit_info is due (default one minute) */
  rateLimitIntervalMs?: number;
}

export interface ExportPipelineParts {
  allow?: EventFilterSpec[];
  deny?: EventFilterSpec[];
  fields?: FieldFilterSpec[];
  redactions?: RedactionFilterSpec[];
  rateLimitPerMinute?: number;
  nodeName: string;
  rateLimitIntervalMs?: number;
}

export interface ExportPipelineStats {
  /** events handed on */
  passed: number;
  /** stopped by the allow or deny list */
  filtered_out: number;
  /** dropped by the rate limit */
  rate_limited: number;
  /** events that had something redacted */
  redacted: number;
  rate_limit_info_sent: number;
}

export class ExportPipeline {
  private readonly allowed: EventPredicate | undefined;
  private readonly limiter: RateLimiter | undefined;
  private readonly redactor: Redactor;
  private readonly fields: FieldFilter[];
  private passed = 0;
  private filteredOut = 0;
  private infoSent = 0;

  constructor(parts: ExportPipelineParts) {
    this.allowed =
      (parts.allow?.length ?? 0) > 0 || (parts.deny?.length ?? 0) > 0
        ? makeAllowDeny({ allow: parts.allow ?? [], deny: parts.deny ?? [] })
        : undefined;
    const rate = parts.rateLimitPerMinute;
    if (rate !== undefined && rate !== -1) {
      try {
        this.limiter = new RateLimiter({
          eventsPerMinute: rate,
          nodeName: parts.nodeName,
          intervalMs: parts.rateLimitIntervalMs,
        });
      } catch (err) {
        throw new ExportOptionError(`${(err as Error).message} (or -1 for no limit)`);
      }
    }
    this.redactor = new Redactor(parts.redactions ?? []);
    this.fields = (parts.fields ?? []).map((f) => new FieldFilter(f));
  }

  /** Parse the user's options; an ExportOptionError names the option, the line and the field. */
  static fromOptions(o: ExportOptions): ExportPipeline {
    const parts: ExportPipelineParts = {
      allow: parseFilterList(o.allowList, 'export allow list'),
      deny: parseFilterList(o.denyList, 'export deny list'),
      fields: parseFieldFilters(o.fieldFilters, 'field filters'),
      redactions: parseRedactionFilters(o.redactionFilters, 'redaction filters'),
      nodeName: o.nodeName,
    };
    if (o.rateLimitPerMinute !== undefined) parts.rateLimitPerMinute = o.rateLimitPerMinute;
    if (o.rateLimitIntervalMs !== undefined) parts.rateLimitIntervalMs = o.rateLimitIntervalMs;
    return new ExportPipeline(parts);
  }

  /** Whether it changes anything at all (when not, an exporter can skip it). */
  get active(): boolean {
    return (
      this.allowed !== undefined ||
      this.limiter !== undefined ||
      this.redactor.active ||
      this.fields.length > 0
    );
  }

  /**
   * The events to write for this batch, in order: a rate_limit_info first
   * when one is due, then the batch's events that pass, redacted and
   * field-filtered. The input and its events are left as they are.
   */
  apply(batch: readonly ExportEvent[], nowMs = Date.now()): ExportEvent[] {
    const out: ExportEvent[] = this.due(nowMs);
    for (const ev of batch) {
      if (this.allowed && !this.allowed(ev)) {
        this.filteredOut++;
        continue;
      }
      if (this.limiter && !this.limiter.allow(nowMs)) continue;
      let type = 'unknown';
      for (const k in ev) {
        if (k !== 'node_name' && k !== 'time' && k !== 'aggregation_info') {
          type = k;
          break;
        }
      }
      let e = this.redactor.apply(ev, type);
      for (const f of this.fields) e = f.apply(e, type);
      out.push(e);
      this.passed++;
    }
    return out;
  }

  /** The rate_limit_info due now, if any: call it from a timer so a stream gone quiet still reports. */
  due(nowMs = Date.now()): ExportEvent[] {
    const info = this.limiter?.takeInfo(nowMs);
    if (!info) return [];
    this.infoSent++;
    return [info];
  }

  /**
   * The rate_limit_info for what was dropped since the last one, whether or
   * not the interval is over: for an exporter about to close, so that its
   * last gap is reported too.
   */
  flushInfo(nowMs = Date.now()): ExportEvent[] {
    const info = this.limiter?.takeInfo(nowMs, true);
    if (!info) return [];
    this.infoSent++;
    return [info];
  }

  stats(): ExportPipelineStats {
    return {
      passed: this.passed,
      filtered_out: this.filteredOut,
      rate_limited: this.limiter?.dropped ?? 0,
      redacted: this.redactor.redacted,
      rate_limit_info_sent: this.infoSent,
    };
  }
}

/**
 * A sink with the pipeline in front of it, and a timer that hands it due
 * rate_limit_info events when no batch comes. The sink may then be called
 * while a batch is still being written: the file and stdout exporters order
 * their writes themselves.
 */
export function pipelineSink(
  pipeline: ExportPipeline,
  sink: (batch: ExportEvent[]) => void | Promise<void>,
  tickMs = 1000,
): { sink: (batch: ExportEvent[]) => void | Promise<void>; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  if (pipeline.active) {
    timer = setInterval(() => {
      const info = pipeline.due();
      // the exporters count their own write errors; a rejected info write has nowhere else to go
      if (info.length > 0) void Promise.resolve(sink(info)).catch(() => undefined);
    }, tickMs);
    timer.unref();
  }
  return {
    sink: (batch) => {
      if (!pipeline.active) return sink(batch);
      const out = pipeline.apply(batch);
      return out.length > 0 ? sink(out) : undefined;
    },
    stop: () => clearInterval(timer),
  };
}
