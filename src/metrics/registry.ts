/**
 * A small Prometheus registry: counters and gauges with labels, fed either
 * by the code that sees the thing happen (a cell it increments) or by a
 * callback read at scrape time (for numbers another component already
 * keeps, such as ring-buffer depth or BPF run counts), rendered in the text
 * exposition format (version 0.0.4).
 *
 * Why not prom-client: the event path increments one counter per event, and
 * here that is a property increment on a cell the caller keeps, with no
 * label object to hash; the format itself is a few lines.
 */

export type MetricKind = 'counter' | 'gauge';

/** One value of a family; `value` is what the caller increments or sets. */
export class Cell {
  value = 0;
}

export interface Sample {
  /** in the order of the family's label names */
  labels: readonly string[];
  value: number;
}

export type Collector = () => Iterable<Sample>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export class MetricFamily {
  private readonly cells = new Map<string, { labels: readonly string[]; cell: Cell }>();
  private readonly collectors: Collector[] = [];

  /** @internal made by Registry */
  constructor(
    readonly name: string,
    readonly help: string,
    readonly kind: MetricKind,
    readonly labelNames: readonly string[],
  ) {
    if (!METRIC_NAME.test(name))
      throw new Error(`metric name "${name}" is not valid (letters, digits, "_", ":")`);
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith('__')) {
        throw new Error(
          `metric ${name}: label name "${l}" is not valid (letters, digits, "_"; no leading "__")`,
        );
      }
    }
  }

  /** The cell for these label values (created at 0). Keep it: looking it up is the costly part. */
  cell(...labels: string[]): Cell {
    if (labels.length !== this.labelNames.length) {
      throw new Error(
        `metric ${this.name} takes ${this.labelNames.length} label value(s) (${this.labelNames.join(', ')}), got ${labels.length}`,
      );
    }
    const key = labels.join('\u0000');
    let e = this.cells.get(key);
    if (e === undefined) {
      e = { labels, cell: new Cell() };
      this.cells.set(key, e);
    }
    return e.cell;
  }

  inc(labels: readonly string[] = [], n = 1): void {
    this.cell(...labels).value += n;
  }

  set(labels: readonly string[], value: number): void {
    this.cell(...labels).value = value;
  }

  /** Add samples read at scrape time; samples with the same labels as a cell (or each other) add up. */
  collect(fn: Collector): this {
    this.collectors.push(fn);
    return this;
  }

  /**
   * Every sample: cells, then what the collectors return. A collector that
   * throws is skipped (reported through onError) so one broken source does
   * not take the whole scrape down.
   */
  samples(onError?: (family: MetricFamily, err: unknown) => void): Sample[] {
    if (this.collectors.length === 0) {
      const out: Sample[] = [];
      for (const { labels, cell } of this.cells.values()) out.push({ labels, value: cell.value });
      return out;
    }
    const merged = new Map<string, Sample>();
    for (const [key, { labels, cell }] of this.cells) merged.set(key, { labels, value: cell.value });
    for (const fn of this.collectors) {
      try {
        for (const s of fn()) {
          if (s.labels.length !== this.labelNames.length) {
            throw new Error(
              `a sample has ${s.labels.length} label value(s), ${this.labelNames.length} expected`,
            );
          }
          const key = s.labels.join('\u0000');
          const prev = merged.get(key);
          if (prev) prev.value += s.value;
          else merged.set(key, { labels: s.labels, value: s.value });
        }
      } catch (err) {
        onError?.(this, err);
      }
    }
    return [...merged.values()];
  }
}

export class Registry {
  private readonly families = new Map<string, MetricFamily>();
  /** collectors that threw, by family name, since start */
  readonly collectErrors = new Map<string, number>();
  lastCollectError: string | undefined;

  counter(name: string, help: string, labelNames: readonly string[] = []): MetricFamily {
    return this.add(new MetricFamily(name, help, 'counter', labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): MetricFamily {
    return this.add(new MetricFamily(name, help, 'gauge', labelNames));
  }

  get(name: string): MetricFamily | undefined {
    return this.families.get(name);
  }

  /** Every family in the text exposition format, in registration order. */
  render(): string {
    const out: string[] = [];
    const onError = (f: MetricFamily, err: unknown) => {
      this.collectErrors.set(f.name, (this.collectErrors.get(f.name) ?? 0) + 1);
      this.lastCollectError = `${f.name}: ${err instanceof Error ? err.message : String(err)}`;
    };
    for (const f of this.families.values()) {
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`);
      out.push(`# TYPE ${f.name} ${f.kind}`);
      const samples = f.samples(onError);
      // a family without labels always shows its value, 0 before anything happened
      if (samples.length === 0 && f.labelNames.length === 0) out.push(`${f.name} 0`);
      for (const s of samples)
        out.push(`${f.name}${labelText(f.labelNames, s.labels)} ${formatValue(s.value)}`);
    }
    out.push('');
    return out.join('\n');
  }

  private add(f: MetricFamily): MetricFamily {
    if (this.families.has(f.name)) throw new Error(`metric ${f.name} is registered twice`);
    this.families.set(f.name, f);
    return f;
  }
}

function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return '';
  let s = '{';
  for (let i = 0; i < names.length; i++) {
    if (i > 0) s += ',';
    s += `${names[i]}="${escapeLabel(values[i]!)}"`;
  }
  return `${s}}`;
}

/** Label values escape backslash, double quote and newline. */
export function escapeLabel(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

/** HELP text escapes backslash and newline. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}
