/**
 * Bounds a policy must stay within. The BPF programs that interpret the
 * compiled selector tables have fixed-size loops and map values, so these
 * are checked when the policy is read, where the error can name the line.
 * They mirror the tracing engine's OSP_LIMITS (src/sensors/tracing/layout.ts):
 * the compiler should assert that both agree.
 */
export const LIMITS = {
  /** tracepoints one policy attaches (a syscall kprobe with a return needs two per syscall) */
  tracepointsPerPolicy: 64,
  /** args read per hook */
  argsPerHook: 5,
  /** selectors per hook (they are ORed) */
  selectorsPerHook: 5,
  /** matchArgs filters per selector (they are ANDed) */
  matchArgsPerSelector: 5,
  /** matchReturnArgs filters per selector */
  matchReturnArgsPerSelector: 2,
  /** matchPIDs filters per selector, and PIDs per filter */
  matchPIDsPerSelector: 2,
  pidsPerFilter: 8,
  /** matchBinaries (and matchParentBinaries) filters per selector */
  matchBinariesPerSelector: 1,
  /** bytes of a binary path the kernel compares */
  binaryPathBytes: 255,
  /** matchNamespaces filters per selector, and values per filter */
  matchNamespacesPerSelector: 4,
  namespaceValues: 4,
  /** matchCapabilities filters per selector */
  matchCapabilitiesPerSelector: 3,
  /** enforcement actions (Sigkill, Signal, NotifyEnforcer) per action list */
  enforceActions: 1,
  /** ranges of an InRange/NotInRange/InMap filter, port ranges of a port filter */
  rangesPerFilter: 8,
  /** families of a Family filter */
  familiesPerFilter: 16,
  /** tags per hook, as Tetragon */
  tagsPerHook: 16,
  /** characters of a hook's message, as Tetragon */
  messageLength: 256,
  /** bytes of an Equal/NotEqual string value */
  stringValueBytes: 4095,
  /** bytes of a Prefix value */
  prefixBytes: 252,
  /** bytes of a Postfix value */
  postfixBytes: 128,
  /** bytes of a SubString needle, and needles per filter */
  substringBytes: 32,
  substringValues: 4,
  /** the largest Linux signal number */
  maxSignal: 64,
  /** enforcer specs per policy, as Tetragon */
  enforcersPerPolicy: 1,
} as const;
