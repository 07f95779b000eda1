/** The agent daemon: configuration, event bus, exporters, local API, status. */
export { Agent, type AgentOptions, EXPORT_GROUP } from './agent.js';
export { API_GROUP, type ApiOptions, ApiServer, claimSocket } from './api.js';
export { EventBus, type Sink, type SubscribeOptions, Subscription, type SubscriptionStats } from './bus.js';
export {
  type AgentConfig,
  BUNDLED_CONFIG,
  DEFAULT_SOCKET,
  defaults,
  loadAgentConfig,
  type ParsedAgentArgs,
  parseFlags,
  repoRoot,
  SETTINGS,
  type StdoutFormat,
  SYSTEM_CONFIG,
  settingsHelp,
} from './config.js';
export { FileExporter, type FileExporterOptions, type FileExporterStats } from './export-file.js';
export { StdoutExporter, type StdoutExporterStats } from './export-stdout.js';
export { describeFsError, UserError } from './fs-util.js';
export { LatencyHistogram, type LatencySummary } from './latency.js';
export { type AgentStatus, type DropsStatus, type ProgramStatus, renderStatusText } from './status.js';
export { version } from './version.js';
