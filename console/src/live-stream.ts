/**
 * The live stream of call updates (`GET /stream/calls`, Server-Sent Events) folded into the
 * calls as they stand now. `EventSource` cannot send `Authorization`, so the stream is read
 * with fetch-event-source, which can, and which resumes with `Last-Event-ID` after a dropped
 * connection, so no update is missed or shown twice (updates are ordered by `position`; an
 * older one of a call never replaces a newer).
 */

import { fetchEventSource } from '@microsoft/fetch-event-source';
import { useEffect, useState } from 'preact/hooks';

import type { Api, CallUpdate, CallUpdateMessage } from './api';

/** How many ended calls stay on the board. */
export const KEEP_ENDED = 20;
const RETRY_MS = 2000;

export type StreamStatus = { state: 'connecting' } | { state: 'live' } | { state: 'retrying'; reason: string } | { state: 'failed'; reason: string };

/** A call on the board: its newest update, and when this page saw it end. */
export interface LiveCall {
  update: CallUpdate;
  endedSeenAt: number | null;
}

/** An answer that retrying will not change (a bad token, a filter the token may not use). */
class Fatal extends Error {}

export interface StreamFilter {
  tenant?: string;
  user?: string;
}

export function useCallStream(api: Api, filter: StreamFilter): { calls: LiveCall[]; status: StreamStatus } {
  const [calls, setCalls] = useState<Map<string, LiveCall>>(() => new Map());
  const [status, setStatus] = useState<StreamStatus>({ state: 'connecting' });

  useEffect(() => {
    const abort = new AbortController();
    const query = new URLSearchParams();
    if (filter.tenant) query.set('tenant', filter.tenant);
    if (filter.user) query.set('user', filter.user);
    setStatus({ state: 'connecting' });
    setCalls(new Map());

    void fetchEventSource(`/stream/calls${query.size ? `?${query}` : ''}`, {
      signal: abort.signal,
      headers: { Authorization: `Bearer ${api.token}` },
      async onopen(response) {
        if (response.ok && response.headers.get('content-type')?.startsWith('text/event-stream')) {
          setStatus({ state: 'live' });
          return;
        }
        const reason = await errorOf(response);
        if (response.status >= 400 && response.status < 500 && response.status !== 429) throw new Fatal(reason);
        throw new Error(reason);
      },
      onmessage(message) {
        if (message.event !== 'call.updated' || !message.data) return;
        let update: CallUpdate | undefined;
        try {
          update = (JSON.parse(message.data) as CallUpdateMessage).data;
        } catch {
          return;
        }
        if (update?.call?.id) setCalls((current) => fold(current, update));
      },
      onclose() {
        // The server ends streams when it shuts down: resume on its successor.
        throw new Error('the server closed the stream');
      },
      onerror(err) {
        if (err instanceof Fatal) {
          setStatus({ state: 'failed', reason: err.message });
          throw err;
        }
        setStatus({ state: 'retrying', reason: (err as Error)?.message ?? String(err) });
        return RETRY_MS;
      },
    }).catch(() => {
      // A fatal answer, already shown; or the page left.
    });
    return () => abort.abort();
  }, [api, filter.tenant, filter.user]);

  return { calls: order(calls), status };
}

/** The board with one more update: a newer one replaces its call, an older one is dropped. */
function fold(current: Map<string, LiveCall>, update: CallUpdate): Map<string, LiveCall> {
  const id = update.call.id;
  const previous = current.get(id);
  if (previous && previous.update.position >= update.position) return current;
  const ended = update.call.state === 'ended';
  const next = new Map(current);
  next.set(id, { update, endedSeenAt: ended ? (previous?.endedSeenAt ?? Date.now()) : null });
  // Only the latest ended calls stay.
  const endedCalls = [...next.values()].filter((c) => c.endedSeenAt !== null).sort((a, b) => b.endedSeenAt! - a.endedSeenAt!);
  for (const old of endedCalls.slice(KEEP_ENDED)) next.delete(old.update.call.id);
  return next;
}

/** Ongoing calls first (newest first), then the ended ones (most recently ended first). */
function order(calls: Map<string, LiveCall>): LiveCall[] {
  const begun = (c: LiveCall) => Date.parse(c.update.call.started_at ?? c.update.call.first_event_at);
  return [...calls.values()].sort((a, b) => {
    if ((a.endedSeenAt === null) !== (b.endedSeenAt === null)) return a.endedSeenAt === null ? -1 : 1;
    if (a.endedSeenAt !== null && b.endedSeenAt !== null) return b.endedSeenAt - a.endedSeenAt;
    return begun(b) - begun(a);
  });
}

async function errorOf(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { error?: string };
    if (body.error) return body.error;
  } catch {
    // Not the API's JSON.
  }
  return `the stream answered ${response.status} ${response.statusText}`;
}
