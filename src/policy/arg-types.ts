/**
 * The arg types Osprey's tracing sensor can read and the selector operators
 * that apply to each, in Tetragon's spelling.
 */

/**
 * How an arg is read and compared. An fd is both a number and, resolved in
 * the kernel to the open file, a path: it takes the operators of both.
 */
export type ArgClass = 'int' | 'fd' | 'string' | 'buffer' | 'sockaddr';

export type IntArgType =
  | 'int'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'size_t'
  | 'long'
  | 'ulong'
  | 'fd'
  | 'syscall64';

export type ArgType = IntArgType | 'string' | 'filename' | 'char_buf' | 'sockaddr';

export interface ArgTypeInfo {
  class: ArgClass;
  /** int class: the width the value is compared at */
  bits: 8 | 16 | 32 | 64;
  signed: boolean;
}

const int = (bits: 8 | 16 | 32 | 64, signed: boolean): ArgTypeInfo => ({ class: 'int', bits, signed });
const ptr = (cls: ArgClass): ArgTypeInfo => ({ class: cls, bits: 64, signed: false });

export const ARG_TYPES: Readonly<Record<ArgType, ArgTypeInfo>> = {
  int: int(32, true),
  int8: int(8, true),
  int16: int(16, true),
  int32: int(32, true),
  int64: int(64, true),
  uint8: int(8, false),
  uint16: int(16, false),
  uint32: int(32, false),
  uint64: int(64, false),
  size_t: int(64, false),
  long: int(64, true),
  ulong: int(64, false),
  // the descriptor number, or the path of the file it is open on
  fd: { class: 'fd', bits: 32, signed: true },
  // a syscall number, as raw_syscalls/sys_enter's id
  syscall64: int(64, false),
  // NUL-terminated string at a user pointer
  string: ptr('string'),
  filename: ptr('string'),
  // bytes at a user pointer, sized by another arg (sizeArgIndex) or the return value (returnCopy)
  char_buf: ptr('buffer'),
  // struct sockaddr at a user pointer (connect, bind, sendto...)
  sockaddr: ptr('sockaddr'),
};

export const SUPPORTED_ARG_TYPES = Object.keys(ARG_TYPES) as ArgType[];

export function isArgType(t: string): t is ArgType {
  return Object.hasOwn(ARG_TYPES, t);
}

/** Types Tetragon knows that Osprey cannot read (kernel objects, iovecs, BTF-resolved args). */
export const TETRAGON_ONLY_ARG_TYPES: readonly string[] = [
  'char_iovec',
  'skb',
  'sock',
  'socket',
  'file',
  'path',
  'dentry',
  'nop',
  'bpf_attr',
  'perf_event',
  'bpf_map',
  'user_namespace',
  'capability',
  'kiocb',
  'iov_iter',
  'cred',
  'load_info',
  'module',
  'kernel_cap_t',
  'cap_inheritable',
  'cap_permitted',
  'cap_effective',
  'linux_binprm',
  'data_loc',
  'net_device',
  'const_buf',
];

/** Canonical operator names. */
export type ArgOperator =
  | 'Equal'
  | 'NotEqual'
  | 'Prefix'
  | 'NotPrefix'
  | 'Postfix'
  | 'NotPostfix'
  | 'SubString'
  | 'Mask'
  | 'GT'
  | 'LT'
  | 'InRange'
  | 'NotInRange'
  | 'InMap'
  | 'NotInMap'
  | 'SAddr'
  | 'NotSAddr'
  | 'DAddr'
  | 'NotDAddr'
  | 'SPort'
  | 'NotSPort'
  | 'DPort'
  | 'NotDPort'
  | 'SPortPriv'
  | 'NotSPortPriv'
  | 'DPortPriv'
  | 'NotDPortPriv'
  | 'Family';

/** Every spelling Tetragon accepts, to the canonical name. */
const OPERATOR_SPELLINGS: Readonly<Record<string, ArgOperator>> = {
  Equal: 'Equal',
  eq: 'Equal',
  NotEqual: 'NotEqual',
  neq: 'NotEqual',
  Prefix: 'Prefix',
  prefix: 'Prefix',
  NotPrefix: 'NotPrefix',
  notprefix: 'NotPrefix',
  Postfix: 'Postfix',
  postfix: 'Postfix',
  NotPostfix: 'NotPostfix',
  notpostfix: 'NotPostfix',
  SubString: 'SubString',
  Mask: 'Mask',
  mask: 'Mask',
  GT: 'GT',
  gt: 'GT',
  GreaterThan: 'GT',
  LT: 'LT',
  lt: 'LT',
  LessThan: 'LT',
  InRange: 'InRange',
  NotInRange: 'NotInRange',
  InMap: 'InMap',
  NotInMap: 'NotInMap',
  SAddr: 'SAddr',
  Saddr: 'SAddr',
  saddr: 'SAddr',
  NotSAddr: 'NotSAddr',
  NotSaddr: 'NotSAddr',
  notsaddr: 'NotSAddr',
  DAddr: 'DAddr',
  Daddr: 'DAddr',
  daddr: 'DAddr',
  NotDAddr: 'NotDAddr',
  NotDaddr: 'NotDAddr',
  notdaddr: 'NotDAddr',
  SPort: 'SPort',
  Sport: 'SPort',
  sport: 'SPort',
  NotSPort: 'NotSPort',
  NotSport: 'NotSPort',
  notsport: 'NotSPort',
  DPort: 'DPort',
  Dport: 'DPort',
  dport: 'DPort',
  NotDPort: 'NotDPort',
  NotDport: 'NotDPort',
  notdport: 'NotDPort',
  SPortPriv: 'SPortPriv',
  SportPriv: 'SPortPriv',
  sportpriv: 'SPortPriv',
  NotSPortPriv: 'NotSPortPriv',
  NotSportPriv: 'NotSPortPriv',
  notsportpriv: 'NotSPortPriv',
  DPortPriv: 'DPortPriv',
  DportPriv: 'DPortPriv',
  dportpriv: 'DPortPriv',
  NotDPortPriv: 'NotDPortPriv',
  NotDportPriv: 'NotDPortPriv',
  notdportpriv: 'NotDPortPriv',
  Family: 'Family',
  family: 'Family',
};

/** Operators Tetragon has for arg kinds Osprey does not read (sock, skb, capabilities). */
const TETRAGON_ONLY_OPERATORS: Readonly<Record<string, string>> = {
  Protocol: 'sock and skb args',
  protocol: 'sock and skb args',
  State: 'sock and skb args',
  state: 'sock and skb args',
  CapabilitiesGained: 'kernel_cap_t args',
};

export type OperatorLookup =
  | { ok: true; operator: ArgOperator }
  | { ok: false; tetragonOnly: string | undefined };

export function lookupOperator(spelling: string): OperatorLookup {
  const op = OPERATOR_SPELLINGS[spelling];
  if (op) return { ok: true, operator: op };
  return { ok: false, tetragonOnly: TETRAGON_ONLY_OPERATORS[spelling] };
}

export const ALL_OPERATORS: readonly ArgOperator[] = [...new Set(Object.values(OPERATOR_SPELLINGS))];

/** Operators by the class of arg they compare. */
export const OPERATORS_FOR: Readonly<Record<ArgClass, readonly ArgOperator[]>> = {
  int: ['Equal', 'NotEqual', 'GT', 'LT', 'Mask', 'InRange', 'NotInRange', 'InMap', 'NotInMap'],
  fd: [
    'Equal',
    'NotEqual',
    'GT',
    'LT',
    'Mask',
    'InRange',
    'NotInRange',
    'InMap',
    'NotInMap',
    'Prefix',
    'NotPrefix',
    'Postfix',
    'NotPostfix',
    'SubString',
  ],
  string: ['Equal', 'NotEqual', 'Prefix', 'NotPrefix', 'Postfix', 'NotPostfix', 'SubString'],
  buffer: ['Equal', 'NotEqual', 'Prefix', 'NotPrefix', 'Postfix', 'NotPostfix', 'SubString'],
  // A sockaddr holds one address: the peer's for connect/sendto, the local one
  // for bind. Tetragon matches it with SAddr/SPort; DAddr/DPort are accepted as
  // the same address, since at connect() it is the destination.
  sockaddr: [
    'SAddr',
    'NotSAddr',
    'DAddr',
    'NotDAddr',
    'SPort',
    'NotSPort',
    'DPort',
    'NotDPort',
    'SPortPriv',
    'NotSPortPriv',
    'DPortPriv',
    'NotDPortPriv',
    'Family',
  ],
};

/** What kind of values an operator takes. */
export type OperatorValues = 'ints' | 'ranges' | 'set' | 'strings' | 'cidrs' | 'ports' | 'none' | 'families';

export function operatorValues(op: ArgOperator, cls: ArgClass): OperatorValues {
  switch (op) {
    case 'InRange':
    case 'NotInRange':
      return 'ranges';
    case 'InMap':
    case 'NotInMap':
      return 'set';
    case 'SAddr':
    case 'NotSAddr':
    case 'DAddr':
    case 'NotDAddr':
      return 'cidrs';
    case 'SPort':
    case 'NotSPort':
    case 'DPort':
    case 'NotDPort':
      return 'ports';
    case 'SPortPriv':
    case 'NotSPortPriv':
    case 'DPortPriv':
    case 'NotDPortPriv':
      return 'none';
    case 'Family':
      return 'families';
    case 'Equal':
    case 'NotEqual':
      // fd: numbers unless the values are paths (decided from the values)
      return cls === 'int' || cls === 'fd' ? 'ints' : 'strings';
    case 'GT':
    case 'LT':
    case 'Mask':
      return 'ints';
    default:
      return 'strings';
  }
}

/**
 * The arg type a tracepoint field has when the policy says `type: auto` or
 * gives none; undefined when it cannot be inferred (pointers, arrays).
 */
export function inferIntType(field: {
  type: string;
  size: number;
  signed: boolean;
  pointer: boolean;
  array: boolean;
  dataLoc: boolean;
}): IntArgType | undefined {
  if (field.pointer || field.array || field.dataLoc) return undefined;
  const c = field.type
    .replace(/\b(const|volatile)\b/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  const named: Record<string, IntArgType> = {
    int: 'int',
    'signed int': 'int',
    'unsigned int': 'uint32',
    unsigned: 'uint32',
    long: 'long',
    'long int': 'long',
    'long long': 'int64',
    'unsigned long': 'ulong',
    'unsigned long long': 'uint64',
    short: 'int16',
    'unsigned short': 'uint16',
    char: 'int8',
    'signed char': 'int8',
    'unsigned char': 'uint8',
    bool: 'uint8',
    size_t: 'size_t',
    s8: 'int8',
    s16: 'int16',
    s32: 'int32',
    s64: 'int64',
    u8: 'uint8',
    u16: 'uint16',
    u32: 'uint32',
    u64: 'uint64',
    __s8: 'int8',
    __s16: 'int16',
    __s32: 'int32',
    __s64: 'int64',
    __u8: 'uint8',
    __u16: 'uint16',
    __u32: 'uint32',
    __u64: 'uint64',
    pid_t: 'int32',
    off_t: 'long',
    loff_t: 'int64',
  };
  const hit = named[c];
  if (hit) return hit;
  switch (field.size) {
    case 1:
      return field.signed ? 'int8' : 'uint8';
    case 2:
      return field.signed ? 'int16' : 'uint16';
    case 4:
      return field.signed ? 'int32' : 'uint32';
    case 8:
      return field.signed ? 'int64' : 'uint64';
    default:
      return undefined;
  }
}
