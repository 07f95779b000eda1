/** What the validators of one policy document share. */
import type { ErrorSink, SourceRef } from './errors.js';
import type { KernelCapabilities } from './kernel-caps.js';
import type { PolicyList, SyscallTarget } from './model.js';
import { enterEvent, exitEvent, SYSCALL_SUBSYSTEM, syscallFunctionName, syscallNumber } from './syscalls.js';
import type { Tracefs } from './tracepoints.js';
import type { Field, YamlReader } from './yaml-view.js';

export class PolicyContext {
  /** lists that validated, by name */
  readonly lists = new Map<string, PolicyList>();
  /** every list name declared, valid or not: a reference to a broken list is not also "not found" */
  readonly declaredLists = new Set<string>();
  hasEnforcers = false;

  constructor(
    readonly r: YamlReader,
    readonly sink: ErrorSink,
    readonly kernel: KernelCapabilities,
    readonly tracefs: Tracefs,
    readonly arch: string,
  ) {}

  ref(f: Field): SourceRef {
    return { line: f.at.line, column: f.at.column, fieldPath: f.path };
  }

  error(f: Field, message: string, hint?: string): void {
    this.r.error(f, message, hint);
  }

  errorAtKey(f: Field, message: string, hint?: string): void {
    this.r.errorAtKey(f, message, hint);
  }

  /** `policy "x": ` */
  get policyPrefix(): string {
    return this.sink.policyPrefix;
  }

  /**
   * The syscall's tracepoints, or an error at `f` when tracefs has no
   * sys_enter event for it. `withExit` also requires sys_exit.
   */
  syscallTarget(f: Field, name: string, withExit: boolean): SyscallTarget | undefined {
    const enter = this.tracepoint(f, SYSCALL_SUBSYSTEM, enterEvent(name));
    if (!enter) return undefined;
    let exit: SyscallTarget['exit'];
    if (withExit) {
      exit = this.tracepoint(f, SYSCALL_SUBSYSTEM, exitEvent(name));
      if (!exit) return undefined;
    }
    return {
      name,
      functionName: syscallFunctionName(name, this.arch),
      nr: syscallNumber(name, this.arch),
      enter,
      exit,
    };
  }

  /** A tracepoint reference, or an error at `f` saying why it cannot be had. */
  tracepoint(
    f: Field,
    subsystem: string,
    event: string,
  ): { subsystem: string; event: string; id: number } | undefined {
    const got = this.tracefs.format(subsystem, event);
    if (got.ok) return { subsystem, event, id: got.format.id };
    this.tracepointError(f, subsystem, event, got.reason, got.detail);
    return undefined;
  }

  tracepointError(f: Field, subsystem: string, event: string, reason: string, detail: string): void {
    const root = this.tracefs.root;
    if (reason === 'no-tracefs') {
      this.error(
        f,
        `cannot check tracepoint ${subsystem}/${event}: tracefs is not mounted at ${root}`,
        `mount it: mount -t tracefs tracefs ${root}`,
      );
    } else if (reason === 'no-such-event') {
      const known = this.tracefs.events(subsystem);
      const hint =
        known.length === 0
          ? `there is no subsystem "${subsystem}" in ${root}/events`
          : `see ${root}/events/${subsystem}/ for its events`;
      this.error(f, `tracepoint ${subsystem}/${event} does not exist`, hint);
    } else {
      this.error(
        f,
        `cannot read tracepoint ${subsystem}/${event}: ${detail}`,
        'run as root, with tracefs mounted',
      );
    }
  }
}
