/**
 * A problem in a TracingPolicy file, located to the line and column of the
 * YAML node it concerns, with the field path a user can search for and a hint
 * of what to do about it.
 */
export class PolicyError extends Error {
  readonly file: string;
  /** 1-based */
  readonly line: number;
  /** 1-based */
  readonly column: number;
  /** e.g. `spec.kprobes[0].selectors[1].matchArgs[0].operator`; '' for the document itself */
  readonly fieldPath: string;
  /** what to do next; '' when the message says it all */
  readonly hint: string;
  /** the policy's metadata.name when it was known at the time of the error */
  readonly policy: string | undefined;

  constructor(init: {
    file: string;
    line: number;
    column: number;
    fieldPath: string;
    message: string;
    hint?: string;
    policy?: string;
  }) {
    super(init.message);
    this.name = 'PolicyError';
    this.file = init.file;
    this.line = init.line;
    this.column = init.column;
    this.fieldPath = init.fieldPath;
    this.hint = init.hint ?? '';
    this.policy = init.policy;
  }

  /** `FILE:LINE:COL: FIELD: message (hint)`, the shape compilers use so editors can jump to it. */
  override toString(): string {
    const where = `${this.file}:${this.line}:${this.column}`;
    const field = this.fieldPath ? ` ${this.fieldPath}:` : '';
    const hint = this.hint ? ` (${this.hint})` : '';
    return `${where}:${field} ${this.message}${hint}`;
  }
}

/** A position in the source text, 1-based. */
export interface SourcePos {
  line: number;
  column: number;
}

/**
 * Where a model element came from, so that a later stage (the compiler, the
 * loader) can report its own errors against the same line and field.
 */
export interface SourceRef extends SourcePos {
  fieldPath: string;
}

/** Collects the errors of one document; knows the file and, once read, the policy name. */
export class ErrorSink {
  readonly errors: PolicyError[] = [];
  policy: string | undefined;

  constructor(readonly file: string) {}

  add(at: SourcePos, fieldPath: string, message: string, hint?: string): void {
    this.errors.push(
      new PolicyError({
        file: this.file,
        line: at.line,
        column: at.column,
        fieldPath,
        message,
        hint,
        policy: this.policy,
      }),
    );
  }

  /** `policy "x": ` — the prefix of refusals that name the policy, as the agent logs them. */
  get policyPrefix(): string {
    return this.policy ? `policy "${this.policy}": ` : '';
  }
}
