/**
 * matchActions / matchReturnActions: what happens when a selector matches.
 * Normalized to "post or not (with its rate limit)" plus the enforcement
 * actions, since Post is implied unless NoPost is given.
 */
import { signalNumber } from '../events/signals.js';
import type { PolicyContext } from './context.js';
import { FEATURE_NAMES } from './kernel-caps.js';
import { LIMITS } from './limits.js';
import type { ActionSet, EnforceAction, PostAction, RateLimitScope } from './model.js';
import { parseRateLimit } from './values.js';
import { closest, type Field, isNull } from './yaml-view.js';

const ACTION_FIELDS = [
  'action',
  'argFd',
  'argName',
  'argUrl',
  'argFqdn',
  'argError',
  'argSig',
  'argSock',
  'rateLimit',
  'rateLimitScope',
  'kernelStackTrace',
  'userStackTrace',
  'imaHash',
] as const;

type Supported = 'Post' | 'NoPost' | 'Sigkill' | 'Signal' | 'Override' | 'NotifyEnforcer';

const SUPPORTED: Readonly<Record<string, Supported>> = {
  post: 'Post',
  nopost: 'NoPost',
  sigkill: 'Sigkill',
  signal: 'Signal',
  override: 'Override',
  notifyenforcer: 'NotifyEnforcer',
};

/** Tetragon actions Osprey does not take, by lower-case name. */
const TETRAGON_ONLY: Readonly<Record<string, string>> = {
  followfd: 'FollowFD',
  unfollowfd: 'UnfollowFD',
  copyfd: 'CopyFD',
  geturl: 'GetUrl',
  dnslookup: 'DnsLookup',
  tracksock: 'TrackSock',
  untracksock: 'UntrackSock',
  cleanupenforcernotification: 'CleanupEnforcerNotification',
  set: 'Set',
};

/** The fields each action takes besides `action`. */
const ACTION_ARGS: Readonly<Record<Supported, readonly string[]>> = {
  Post: ['rateLimit', 'rateLimitScope', 'kernelStackTrace', 'userStackTrace', 'imaHash'],
  NoPost: [],
  Sigkill: [],
  Signal: ['argSig'],
  Override: ['argError'],
  NotifyEnforcer: ['argSig', 'argError'],
};

const SCOPES: readonly RateLimitScope[] = ['thread', 'process', 'global'];

/** The hook actions are attached to, as actions need to know it. */
export interface ActionHost {
  kind: 'tracepoint' | 'syscall' | 'kprobe' | 'lsm' | 'fentry';
  label: string;
}

const supportedList = (): string => Object.values(SUPPORTED).join(', ');

/**
 * Read a matchActions or matchReturnActions list. An absent list is the
 * default: Post, no enforcement.
 */
export function readActions(ctx: PolicyContext, f: Field, host: ActionHost): ActionSet {
  const { r } = ctx;
  let post: PostAction | undefined = { rateLimitMs: undefined, rateLimitScope: 'thread' };
  let postAt: Field | undefined;
  let noPostAt: Field | undefined;
  const enforce: EnforceAction[] = [];

  for (const item of r.list(
    f,
    f.path.endsWith('matchReturnActions') ? 'matchReturnActions' : 'matchActions',
  )) {
    const o = r.object(item, ACTION_FIELDS, 'an action');
    if (!o) {
      if (isNull(item)) r.missing(item, 'action');
      continue;
    }
    const actionF = o.get('action');
    const written = r.string(actionF, 'action', true);
    if (written === undefined) continue;
    const action = SUPPORTED[written.toLowerCase()];
    if (!action) {
      const other = TETRAGON_ONLY[written.toLowerCase()];
      if (other) {
        ctx.error(
          actionF,
          `action ${other} is not supported by Osprey`,
          `supported actions: ${supportedList()}`,
        );
      } else {
        const guess = closest(written, Object.values(SUPPORTED));
        ctx.error(
          actionF,
          `unknown action "${written}"`,
          guess ? `did you mean "${guess}"?` : `supported actions: ${supportedList()}`,
        );
      }
      continue;
    }
    // A field another action takes is a mistake, not something to ignore.
    let fieldsOk = true;
    for (const key of o.keys()) {
      if (key === 'action' || ACTION_ARGS[action].includes(key) || !o.has(key)) continue;
      const users = (Object.keys(ACTION_ARGS) as Supported[]).filter((a) => ACTION_ARGS[a].includes(key));
      const tetragon =
        users.length === 0 ? 'FollowFD, CopyFD, GetUrl, DnsLookup or TrackSock' : users.join(' and ');
      ctx.error(o.get(key), `${key} does not apply to action ${action}`, `${key} is for ${tetragon}`);
      fieldsOk = false;
    }
    if (!fieldsOk) continue;
    const source = ctx.ref(item);

    switch (action) {
      case 'Post': {
        if (postAt) {
          ctx.error(
            actionF,
            'Post is given twice in this list',
            `keep one (the first is at line ${postAt.at.line})`,
          );
          continue;
        }
        postAt = item;
        let ok = true;
        for (const k of ['kernelStackTrace', 'userStackTrace', 'imaHash'] as const) {
          if (r.bool(o.get(k), k)) {
            ctx.error(o.get(k), `${k} is not supported by Osprey`, `remove it or set it to false`);
            ok = false;
          }
        }
        const rlF = o.get('rateLimit');
        let rateLimitMs: number | undefined;
        if (!isNull(rlF)) {
          const text = r.text(rlF, 'rateLimit');
          if (text === undefined) ok = false;
          else {
            const p = parseRateLimit(text);
            if (p.ok) rateLimitMs = p.value;
            else {
              ctx.error(rlF, p.message);
              ok = false;
            }
          }
        }
        const scopeF = o.get('rateLimitScope');
        let rateLimitScope: RateLimitScope = 'thread';
        const scope = r.string(scopeF, 'rateLimitScope');
        if (scope !== undefined) {
          if (!SCOPES.includes(scope as RateLimitScope)) {
            ctx.error(scopeF, `unknown rateLimitScope "${scope}"`, `scopes: ${SCOPES.join(', ')}`);
            ok = false;
          } else if (isNull(rlF)) {
            ctx.error(
              scopeF,
              'rateLimitScope needs a rateLimit',
              'add rateLimit (e.g. "1m") or remove the scope',
            );
            ok = false;
          } else rateLimitScope = scope as RateLimitScope;
        }
        if (ok) post = { rateLimitMs, rateLimitScope };
        break;
      }
      case 'NoPost':
        noPostAt = item;
        break;
      case 'Sigkill':
        enforce.push({ action: 'Sigkill', source });
        break;
      case 'Signal': {
        const sig = readSignal(ctx, o.get('argSig'), true);
        if (sig !== undefined) enforce.push({ action: 'Signal', signal: sig, source });
        break;
      }
      case 'Override': {
        if (!canOverride(ctx, actionF, host, 'action Override')) continue;
        const error = readErrno(ctx, o.get('argError'), true);
        if (error !== undefined) enforce.push({ action: 'Override', error, source });
        break;
      }
      case 'NotifyEnforcer': {
        if (!ctx.hasEnforcers) {
          ctx.error(
            actionF,
            'NotifyEnforcer needs an enforcer in spec.enforcers',
            'add spec.enforcers: [{calls: [...]}]',
          );
          continue;
        }
        const sigF = o.get('argSig');
        const errF = o.get('argError');
        if (isNull(sigF) && isNull(errF)) {
          ctx.error(actionF, 'NotifyEnforcer needs argSig or argError', 'e.g. argSig: 9 to kill the caller');
          continue;
        }
        const signal = isNull(sigF) ? undefined : readSignal(ctx, sigF, true);
        let error: number | undefined;
        if (!isNull(errF)) {
          if (!canOverride(ctx, errF, host, 'NotifyEnforcer argError')) continue;
          error = readErrno(ctx, errF, true);
          if (error === undefined) continue;
        }
        if (!isNull(sigF) && signal === undefined) continue;
        enforce.push({ action: 'NotifyEnforcer', signal, error, source });
        break;
      }
    }
  }
  if (enforce.length > LIMITS.enforceActions) {
    const extra = enforce[LIMITS.enforceActions]!;
    ctx.sink.add(
      extra.source,
      extra.source.fieldPath,
      `too many enforcement actions: ${enforce.length} (the limit is ${LIMITS.enforceActions} per selector)`,
      `keep one of ${enforce.map((a) => a.action).join(', ')}`,
    );
  }
  if (noPostAt) {
    if (postAt) {
      ctx.error(
        noPostAt,
        'NoPost and Post are both given',
        `NoPost suppresses the event Post sends; keep one (Post is at line ${postAt.at.line})`,
      );
    }
    post = undefined;
  }
  return { post, enforce };
}

/** Override replaces a kernel function's return value: kprobes only, and only with bpf_override_return. */
function canOverride(ctx: PolicyContext, f: Field, host: ActionHost, what: string): boolean {
  if (host.kind === 'tracepoint') {
    ctx.error(
      f,
      `${what} applies to kprobes: a tracepoint has no return value to override`,
      'use Sigkill or Signal',
    );
    return false;
  }
  if (!ctx.kernel.overrideReturn) {
    ctx.error(
      f,
      `${ctx.policyPrefix}${host.label}: ${what} needs ${FEATURE_NAMES.overrideReturn}, which this kernel lacks`,
      'use Sigkill or Signal to stop the caller instead',
    );
    return false;
  }
  return true;
}

/** argSig: a signal number 1..64 or a name ("SIGKILL", "KILL"). */
function readSignal(ctx: PolicyContext, f: Field, required: boolean): number | undefined {
  if (isNull(f)) {
    if (required) ctx.r.missing(f, 'argSig', 'the signal to send, e.g. argSig: 9 (SIGKILL)');
    return undefined;
  }
  const text = ctx.r.text(f, 'argSig');
  if (text === undefined) return undefined;
  const n = signalNumber(text.trim());
  if (n === undefined || n < 1 || n > LIMITS.maxSignal) {
    ctx.error(
      f,
      `argSig "${text}" is not a signal`,
      `give a number 1..${LIMITS.maxSignal} or a name like SIGKILL`,
    );
    return undefined;
  }
  return n;
}

/** argError: the value the call returns instead, an int32 (usually -errno). */
function readErrno(ctx: PolicyContext, f: Field, required: boolean): number | undefined {
  if (isNull(f)) {
    if (required) ctx.r.missing(f, 'argError', 'the value the call returns instead, e.g. argError: -1');
    return undefined;
  }
  return ctx.r.int(f, 'argError', -0x80000000, 0x7fffffff);
}
