/** `osprey agent`: run the daemon in the foreground until SIGINT/SIGTERM. */
import { loadAgentConfig } from '../agent/config.js';
import { commandUsage } from './usage.js';

export async function agentCommand(argv: string[]): Promise<number> {
  const { help, config } = loadAgentConfig(argv);
  if (help) {
    process.stdout.write(`${commandUsage('agent')}\n`);
    return 0;
  }
  const log = (line: string) => process.stderr.write(`osprey agent: ${line}\n`);

  // Signals are taken over before anything is attached: a signal during
  // start-up lets the start finish and then stops cleanly.
  let signalled: NodeJS.Signals | undefined;
  let wake: (() => void) | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) {
      log(`${sig} again: exiting without a clean stop`);
      process.exit(130);
    }
    signalled = sig;
    wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    // loaded here so that the other commands do not pay for the kernel bridge and the server
    const { Agent } = await import('../agent/agent.js');
    const agent = await Agent.start(config, { log });
    // a bug must not leave programs attached and a stale socket behind
    const onCrash = (err: unknown) => {
      log(`internal error, stopping: ${(err as Error)?.stack ?? String(err)}`);
      const force = setTimeout(() => process.exit(1), 10_000);
      void agent.stop().finally(() => {
        clearTimeout(force);
        process.exit(1);
      });
    };
    process.once('uncaughtException', onCrash);
    process.once('unhandledRejection', onCrash);
    if (!signalled) log(agent.readyLine());
    await new Promise<void>((resolve) => {
      wake = resolve;
      if (signalled) resolve();
    });
    log(`${signalled}: stopping`);
    await agent.stop();
    const s = agent.status();
    log(`stopped after ${s.events.total} events`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
