/**
 * The validated, normalized form of a TracingPolicy: what the compiler turns
 * into selector tables. Everything here has been checked against the kernel
 * (tracepoints exist, fields are in range) and the engine's limits; defaults
 * are filled in; numbers are parsed (bigint where they may need 64 bits);
 * `list:` references are expanded. Every element keeps its SourceRef so a
 * later stage can report against the policy's line and field.
 */
import type { ArgOperator, ArgType } from './arg-types.js';
import type { SourceRef } from './errors.js';
import type { Cidr, IntRange } from './values.js';

export type { ArgOperator, ArgType } from './arg-types.js';
export type { Cidr, IntRange } from './values.js';

export type PolicyKind = 'TracingPolicy' | 'TracingPolicyNamespaced';

/** monitor: enforcement actions are counted, not taken. */
export type PolicyMode = 'enforce' | 'monitor';

export interface TracingPolicy {
  name: string;
  kind: PolicyKind;
  /** TracingPolicyNamespaced only ("default" when not given) */
  namespace: string | undefined;
  labels: Record<string, string>;
  /** the file it was read from */
  file: string;
  source: SourceRef;
  /** from the `policy-mode` option; 'enforce' when not given */
  mode: PolicyMode;
  /** tracepoints first, then kprobes (then lsm hooks and fentries where the kernel has them), in file order */
  hooks: Hook[];
  lists: PolicyList[];
  enforcers: Enforcer[];
  options: PolicyOption[];
}

export interface PolicyOption {
  name: string;
  value: string;
  source: SourceRef;
}

export type ListType = 'syscalls' | 'generated_syscalls' | 'none';

export interface PolicyList {
  name: string;
  type: ListType;
  /** as written, or generated (every syscall with a tracepoint) */
  values: string[];
  /** syscall lists: the syscalls, resolved */
  syscalls: SyscallTarget[];
  source: SourceRef;
}

/** A tracepoint to attach to: `<tracefs>/events/<subsystem>/<event>`. */
export interface TracepointRef {
  subsystem: string;
  event: string;
  /** perf event id from the format file */
  id: number;
}

/** Where an arg sits in the tracepoint record the BPF program receives. */
export interface ArgField {
  /** field name in the format file ("filename", "whence", "ret") */
  name: string;
  /** its C type as tracefs prints it */
  ctype: string;
  /** index in the format file, common fields included */
  formatIndex: number;
  offset: number;
  size: number;
  signed: boolean;
  /**
   * a string held in the record itself, not behind a pointer: a
   * `__data_loc char[]` field or a `char name[N]` array
   */
  inRecord?: 'data_loc' | 'array';
}

export interface HookArg {
  /** position in the hook's args list: what matchArgs `args: [n]` and events' args[n] refer to */
  position: number;
  /** `index` as written: the syscall argument (kprobes) or the format field (tracepoints) */
  index: number;
  /** resolved; `auto` is inferred from the tracepoint field */
  type: ArgType;
  label: string | undefined;
  /** char_buf: read up to the large limit instead of the default */
  maxData: boolean;
  /** char_buf: read at syscall exit, sized by the return value unless sizeArgIndex is given */
  returnCopy: boolean;
  /** char_buf: 1-based index of the arg holding the size; undefined when not given */
  sizeArgIndex: number | undefined;
  /**
   * Where to read it. Syscall hooks: the same slot in every target's
   * sys_enter record (syscall args are all 8-byte slots at the same offsets).
   * Undefined for kernel-function hooks (kprobe, lsm, fentry), which read
   * registers/BTF.
   */
  field: ArgField | undefined;
  /** where the size is, when sizeArgIndex is given */
  sizeField: ArgField | undefined;
  source: SourceRef;
}

export interface ReturnArg {
  index: number;
  type: ArgType;
  /** the `ret` field of sys_exit_*; undefined for kernel-function hooks */
  field: ArgField | undefined;
  source: SourceRef;
}

/** One syscall a syscall kprobe stands for, and the tracepoints that carry it. */
export interface SyscallTarget {
  /** tracepoint spelling: "openat", "newstat" */
  name: string;
  /** the kprobe symbol events report: "__x64_sys_openat" */
  functionName: string;
  /** number on this architecture; undefined where no table exists */
  nr: number | undefined;
  enter: TracepointRef;
  /** attached when the hook needs the return value or copies at return */
  exit: TracepointRef | undefined;
}

interface HookBase {
  /** `tracepoints[0]`, `kprobes[2]`: unique within the policy */
  id: string;
  /** for messages: `kprobe "sys_openat"`, `tracepoint "syscalls/sys_enter_lseek"` */
  label: string;
  args: HookArg[];
  selectors: Selector[];
  message: string | undefined;
  tags: string[];
  /** every tracepoint this hook attaches to */
  tracepoints: TracepointRef[];
  source: SourceRef;
}

export interface TracepointHook extends HookBase {
  kind: 'tracepoint';
  subsystem: string;
  event: string;
  tracepoint: TracepointRef;
}

/** A `syscall: true` kprobe, run on the syscall tracepoints. */
export interface SyscallHook extends HookBase {
  kind: 'syscall';
  /** as written: "sys_openat", "list:dups" */
  call: string;
  syscalls: SyscallTarget[];
  /** attach sys_exit_* too (return, returnCopy, matchReturnArgs, matchReturnActions) */
  needsExit: boolean;
  returnArg: ReturnArg | undefined;
  /** what to do with the return arg: only Post is supported */
  returnArgAction: 'Post' | undefined;
}

/** A kprobe on a kernel function; only where the kernel has kprobes. */
export interface KprobeHook extends HookBase {
  kind: 'kprobe';
  call: string;
  functions: string[];
  return: boolean;
  returnArg: ReturnArg | undefined;
}

/** A BPF-LSM hook; only where the kernel has BPF-LSM. */
export interface LsmHook extends HookBase {
  kind: 'lsm';
  hook: string;
}

/** An fentry/fexit hook; only where the kernel has BPF trampolines. */
export interface FentryHook extends HookBase {
  kind: 'fentry';
  call: string;
  return: boolean;
  returnArg: ReturnArg | undefined;
}

export type Hook = TracepointHook | SyscallHook | KprobeHook | LsmHook | FentryHook;

/**
 * A selector: its filters are ANDed; a hook's selectors are ORed; a hook
 * without selectors matches every call.
 */
export interface Selector {
  matchArgs: ArgFilter[];
  /** compared at syscall exit against the returnArg */
  matchReturnArgs: ArgFilter[];
  matchPIDs: PidFilter[];
  matchBinaries: BinaryFilter[];
  matchParentBinaries: BinaryFilter[];
  matchNamespaces: NamespaceFilter[];
  matchCapabilities: CapabilityFilter[];
  /** matchActions, normalized: Post is implied unless NoPost is given */
  onMatch: ActionSet;
  /** matchReturnActions; undefined when none are given */
  onReturn: ActionSet | undefined;
  source: SourceRef;
}

export type FilterValue =
  /** Equal NotEqual GT LT Mask: normalized to the arg's width and signedness */
  | { kind: 'ints'; values: bigint[] }
  /** InRange NotInRange */
  | { kind: 'ranges'; ranges: IntRange[] }
  /** InMap NotInMap: single values, ranges, and syscall lists expanded to numbers */
  | { kind: 'set'; values: bigint[]; ranges: IntRange[] }
  /** Equal NotEqual Prefix NotPrefix Postfix NotPostfix SubString on strings and buffers */
  | { kind: 'strings'; values: string[] }
  /** SAddr NotSAddr DAddr NotDAddr */
  | { kind: 'cidrs'; cidrs: Cidr[] }
  /** SPort NotSPort DPort NotDPort */
  | { kind: 'ports'; ranges: IntRange[] }
  /** SPortPriv NotSPortPriv DPortPriv NotDPortPriv */
  | { kind: 'none' }
  /** Family */
  | { kind: 'families'; values: number[] };

export interface ArgFilter {
  /** matchArgs: position in the hook's args; matchReturnArgs: -1 (the returnArg) */
  argPosition: number;
  argType: ArgType;
  operator: ArgOperator;
  value: FilterValue;
  source: SourceRef;
}

export interface PidFilter {
  operator: 'In' | 'NotIn';
  values: number[];
  followForks: boolean;
  isNamespacePID: boolean;
  source: SourceRef;
}

export type BinaryOperator = 'In' | 'NotIn' | 'Prefix' | 'NotPrefix' | 'Postfix' | 'NotPostfix';

export interface BinaryFilter {
  operator: BinaryOperator;
  values: string[];
  followChildren: boolean;
  source: SourceRef;
}

export type NamespaceType =
  | 'Uts'
  | 'Ipc'
  | 'Mnt'
  | 'Pid'
  | 'PidForChildren'
  | 'Net'
  | 'Time'
  | 'TimeForChildren'
  | 'Cgroup'
  | 'User';

export interface NamespaceFilter {
  namespace: NamespaceType;
  operator: 'In' | 'NotIn';
  /** inode numbers; 'host_ns' is resolved at install time (the namespace of PID 1) */
  values: (number | 'host_ns')[];
  source: SourceRef;
}

export type CapabilitySet = 'Effective' | 'Permitted' | 'Inheritable';

export interface CapabilityFilter {
  type: CapabilitySet;
  operator: 'In' | 'NotIn';
  isNamespaceCapability: boolean;
  /** canonical names, "CAP_SYS_ADMIN" */
  values: string[];
  /** bit (1 << capability number) for each value */
  mask: bigint;
  source: SourceRef;
}

export type RateLimitScope = 'thread' | 'process' | 'global';

export interface PostAction {
  /** drop repeats of the same event within this window */
  rateLimitMs: number | undefined;
  rateLimitScope: RateLimitScope;
}

export type EnforceAction =
  | { action: 'Sigkill'; source: SourceRef }
  | { action: 'Signal'; signal: number; source: SourceRef }
  /** only where the kernel has bpf_override_return */
  | { action: 'Override'; error: number; source: SourceRef }
  | { action: 'NotifyEnforcer'; signal: number | undefined; error: number | undefined; source: SourceRef };

export interface ActionSet {
  /** undefined: NoPost */
  post: PostAction | undefined;
  enforce: EnforceAction[];
}

/** Syscalls the enforcer program is attached to (Tetragon's spec.enforcers). */
export interface Enforcer {
  syscalls: SyscallTarget[];
  source: SourceRef;
}
