/**
 * Agent configuration: built-in defaults, then the YAML file, then flags.
 * Config keys are the long flag names (kebab-case); a boolean setting X has
 * the flags --X and --no-X. Unknown keys and flags are errors that name them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Node } from 'yaml';
import { closest } from '../policy/yaml-view.js';
import { checkAddress, checkDuration } from './config-kinds.js';
import { describeFsError, UserError } from './fs-util.js';

export type StdoutFormat = 'json' | 'compact';

export interface AgentConfig {
  /** the file the settings came from; undefined when none was read */
  configFile: string | undefined;
  /** JSON-lines export file; undefined disables it */
  exportFile: string | undefined;
  exportFileMaxSizeMb: number;
  exportFileMaxBackups: number;
  exportStdout: boolean;
  stdoutFormat: StdoutFormat;
  apiSocket: string;
  argsMax: number;
  /** process.cap in events */
  processCaps: boolean;
  /** process.ns in events */
  processNs: boolean;
  /** process.cap and process.ns in every event naming the process, not only its own process_exec */
  capsNsEveryEvent: boolean;
  /** the process sensor's ring buffer, MiB (a power of 2) */
  ringBufferMb: number;
  /** wake-up coalescing of the ring readers, ms (0 = off) */
  ringHoldoffMs: number;
  /** what each API event stream may hold for a client that lags, MiB */
  apiClientBufferMb: number;
  /** watch only this cgroup v2 directory and below */
  cgroup: string | undefined;
  nodeName: string;
  /** build the process cache from /proc at start */
  seed: boolean;
  /** kernel run-time statistics of BPF programs (run count and time): ~2 clock reads per program run */
  bpfStats: boolean;
  /** where policies added at run time are kept (policies/NAME.yaml + policies/index.json) */
  stateDir: string;
  /** TracingPolicy files, or directories of them, loaded at start (not stored) */
  policy: string[];
  /** the embedded event store (SQLite); undefined disables it. Default STATE_DIR/events.db */
  storePath: string | undefined;
  /** events older than this leave the store; 0 keeps them */
  storeMaxAgeMs: number;
  /** the store file is kept under this size; 0: no limit */
  storeMaxSizeMb: number;
  /** Tetragon-style export filters: JSON lines or a JSON array (a list of objects in YAML) */
  exportAllowlist: ExportListSetting;
  exportDenylist: ExportListSetting;
  fieldFilters: ExportListSetting;
  /** applied before the event bus: no sink (API, store, files) sees what they redact */
  redactionFilters: ExportListSetting;
  /** events per minute the file export writes at most; -1: no limit */
  exportRateLimit: number;
  /** rotate the export file this often (ms) as well as by size; 0: by size only */
  exportFileRotationIntervalMs: number;
  /** gzip rotated export files (PATH.1.gz ...) */
  exportFileCompress: boolean;
  /** HOST:PORT of the Prometheus endpoint; undefined disables it */
  metricsAddress: string | undefined;
  /** HOST:PORT of the API over TCP (loopback when only a port); undefined: unix socket only */
  apiAddress: string | undefined;
  /** HOST:PORT (loopback) of the web UI (src/agent/ui-server.ts); undefined turns it off */
  uiAddress: string | undefined;
  /** bearer token for changes over TCP; created (mode 0600) when missing. Default STATE_DIR/api-token */
  apiTokenFile: string;
  /** where managed workloads (`osprey run`) are created; undefined: <cgroup2>/osprey.workloads */
  workloadCgroup: string | undefined;
  /** existing cgroups to label ([{path, labels, name?}]); checked by src/agent/workload-config.ts at start */
  workloads: ExportListSetting;
  /** which flows of allowed traffic the kernel reports: all | new | denied (src/agent/network.ts) */
  networkFlows: string;
}

/** An export filter list as the user gave it; parsed and checked by src/export at start. */
export type ExportListSetting = string | unknown[] | Record<string, unknown> | undefined;

/** The repository root (dist/src/agent -> ../../..). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const SYSTEM_CONFIG = '/etc/osprey/osprey.yaml';
export const BUNDLED_CONFIG = path.join(repoRoot, 'config/osprey.yaml');
export const DEFAULT_SOCKET = '/run/osprey/osprey.sock';
export const DEFAULT_STATE_DIR = '/var/lib/osprey';

type Kind =
  | 'path'
  | 'optional-path'
  | 'path-list'
  | 'bool'
  | 'string'
  | 'optional-string'
  | 'format'
  | 'number'
  | 'int'
  | 'duration'
  | 'address'
  | 'json-list';

interface Setting {
  key: string;
  field: Exclude<keyof AgentConfig, 'configFile'>;
  kind: Kind;
  min?: number;
  max?: number;
  /** an int that must be a power of 2 */
  pow2?: boolean;
  help: string;
  /** shown as the default in --help when the default is derived from another setting */
  defaultText?: string;
}

/** Every setting, in the order `osprey agent --help` lists them. */
export const SETTINGS: readonly Setting[] = [
  {
    key: 'export-file',
    field: 'exportFile',
    kind: 'optional-path',
    help: 'JSON-lines export file ("" disables)',
  },
  {
    key: 'export-file-max-size-mb',
    field: 'exportFileMaxSizeMb',
    kind: 'number',
    min: 0,
    help: 'rotate the export file at this size in MB',
  },
  {
    key: 'export-file-max-backups',
    field: 'exportFileMaxBackups',
    kind: 'int',
    min: 0,
    max: 1000,
    help: 'rotated export files to keep',
  },
  { key: 'export-stdout', field: 'exportStdout', kind: 'bool', help: 'write events to stdout' },
  {
    key: 'stdout-format',
    field: 'stdoutFormat',
    kind: 'format',
    help: 'json | compact | auto (compact on a terminal, else json)',
  },
  { key: 'api-socket', field: 'apiSocket', kind: 'path', help: 'unix socket of the local API' },
  {
    key: 'args-max',
    field: 'argsMax',
    kind: 'int',
    min: 0,
    max: 32767,
    help: 'bytes of argv captured per exec',
  },
  {
    key: 'process-caps',
    field: 'processCaps',
    kind: 'bool',
    help: 'capability sets (process.cap) in events; the largest part of each event',
  },
  {
    key: 'process-ns',
    field: 'processNs',
    kind: 'bool',
    help: 'namespace inodes (process.ns) in events',
  },
  {
    key: 'caps-ns-every-event',
    field: 'capsNsEveryEvent',
    kind: 'bool',
    help: "process.cap and process.ns in every event that names a process, not only in the process's own process_exec",
  },
  {
    key: 'ring-buffer-mb',
    field: 'ringBufferMb',
    kind: 'int',
    min: 1,
    max: 1024,
    pow2: true,
    help: "size of the process sensor's ring buffer in MiB (a power of 2)",
  },
  {
    key: 'ring-holdoff-ms',
    field: 'ringHoldoffMs',
    kind: 'int',
    min: 0,
    max: 100,
    help: 'after a wake-up with records, read the ring again this much later instead of on the next record (0: every record wakes the agent)',
  },
  {
    key: 'api-client-buffer-mb',
    field: 'apiClientBufferMb',
    kind: 'int',
    min: 1,
    max: 4096,
    help: 'MiB an API event stream holds for a client that lags; beyond it events are dropped for that client and counted',
  },
  { key: 'cgroup', field: 'cgroup', kind: 'optional-path', help: 'watch only this cgroup v2 subtree' },
  {
    key: 'node-name',
    field: 'nodeName',
    kind: 'optional-string',
    help: 'node_name in events and exec_id',
  },
  { key: 'seed', field: 'seed', kind: 'bool', help: 'build the process cache from /proc at start' },
  {
    key: 'bpf-stats',
    field: 'bpfStats',
    kind: 'bool',
    help: "count BPF programs' runs and run time (costs every program run on the host two clock reads)",
  },
  {
    key: 'state-dir',
    field: 'stateDir',
    kind: 'path',
    help: 'where policies added at run time are stored',
  },
  {
    key: 'policy',
    field: 'policy',
    kind: 'path-list',
    help: 'load the TracingPolicy FILE, or each *.yaml in DIR, at start (repeatable)',
  },
  {
    key: 'store-path',
    field: 'storePath',
    kind: 'optional-path',
    help: 'SQLite event store for history queries ("" disables)',
    defaultText: 'STATE_DIR/events.db',
  },
  {
    key: 'store-max-age',
    field: 'storeMaxAgeMs',
    kind: 'duration',
    help: 'delete stored events older than this (e.g. 7d; 0 keeps them)',
    defaultText: '7d',
  },
  {
    key: 'store-max-size-mb',
    field: 'storeMaxSizeMb',
    kind: 'number',
    min: -1,
    help: 'keep the event store under this size in MB (0: no limit)',
  },
  {
    key: 'export-allowlist',
    field: 'exportAllowlist',
    kind: 'json-list',
    help: 'export only events matching a filter (JSON lines, Tetragon filter fields)',
  },
  {
    key: 'export-denylist',
    field: 'exportDenylist',
    kind: 'json-list',
    help: 'do not export events matching a filter',
  },
  {
    key: 'field-filters',
    field: 'fieldFilters',
    kind: 'json-list',
    help: 'include/exclude fields per event type in the export file',
  },
  {
    key: 'redaction-filters',
    field: 'redactionFilters',
    kind: 'json-list',
    help: 'redact secrets in arguments (capture groups -> *****) before any sink',
  },
  {
    key: 'export-rate-limit',
    field: 'exportRateLimit',
    kind: 'int',
    min: -1,
    max: 2 ** 31,
    help: 'events per minute written to the export file (-1: no limit)',
  },
  {
    key: 'export-file-rotation-interval',
    field: 'exportFileRotationIntervalMs',
    kind: 'duration',
    help: 'also rotate the export file this often (e.g. 1h; 0: by size only)',
  },
  {
    key: 'export-file-compress',
    field: 'exportFileCompress',
    kind: 'bool',
    help: 'gzip rotated export files',
  },
  {
    key: 'metrics-address',
    field: 'metricsAddress',
    kind: 'address',
    help: 'Prometheus /metrics on HOST:PORT ("" disables)',
  },
  {
    key: 'api-address',
    field: 'apiAddress',
    kind: 'address',
    help: 'also serve the API on HOST:PORT (a bare :PORT is loopback)',
  },
  {
    key: 'ui-address',
    field: 'uiAddress',
    kind: 'address',
    help: 'serve the web UI on this loopback HOST:PORT ("" disables)',
  },
  {
    key: 'api-token-file',
    field: 'apiTokenFile',
    kind: 'path',
    help: 'bearer token for changes over the TCP API (created when missing)',
    defaultText: 'STATE_DIR/api-token',
  },
  {
    key: 'workload-cgroup',
    field: 'workloadCgroup',
    kind: 'optional-path',
    help: 'cgroup v2 directory for workloads started with osprey run',
    defaultText: '<cgroup2>/osprey.workloads',
  },
  {
    key: 'workloads',
    field: 'workloads',
    kind: 'json-list',
    help: 'label existing cgroups: [{path: system.slice/nginx.service, labels: {app: nginx}}]',
  },
  {
    key: 'network-flows',
    field: 'networkFlows',
    kind: 'string',
    help: 'flows of allowed traffic: all | new (no established/closed) | denied (none)',
  },
];

export interface LoadOptions {
  /** files tried in order when --config is not given */
  defaultConfigFiles?: string[];
  /** whether stdout is a terminal, for stdout-format auto */
  stdoutIsTTY?: boolean;
  hostname?: string;
  cwd?: string;
}

/**
 * Defaults before the config file and flags; null means "derived from the
 * state directory" (store-path, api-token-file).
 */
export type DefaultConfig = Omit<AgentConfig, 'stdoutFormat' | 'storePath' | 'apiTokenFile'> & {
  stdoutFormat: StdoutFormat | 'auto';
  storePath: string | undefined | null;
  apiTokenFile: string | null;
};

/** Built-in defaults: the same values config/osprey.yaml documents. */
export function defaults(hostname = os.hostname()): DefaultConfig {
  return {
    configFile: undefined,
    exportFile: '/var/log/osprey/events.log',
    exportFileMaxSizeMb: 10,
    exportFileMaxBackups: 5,
    exportStdout: true,
    stdoutFormat: 'auto',
    apiSocket: DEFAULT_SOCKET,
    argsMax: 4096,
    processCaps: true,
    processNs: true,
    capsNsEveryEvent: false,
    ringBufferMb: 4,
    ringHoldoffMs: 1,
    apiClientBufferMb: 32,
    cgroup: undefined,
    nodeName: hostname,
    seed: true,
    bpfStats: false,
    stateDir: DEFAULT_STATE_DIR,
    policy: [],
    storePath: null,
    storeMaxAgeMs: 7 * 86_400_000,
    storeMaxSizeMb: 512,
    exportAllowlist: undefined,
    exportDenylist: undefined,
    fieldFilters: undefined,
    redactionFilters: undefined,
    exportRateLimit: -1,
    exportFileRotationIntervalMs: 0,
    exportFileCompress: false,
    metricsAddress: DEFAULT_METRICS_ADDRESS,
    apiAddress: undefined,
    uiAddress: DEFAULT_UI_ADDRESS,
    apiTokenFile: null,
    workloadCgroup: undefined,
    workloads: [],
    networkFlows: 'all',
  };
}

export const DEFAULT_METRICS_ADDRESS = '127.0.0.1:2112';
export const DEFAULT_UI_ADDRESS = '127.0.0.1:2113';

/** One entry of a node:util parseArgs option table. */
export interface FlagOption {
  type: 'string' | 'boolean';
  short?: string;
  /** the flag may be given several times; its value is then a list */
  multiple?: boolean;
}

/** The parseArgs option table of `osprey agent`. */
export function agentFlagOptions(): Record<string, FlagOption> {
  const o: Record<string, FlagOption> = {
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const s of SETTINGS) {
    if (s.kind === 'bool') {
      o[s.key] = { type: 'boolean' };
      o[`no-${s.key}`] = { type: 'boolean' };
    } else if (s.kind === 'path-list') {
      o[s.key] = { type: 'string', multiple: true };
      o[`no-${s.key}`] = { type: 'boolean' };
    } else {
      o[s.key] = { type: 'string' };
      if (s.kind.startsWith('optional') || s.kind === 'address' || s.kind === 'json-list') {
        o[`no-${s.key}`] = { type: 'boolean' };
      }
    }
  }
  return o;
}

export interface ParsedAgentArgs {
  help: boolean;
  config: AgentConfig;
}

/**
 * Parse `osprey agent` flags and merge them over the config file over the
 * defaults. Usage errors throw UserError with exit code 2, config file
 * errors with exit code 1.
 */
export function loadAgentConfig(argv: string[], opts: LoadOptions = {}): ParsedAgentArgs {
  const flags = parseFlags(argv, agentFlagOptions());
  if (flags.help === true) return { help: true, config: finish(defaults(opts.hostname), opts) };
  const cwd = opts.cwd ?? process.cwd();

  const cfg = defaults(opts.hostname);
  const explicit = typeof flags.config === 'string' ? path.resolve(cwd, flags.config) : undefined;
  const file =
    explicit ?? (opts.defaultConfigFiles ?? [SYSTEM_CONFIG, BUNDLED_CONFIG]).find((f) => existsSync(f));
  if (file) {
    applyFile(cfg, file);
    cfg.configFile = file;
  }

  for (const s of SETTINGS) {
    const v = flags[s.key];
    const neg = flags[`no-${s.key}`];
    if (v !== undefined && neg !== undefined) {
      throw new UserError(`--${s.key} and --no-${s.key} contradict each other; give one`, 2);
    }
    if (neg === true) {
      set(cfg, s, s.kind === 'bool' ? false : s.kind === 'path-list' ? [] : undefined);
    } else if (Array.isArray(v)) {
      // a repeatable flag replaces the file's list, as any flag replaces its key
      set(
        cfg,
        s,
        v.map((p) => {
          if (p === '') throw new UserError(`--${s.key} needs a non-empty path`, 2);
          return path.resolve(cwd, p);
        }),
      );
    } else if (v !== undefined) {
      const val = s.kind === 'bool' ? v : convertFlag(s, v as string);
      if (typeof val === 'string' && (s.kind === 'path' || s.kind === 'optional-path')) {
        set(cfg, s, path.resolve(cwd, val));
      } else {
        set(cfg, s, val);
      }
    }
  }
  return { help: false, config: finish(cfg, opts) };
}

function finish(cfg: ReturnType<typeof defaults>, opts: LoadOptions): AgentConfig {
  const tty = opts.stdoutIsTTY ?? process.stdout.isTTY === true;
  return {
    ...cfg,
    storePath: cfg.storePath === null ? path.join(cfg.stateDir, 'events.db') : cfg.storePath,
    apiTokenFile: cfg.apiTokenFile ?? path.join(cfg.stateDir, 'api-token'),
    nodeName: cfg.nodeName || (opts.hostname ?? os.hostname()),
    stdoutFormat: cfg.stdoutFormat === 'auto' ? (tty ? 'compact' : 'json') : cfg.stdoutFormat,
  };
}

function set(cfg: ReturnType<typeof defaults>, s: Setting, v: unknown): void {
  (cfg as unknown as Record<string, unknown>)[s.field] = v;
}

/**
 * node:util parseArgs in strict mode, with its errors rewritten to name the
 * offending flag and exit with code 2.
 */
export function parseFlags(
  argv: string[],
  options: Record<string, FlagOption>,
): Record<string, string | boolean | string[] | undefined> {
  return parseCommandLine(argv, options, false).flags;
}

/** parseFlags for commands that take positional arguments too. */
export function parseCommandLine(
  argv: string[],
  options: Record<string, FlagOption>,
  allowPositionals = true,
): { flags: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals });
    return { flags: values as Record<string, string | boolean | string[] | undefined>, positionals };
  } catch (err) {
    const e = err as Error & { code?: string };
    const name = /'(-[^' ]+)/.exec(e.message)?.[1];
    switch (e.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
        const near = name?.startsWith('--') ? closest(name.slice(2), Object.keys(options), 3) : undefined;
        throw new UserError(`unknown flag ${name ?? e.message}${near ? `; did you mean --${near}?` : ''}`, 2);
      }
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
        if (/argument missing/.test(e.message)) throw new UserError(`flag ${name} needs a value`, 2);
        if (/does not take an argument/.test(e.message)) {
          throw new UserError(`flag ${name} takes no value`, 2);
        }
        throw new UserError(e.message, 2);
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
        const arg = /'([^']*)'/.exec(e.message)?.[1];
        throw new UserError(`unexpected argument ${arg !== undefined ? `"${arg}"` : ''}`.trim(), 2);
      }
      default:
        throw new UserError(e.message, 2);
    }
  }
}

/** A flag's string value converted to the setting's type. */
function convertFlag(s: Setting, raw: string): unknown {
  const r = check(s, s.kind === 'number' || s.kind === 'int' || s.kind === 'duration' ? numberOf(raw) : raw);
  if (r.error) throw new UserError(`--${s.key}: ${r.error}`, 2);
  return r.value;
}

function numberOf(raw: string): number | string {
  const t = raw.trim();
  return t !== '' && Number.isFinite(Number(t)) ? Number(t) : raw;
}

/** Validate a value for a setting; optional kinds turn "" and null into undefined. */
function check(s: Setting, v: unknown): { value?: unknown; error?: string } {
  const shown = v === undefined ? 'nothing' : JSON.stringify(v);
  switch (s.kind) {
    case 'bool':
      return typeof v === 'boolean' ? { value: v } : { error: `expected true or false, got ${shown}` };
    case 'path':
    case 'string':
      return typeof v === 'string' && v !== ''
        ? { value: v }
        : { error: `expected a non-empty string, got ${shown}` };
    case 'path-list': {
      if (v === null || v === '') return { value: [] };
      const list = typeof v === 'string' ? [v] : v;
      return Array.isArray(list) && list.every((p) => typeof p === 'string' && p !== '')
        ? { value: list }
        : { error: `expected a path or a list of paths, got ${shown}` };
    }
    case 'optional-path':
    case 'optional-string':
      if (v === null || v === '') return { value: undefined };
      return typeof v === 'string' ? { value: v } : { error: `expected a string, got ${shown}` };
    case 'format':
      return v === 'json' || v === 'compact' || v === 'auto'
        ? { value: v }
        : { error: `expected json, compact or auto, got ${shown}` };
    case 'number':
      return typeof v === 'number' && v > (s.min ?? Number.NEGATIVE_INFINITY)
        ? { value: v }
        : { error: `expected a number greater than ${s.min}, got ${shown}` };
    case 'int': {
      const ok = typeof v === 'number' && Number.isInteger(v) && v >= (s.min ?? 0) && v <= (s.max ?? 2 ** 31);
      if (ok && s.pow2 && (v & (v - 1)) !== 0) {
        return { error: `expected a power of 2 (1, 2, 4, 8, ...), got ${shown}` };
      }
      return ok ? { value: v } : { error: `expected an integer from ${s.min} to ${s.max}, got ${shown}` };
    }
    case 'duration':
      return checkDuration(s.key, v);
    case 'address':
      return checkAddress(s.key, v);
    case 'json-list':
      if (v === null || v === '') return { value: undefined };
      return typeof v === 'string' || (typeof v === 'object' && v !== null)
        ? { value: v }
        : { error: `expected JSON lines, a JSON array or a list of objects, got ${shown}` };
  }
}

const BY_KEY = new Map(SETTINGS.map((s) => [s.key, s]));

/**
 * The YAML parser, loaded when a config file is read: the CLI's client
 * commands import this module for its flags and defaults and never read a
 * file, and loading the parser took ~60 ms of their start-up.
 */
let yamlModule: typeof import('yaml') | undefined;
function yaml(): typeof import('yaml') {
  yamlModule ??= createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yamlModule;
}

/** Read a YAML config file over cfg; errors name the file, line and column. */
function applyFile(cfg: ReturnType<typeof defaults>, file: string): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(
      `cannot read config file ${file}: ${describeFsError(err)}; give an existing file with --config`,
    );
  }
  const { isMap, isScalar, LineCounter, parseDocument } = yaml();
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => {
    const p = lc.linePos(offset ?? 0);
    return `${file}:${p.line}:${p.col}`;
  };
  const err = doc.errors[0];
  if (err) {
    throw new UserError(`${at(err.pos[0])}: not valid YAML: ${err.message.split('\n')[0]}`);
  }
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return; // empty file: defaults
  if (!isMap(root)) {
    throw new UserError(`${at(root.range?.[0])}: expected settings as "key: value" lines`);
  }
  const dir = path.dirname(file);
  for (const pair of root.items) {
    const keyNode = pair.key as Node | null;
    const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
    const s = BY_KEY.get(key);
    if (!s) {
      const near = closest(key, [...BY_KEY.keys()], 3);
      throw new UserError(
        `${at(keyNode?.range?.[0])}: unknown key "${key}"; ` +
          (near
            ? `did you mean "${near}"? Fix or remove it.`
            : `remove it, or use one of: ${[...BY_KEY.keys()].join(', ')}`),
      );
    }
    const valueNode = pair.value as Node | null;
    const raw = valueNode === null ? null : valueNode.toJSON();
    const r = check(s, raw);
    if (r.error)
      throw new UserError(`${at(valueNode?.range?.[0] ?? keyNode?.range?.[0])}: ${key}: ${r.error}`);
    const v =
      typeof r.value === 'string' && s.kind.endsWith('path')
        ? path.resolve(dir, r.value)
        : Array.isArray(r.value) && s.kind === 'path-list'
          ? r.value.map((p: string) => path.resolve(dir, p))
          : r.value;
    set(cfg, s, v);
  }
}

/** `osprey agent --help` text for the settings. */
export function settingsHelp(): string {
  const d = defaults() as unknown as Record<string, unknown>;
  const lines: string[] = [];
  for (const s of SETTINGS) {
    const flag = s.kind === 'bool' ? `--[no-]${s.key}` : `--${s.key} ${metavar(s)}`;
    const def = d[s.field];
    const empty = def === undefined || (Array.isArray(def) && def.length === 0);
    const shown = s.defaultText
      ? ` (default ${s.defaultText})`
      : empty
        ? ''
        : ` (default ${s.key === 'node-name' ? 'hostname' : String(def)})`;
    lines.push(`      ${flag.padEnd(32)} ${s.help}${shown}`);
  }
  return lines.join('\n');
}

function metavar(s: Setting): string {
  if (s.kind === 'format') return 'FORMAT';
  if (s.kind === 'duration') return 'DURATION';
  if (s.kind === 'address') return 'HOST:PORT';
  if (s.kind === 'json-list') return 'JSON';
  if (s.kind === 'int' || s.kind === 'number') return 'N';
  if (s.kind.endsWith('path') || s.kind === 'path-list') return 'PATH';
  return 'NAME';
}
