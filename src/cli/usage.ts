/** Usage texts of `osprey` and its commands. */
import { DEFAULT_SOCKET, SYSTEM_CONFIG, settingsHelp } from '../agent/config.js';

export const COMMANDS = ['agent', 'events', 'status', 'policy', 'version', 'help'] as const;
export type Command = (typeof COMMANDS)[number];

export function mainUsage(): string {
  return `Usage: osprey <command> [flags]

Commands:
  agent     run the agent in the foreground (needs root)
  events    stream events from the agent, or render JSON lines from stdin
  status    show the agent's status
  policy    add, list, delete, enable, disable TracingPolicies in the running agent
  version   print the version
  help      show help for a command: osprey help <command>

Run 'osprey <command> --help' for the flags of a command.`;
}

export function commandUsage(cmd: Command): string {
  switch (cmd) {
    case 'agent':
      return `Usage: osprey agent [flags]

Runs the agent in the foreground until SIGINT or SIGTERM.
Settings come from the config file, then flags; config keys are the flag
names without the dashes, e.g. "args-max: 1024". A setting that can be
empty also has --no-X to empty it (--no-export-file, --no-cgroup).

Flags:
  -c, --config PATH                    config file (default ${SYSTEM_CONFIG} if it
                                       exists, else the bundled config/osprey.yaml)
${settingsHelp()}
  -h, --help                           show this help`;
    case 'events':
      return `Usage: osprey events [flags]

Streams events from the running agent, from now on. When stdin is a pipe,
a socket or a file and --socket is not given, renders the JSON lines read
from stdin instead; a line that is not JSON is reported with its number and
skipped (exit code 1):
  osprey events -o compact < /var/log/osprey/events.log

Flags:
  -o, --output json|compact   output format (default compact on a terminal, else json)
      --event-types a,b       only these event types (e.g. process_exec,process_kprobe)
      --process REGEX         only events whose process binary or arguments match
      --policy NAME           only events of this TracingPolicy (policy_name)
      --socket PATH           the agent's API socket (default ${DEFAULT_SOCKET})
  -h, --help                  show this help`;
    case 'status':
      return `Usage: osprey status [flags]

Shows what the running agent is doing: programs, event counts, drops,
latency, process cache, exporters, memory.

Flags:
  -o, --output text|json      output format (default text)
      --socket PATH           the agent's API socket (default ${DEFAULT_SOCKET})
  -h, --help                  show this help`;
    case 'policy':
      return `Usage: osprey policy <subcommand> [flags]

Manages the TracingPolicies of the running agent, with no restart. A policy
loads whole or not at all, and the command returns once its programs are
attached. Policies added here are stored under the agent's --state-dir and
loaded again when the agent restarts; those from --policy are not stored.

Subcommands:
  add FILE [--mode monitor|enforce]   load the policy in FILE (one policy per file);
                                      --mode overrides its policy-mode option
  list [-o text|json]                 every policy: state, mode, counters, kernel memory
  delete NAME                         unload it and forget it
  disable NAME                        unload it, keep it (state disabled)
  enable NAME                         load a disabled policy again
  set-mode NAME monitor|enforce       monitor: actions are counted, not taken

An invalid policy prints every problem as FILE:LINE:COL: field: message and
exits 1, with nothing loaded.

Flags:
      --socket PATH           the agent's API socket (default ${DEFAULT_SOCKET})
  -h, --help                  show this help`;
    case 'version':
      return `Usage: osprey version

Prints the version of osprey.`;
    case 'help':
      return `Usage: osprey help [command]

Shows the usage of osprey or of one of its commands.`;
  }
}
