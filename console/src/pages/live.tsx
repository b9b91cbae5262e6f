/**
 * Live calls: a card for every call as it rings, is answered and ends, updated in place from
 * the live stream, with whom it pops up for. Ended calls fade after a while and the latest
 * few stay, so that the end of a call can still be read. The admin sees every tenant's calls
 * (or one tenant's), a tenant its own; either may narrow them to one user's.
 */

import { useState } from 'preact/hooks';

import { KEEP_ENDED, useCallStream, type LiveCall, type StreamStatus } from '../live-stream';
import { href } from '../router';
import { isAdmin, useSession } from '../session';
import { Badge, clock, useTick } from '../ui';
import { DIRECTION, phone, STATE_TONE } from './calls';

/** After this long ended, a card fades (it stays until {@link KEEP_ENDED} newer ones end). */
const FADE_AFTER_MS = 60_000;

export function LivePage() {
  const { api, who } = useSession();
  const [filter, setFilter] = useState<{ tenant?: string; user?: string }>({});
  const [draft, setDraft] = useState({ tenant: '', user: '' });
  const { calls, status } = useCallStream(api, filter);
  const now = useTick(1000);

  const apply = (event: Event) => {
    event.preventDefault();
    setFilter({ tenant: draft.tenant.trim() || undefined, user: draft.user.trim() || undefined });
  };

  return (
    <>
      <div class="section-head">
        <h1 tabIndex={-1}>Live calls</h1>
        <StatusLine status={status} />
      </div>
      <form onSubmit={apply} class="filters" aria-label="Filter live calls">
        <div class="filter-grid">
          {isAdmin(who) && (
            <label>
              Tenant
              <input name="tenant" placeholder="every tenant" value={draft.tenant} onInput={(e) => setDraft({ ...draft, tenant: e.currentTarget.value })} />
            </label>
          )}
          <label>
            User
            <input name="user" placeholder="every user" value={draft.user} onInput={(e) => setDraft({ ...draft, user: e.currentTarget.value })} />
          </label>
          <div class="filter-submit">
            <button type="submit" class="outline">
              Follow
            </button>
          </div>
        </div>
      </form>
      {calls.length === 0 ? (
        <p class="muted empty-board" data-testid="no-live-calls">
          Calls appear here as they ring. The board starts empty: it shows what happens from now on.
        </p>
      ) : (
        <ul class="call-board" aria-label="Calls" data-testid="call-board">
          {calls.map((call) => (
            <CallCard key={call.update.call.id} live={call} now={now} />
          ))}
        </ul>
      )}
    </>
  );
}

function StatusLine({ status }: { status: StreamStatus }) {
  const [tone, text] =
    status.state === 'live'
      ? ['ok', 'Live']
      : status.state === 'connecting'
        ? ['muted', 'Connecting…']
        : status.state === 'retrying'
          ? ['warn', `Reconnecting (${status.reason})`]
          : ['bad', `Stopped: ${status.reason}`];
  return (
    <p role={status.state === 'failed' ? 'alert' : 'status'} class="stream-status" data-testid="stream-status" data-state={status.state}>
      <Badge tone={tone}>{text}</Badge>
    </p>
  );
}

/**
 * How long the call has been ringing or talking, or how long it talked; a call that ended
 * unanswered shows how it ended instead. `spoken` is what a screen reader says before it.
 */
function duration(live: LiveCall, now: number): { shown: string; spoken: string } {
  const call = live.update.call;
  const since = (at: string | null) => (at ? (now - Date.parse(at)) / 1000 : 0);
  if (call.state === 'ringing') return { shown: clock(since(call.started_at ?? call.first_event_at)), spoken: 'ringing for' };
  if (call.state === 'answered') return { shown: clock(since(call.answered_at)), spoken: 'talking for' };
  const end = Date.parse(call.ended_at ?? call.last_event_at);
  const talk = call.record?.duration ?? (call.answered_at ? (end - Date.parse(call.answered_at)) / 1000 : null);
  if (talk !== null && call.disposition === 'answered') return { shown: clock(talk), spoken: 'talked for' };
  return { shown: call.disposition.replace('_', ' '), spoken: 'ended:' };
}

function CallCard({ live, now }: { live: LiveCall; now: number }) {
  const { update } = live;
  const call = update.call;
  const faded = live.endedSeenAt !== null && now - live.endedSeenAt > FADE_AFTER_MS;
  const labelId = `call-${call.id}`;
  const { shown, spoken } = duration(live, now);
  return (
    <li
      class={`call-card state-${call.state}${faded ? ' faded' : ''}`}
      data-testid="call-card"
      data-call-id={call.id}
      data-provider-call-id={call.provider_call_id ?? ''}
      data-state={call.state}
      aria-labelledby={labelId}
    >
      <article>
        <header>
          <Badge tone={STATE_TONE[call.state]} testid="call-state">
            {call.state}
          </Badge>
          <span class="muted">{DIRECTION[call.direction] ?? call.direction}</span>
          <span class="duration" data-testid="call-duration">
            <span class="visually-hidden">{spoken} </span>
            {shown}
          </span>
        </header>
        <p class="parties" id={labelId}>
          <span data-testid="call-from">{phone(call.src_phone, call.src_phone_ext)}</span>
          <span aria-hidden="true"> → </span>
          <span class="visually-hidden"> to </span>
          <span data-testid="call-to">{phone(call.dst_phone, call.dst_phone_ext)}</span>
        </p>
        <p class="users">
          Pops up for:{' '}
          {call.users.length ? <strong data-testid="call-users">{call.users.join(', ')}</strong> : <span class="muted">no one bound</span>}
        </p>
        <footer>
          <small class="muted">
            {update.tenant} / {update.integration}
          </small>
          <a href={href({ page: 'call', tenant: update.tenant, integration: update.integration, call: call.id })}>
            Details<span class="visually-hidden"> of the call from {phone(call.src_phone, call.src_phone_ext)}</span>
          </a>
        </footer>
      </article>
    </li>
  );
}
