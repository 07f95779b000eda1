/**
 * What the whole page learns in the background while it is open: every
 * event (for the process explorer, which then knows processes even without
 * the agent's store) and every flow (to show what a process connected to).
 * Both are bounded.
 */
import { followLines, hasEndpoint, type StreamState } from './api.js';
import { type ExportEvent, type HubbleFlow, ProcessIndex, toFlow } from './model.js';

export const processIndex = new ProcessIndex(5000, 200);

/** The newest flows, oldest first. */
export const recentFlows: HubbleFlow[] = [];
const MAX_FLOWS = 5000;

type Listener = () => void;
const listeners = new Set<Listener>();
let eventState: StreamState = { state: 'closed' };
let flowState: StreamState = { state: 'closed' };
let started = false;

/**
 * Start following events; again is a no-op. Flows travel on the same bus
 * as the other events ({flow, node_name, time}), so one stream brings both;
 * the flow endpoint is only asked whether it exists.
 */
export function startLive(): void {
  if (started) return;
  started = true;
  followLines(
    '/v1/events',
    (items) => {
      let flows = false;
      for (const x of items) {
        const ev = x as ExportEvent;
        if ('flow' in ev) {
          const f = toFlow(ev);
          if (f) recentFlows.push(f);
          flows = true;
        } else processIndex.add(ev);
      }
      if (flows && recentFlows.length > MAX_FLOWS) recentFlows.splice(0, recentFlows.length - MAX_FLOWS);
      notify();
    },
    (s) => {
      eventState = s;
      notify();
    },
  );
  void hasEndpoint('/v1/flows').then((ok) => {
    flowState = ok ? eventState : { state: 'missing' };
    notify();
  });
}

let pending = false;
/** Listeners hear at most every 250 ms, however fast events come. */
function notify(): void {
  if (pending) return;
  pending = true;
  setTimeout(() => {
    pending = false;
    for (const l of listeners) l();
  }, 250);
}

export function onLive(l: Listener): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

export function liveStates(): { events: StreamState; flows: StreamState } {
  return { events: eventState, flows: flowState.state === 'missing' ? flowState : eventState };
}
