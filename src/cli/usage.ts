/** Usage texts of `osprey` and its commands. */
import { DEFAULT_SOCKET, SYSTEM_CONFIG, settingsHelp } from '../agent/config.js';

export const COMMANDS = [
  'agent',
  'events',
  'status',
  'policy',
  'run',
  'flows',
  'workload',
  'process',
  'version',
  'help',
] as const;
export type Command = (typeof COMMANDS)[number];

export function mainUsage(): string {
  return `Usage: osprey <command> [flags]

Commands:
  agent     run the agent in the foreground (needs root)
  events    stream events from the agent, or render JSON lines from stdin
  status    show the agent's status
  policy    add, list, delete, enable, disable TracingPolicies in the running agent
  run       run a command as a labelled workload: osprey run --label app=web -- CMD
  flows     stream network flows with their verdicts, like hubble observe
  workload  list or delete the agent's workloads
  process   show a process from the event store: ancestors, descendants, events
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

Streams events from the running agent, from now on. With --since (or
--until) it prints events from the agent's event store instead, oldest
first. When stdin is a pipe, a socket or a file and --socket is not given,
renders the JSON lines read from stdin instead; a line that is not JSON is
reported with its number and skipped (exit code 1):
  osprey events -o compact < /var/log/osprey/events.log
  osprey events --since 1h --binary '^/usr/bin/curl$'
  osprey events --allow '{"binary_regex":["curl"]}' --deny '{"event_set":["PROCESS_EXIT"]}'

Flags:
  -o, --output json|compact   output format (default compact on a terminal, else json)
      --event-types a,b       only these event types (e.g. process_exec,process_kprobe)
      --type a,b              the same as --event-types
      --process REGEX         only events whose process binary or arguments match
      --binary REGEX          only events whose process binary matches
      --policy NAME           only events of this TracingPolicy (policy_name)
      --allow JSON            Tetragon allow filters (JSON lines or a JSON array): any may match
      --deny JSON             Tetragon deny filters: an event matching any is left out
      --since WHEN            history from WHEN: a duration back (30m, 1h, 7d) or an RFC 3339 time
      --until WHEN            history before WHEN (same forms)
      --limit N               history: at most N events, the newest (default 1000)
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

Manages the policies of the running agent, with no restart: TracingPolicies
and network policies (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy),
told apart by their kind. A policy loads whole or not at all, and the
command returns once it is in force (a network policy that is refused
leaves the tables in force as they were). Policies added here are stored under the agent's --state-dir and
loaded again when the agent restarts; those from --policy are not stored.

Subcommands:
  add FILE [--mode monitor|enforce]   load the policy in FILE (one policy per file);
                                      --mode overrides its policy-mode option;
                                      a directory: each *.yaml and *.yml in it, in turn
  list [-o text|json]                 every policy: state, mode, counters, kernel memory
  delete NAME                         unload it and forget it
  disable NAME                        unload it, keep it (state disabled)
  enable NAME                         load a disabled policy again
  set-mode NAME monitor|enforce       monitor: actions are counted, not taken
                                      (network policies: audit mode, verdicts
                                      reported as AUDIT, nothing dropped)
  validate PATH...                    check files (or directories of them) as the agent would
                                      before loading them; needs no agent

An invalid policy prints every problem as FILE:LINE:COL: field: message and
exits 1, with nothing loaded.

Flags:
      --socket PATH           the agent's API socket (default ${DEFAULT_SOCKET})
  -h, --help                  show this help`;
    case 'run':
      return `Usage: osprey run --label KEY=VALUE [--label ...] [--name NAME] [--socket PATH] -- CMD [ARGS...]

Runs CMD as a workload: the agent creates a cgroup with these labels
(under its workload-cgroup), this command joins it and runs CMD in it, and
exits as CMD does. Network policies select the workload by its labels, and
its process events carry them (process.workload.labels). The agent removes
the cgroup when the last process in it has exited.

Flags:
  -l, --label KEY=VALUE       a label of the workload (repeatable, at least one)
      --name NAME             the workload's name (default CMD-PID)
      --socket PATH           the agent's API socket (default ${DEFAULT_SOCKET})
  -h, --help                  show this help`;
    case 'flows':
      return `Usage: osprey flows [flags]

Streams the network flows of workloads from the running agent, from now on:
connections and datagrams with their verdict (FORWARDED, DROPPED, AUDIT) and
the policy and rule that decided it. When stdin is a pipe or a file and
--socket is not given, picks the flows out of the JSON lines on stdin:
  osprey flows -o compact --verdict DROPPED < /var/log/osprey/events.log

Compact lines:
  TIME SRC:PORT (labels) -> DST:PORT (labels) PROTO VERDICT POLICY/RULE

Flags:
  -o, --output json|compact   json: the Hubble-shaped {flow, node_name, time} lines
                              (default compact on a terminal, else json)
      --verdict V             FORWARDED, DROPPED or AUDIT (repeatable)
  -l, --label KEY=VALUE       flows whose source or destination has this label
                              (repeatable: all of them)
      --port N                source or destination port (repeatable)
      --policy NAME           flows decided by this network policy
      --socket PATH           the agent's API socket (default ${DEFAULT_SOCKET})
  -h, --help                  show this help`;
    case 'workload':
      return `Usage: osprey workload list [-o text|json] | delete NAME [--socket PATH]

Workloads are labelled cgroups: started with osprey run, or existing cgroups
labelled in the agent's config (workloads:). delete kills what runs in a
workload started with osprey run and removes its cgroup; configured ones are
changed in the config file.

Flags:
      --socket PATH           the agent's API socket (default ${DEFAULT_SOCKET})
  -h, --help                  show this help`;
    case 'process':
      return `Usage: osprey process EXEC_ID [flags]

Shows a process from the agent's event store: its ancestors, the process
(marked *), its descendants as an indented tree, and its events. Take the
exec_id from an event (process.exec_id), e.g. from osprey events --since 1h -o json.

Flags:
  -o, --output text|json      output format (default text)
      --events N              at most N of its events, the newest (default 1000)
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
