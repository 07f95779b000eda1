/**
 * The process sensor's events, process_exec and process_exit, made with
 * their lines' pieces (PiecedEvent): the same objects and the same bytes as
 * a walk of their fields would give, without the walk. An exec storm makes
 * two of them per program run, and the walk (every key quoted and looked
 * up, every value's type asked) was a tenth of encoding them.
 */

import { type Piece, PiecedEvent } from './encode.js';
import { jsonString } from './json.js';
import type { ExportEvent, Process, ProcessExec, ProcessExit } from './types.js';

/** A process_exec as the process pipeline makes it. */
class BuiltExecEvent extends PiecedEvent {
  readonly process_exec: ProcessExec;
  readonly node_name: string;
  readonly time: string;

  constructor(ev: ProcessExec, nodeName: string, time: string, pieces: Piece[]) {
    super(pieces, false);
    this.process_exec = ev;
    this.node_name = nodeName;
    this.time = time;
  }
}

/** A process_exit as the process pipeline makes it. */
class BuiltExitEvent extends PiecedEvent {
  readonly process_exit: ProcessExit;
  readonly node_name: string;
  readonly time: string;

  constructor(ev: ProcessExit, nodeName: string, time: string, pieces: Piece[]) {
    super(pieces, false);
    this.process_exit = ev;
    this.node_name = nodeName;
    this.time = time;
  }
}

const EXEC_OPEN = '{"process_exec":{"process":';
const EXIT_OPEN = '{"process_exit":{"process":';
const PARENT = ',"parent":';

/** Makes a node's process_exec and process_exit events. */
export class LifecycleEvents {
  /** `,"node_name":"…","time":"` */
  private readonly tail: string;

  constructor(readonly nodeName: string) {
    this.tail = `,"node_name":${jsonString(nodeName)},"time":`;
  }

  exec(process: Process, parent: Process | undefined, time: string): ExportEvent {
    const end = `}${this.tail}${jsonString(time)}}`;
    const pieces: Piece[] =
      parent === undefined ? [EXEC_OPEN, process, end] : [EXEC_OPEN, process, PARENT, parent, end];
    return new BuiltExecEvent({ process, parent }, this.nodeName, time, pieces);
  }

  exit(
    process: Process,
    parent: Process | undefined,
    wait: { signal?: string; status?: number },
    time: string,
  ): ExportEvent {
    const { signal, status } = wait;
    const t = jsonString(time);
    let end = '';
    if (signal !== undefined) end += `,"signal":${jsonString(signal)}`;
    if (status !== undefined) end += `,"status":${status}`;
    end += `,"time":${t}}${this.tail}${t}}`;
    const pieces: Piece[] =
      parent === undefined ? [EXIT_OPEN, process, end] : [EXIT_OPEN, process, PARENT, parent, end];
    return new BuiltExitEvent({ process, parent, signal, status, time }, this.nodeName, time, pieces);
  }
}
