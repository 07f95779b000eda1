/**
 * spec.lists: named lists of syscalls (or other values) that kprobe `call`,
 * enforcer `calls` and InMap values refer to as `list:NAME`.
 */
import type { PolicyContext } from './context.js';
import { FEATURE_NAMES } from './kernel-caps.js';
import type { ListType, PolicyList, SyscallTarget } from './model.js';
import { SYSCALL_SUBSYSTEM, syscallName } from './syscalls.js';
import { type Field, isNull } from './yaml-view.js';

const LIST_FIELDS = ['name', 'type', 'values', 'pattern', 'validated'] as const;
const LIST_TYPES = ['syscalls', 'generated_syscalls', 'generated_ftrace'];
export const LIST_PREFIX = 'list:';

/** Read spec.lists into ctx.lists; report every problem. */
export function readLists(ctx: PolicyContext, f: Field): void {
  const { r } = ctx;
  for (const item of r.list(f, 'spec.lists')) {
    const o = r.object(item, LIST_FIELDS, 'a list');
    if (!o) {
      if (isNull(item)) r.missing(item, 'list entry');
      continue;
    }
    const nameF = o.get('name');
    const name = r.string(nameF, 'list name', true);
    if (name === undefined) continue;
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
      ctx.error(nameF, `list name "${name}" may only have letters, digits, "_", "." and "-"`);
      continue;
    }
    if (ctx.declaredLists.has(name)) {
      ctx.error(nameF, `list "${name}" is defined twice`, 'give each list its own name');
      continue;
    }
    ctx.declaredLists.add(name);

    const typeF = o.get('type');
    const rawType = r.string(typeF, 'list type') ?? '';
    let type: ListType;
    const lower = rawType.toLowerCase();
    if (lower === '') type = 'none';
    else if (lower === 'syscalls' || lower === 'generated_syscalls') type = lower;
    else if (lower === 'generated_ftrace') {
      ctx.error(
        typeF,
        ctx.kernel.kprobes
          ? `${ctx.policyPrefix}list "${name}": generated_ftrace lists are not supported by Osprey`
          : `${ctx.policyPrefix}list "${name}": generated_ftrace lists name kernel functions, which need ${FEATURE_NAMES.kprobes}, which this kernel lacks`,
        'list the syscalls instead (type: syscalls)',
      );
      continue;
    } else {
      ctx.error(typeF, `unknown list type "${rawType}"`, `list types: ${LIST_TYPES.join(', ')}, or none`);
      continue;
    }
    if (o.has('pattern')) {
      ctx.error(o.get('pattern'), 'pattern applies to generated_ftrace lists only');
    }
    r.bool(o.get('validated'), 'validated');

    const valuesF = o.get('values');
    const items = r.list(valuesF, 'list values');
    let ok = true;
    const values: string[] = [];
    const syscalls: SyscallTarget[] = [];
    if (type === 'generated_syscalls') {
      if (items.length > 0) {
        ctx.error(
          valuesF,
          `list "${name}" is generated_syscalls: it must not have values`,
          'remove values, or use type: syscalls',
        );
        continue;
      }
      if (!ctx.tracefs.mounted()) {
        ctx.tracepointError(typeF, SYSCALL_SUBSYSTEM, 'sys_enter_*', 'no-tracefs', '');
        continue;
      }
      for (const ev of ctx.tracefs.events(SYSCALL_SUBSYSTEM)) {
        if (!ev.startsWith('sys_enter_')) continue;
        const target = ctx.syscallTarget(typeF, ev.slice('sys_enter_'.length), false);
        if (target) {
          values.push(target.name);
          syscalls.push(target);
        }
      }
    } else {
      if (items.length === 0) {
        ctx.error(valuesF.node ? valuesF : nameF, `list "${name}" has no values`);
        continue;
      }
      const seen = new Set<string>();
      for (const v of items) {
        const text = r.string(v, 'list value', true);
        if (text === undefined) {
          ok = false;
          continue;
        }
        if (type === 'syscalls') {
          const n = syscallName(text, ctx.arch);
          if (!n.ok) {
            ctx.error(v, n.message, n.hint);
            ok = false;
            continue;
          }
          if (seen.has(n.name)) continue;
          seen.add(n.name);
          const target = ctx.syscallTarget(v, n.name, false);
          if (!target) {
            ok = false;
            continue;
          }
          syscalls.push(target);
        }
        values.push(text);
      }
    }
    if (ok) ctx.lists.set(name, { name, type, values, syscalls, source: ctx.ref(item) });
  }
}

/**
 * The list a `list:NAME` value names. Undefined (after reporting) when it
 * does not exist; also undefined, without a second report, when it exists
 * but did not validate.
 */
export function listRef(ctx: PolicyContext, f: Field, text: string): PolicyList | undefined {
  const name = text.slice(LIST_PREFIX.length);
  const list = ctx.lists.get(name);
  if (list) return list;
  if (!ctx.declaredLists.has(name)) {
    const names = [...ctx.declaredLists];
    ctx.error(
      f,
      `list "${name}" not found`,
      names.length ? `lists in this policy: ${names.join(', ')}` : 'define it under spec.lists',
    );
  }
  return undefined;
}
