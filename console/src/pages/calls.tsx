/**
 * An integration's calls, the most recently begun first, filtered by user, state and time as
 * the API filters them, a page at a time; each opens with its events.
 */

import { useState } from 'preact/hooks';

import type { Call, CallFilter, CallState } from '../api';
import { href } from '../router';
import { useApi } from '../session';
import { Badge, ErrorNote, Load, Time, useAction, useLoad } from '../ui';
import type { TabProps } from './integration';

const PAGE = 50;

export const STATE_TONE: Record<CallState, string> = { ringing: 'warn', answered: 'ok', ended: 'muted' };
export const DIRECTION: Record<string, string> = { in: 'Incoming', out: 'Outgoing', internal: 'Internal' };

/** A phone with its extension, as people read them. */
export function phone(number: string | null | undefined, ext: string | null | undefined): string {
  if (number && ext && number !== ext) return `${number} (ext. ${ext})`;
  return number || ext || '—';
}

/** `datetime-local` gives the reader's local time; the API wants RFC 3339 in UTC. */
function utc(local: string): string | undefined {
  if (!local) return undefined;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function CallsTab({ tenant, integration }: TabProps) {
  const api = useApi();
  const [filter, setFilter] = useState<CallFilter>({});
  const [draft, setDraft] = useState({ user: '', state: '' as CallState | '', since: '', until: '' });
  const first = useLoad(() => api.calls(tenant, integration.id, { ...filter, limit: PAGE }), [tenant, integration.id, filter]);
  const [older, setOlder] = useState<{ calls: Call[]; next: string | null } | null>(null);
  const more = useAction();

  const apply = (event: Event) => {
    event.preventDefault();
    setOlder(null);
    setFilter({ user: draft.user.trim() || undefined, state: draft.state || undefined, since: utc(draft.since), until: utc(draft.until) });
  };
  const clear = () => {
    setDraft({ user: '', state: '', since: '', until: '' });
    setOlder(null);
    setFilter({});
  };
  const next = older ? older.next : (first.data?.next ?? null);
  const loadOlder = () =>
    next &&
    void more.run(async () => {
      const page = await api.calls(tenant, integration.id, { ...filter, before: next, limit: PAGE });
      setOlder({ calls: [...(older?.calls ?? []), ...page.calls], next: page.next });
    });

  return (
    <>
      <form onSubmit={apply} class="filters" aria-label="Filter calls">
        <div class="filter-grid">
          <label>
            User
            <input name="user" placeholder="u-42" value={draft.user} onInput={(e) => setDraft({ ...draft, user: e.currentTarget.value })} />
          </label>
          <label>
            State
            <select name="state" value={draft.state} onChange={(e) => setDraft({ ...draft, state: e.currentTarget.value as CallState | '' })}>
              <option value="">any</option>
              <option value="ringing">ringing</option>
              <option value="answered">answered</option>
              <option value="ended">ended</option>
            </select>
          </label>
          <label>
            Begun from
            <input type="datetime-local" name="since" value={draft.since} onInput={(e) => setDraft({ ...draft, since: e.currentTarget.value })} />
          </label>
          <label>
            Begun before
            <input type="datetime-local" name="until" value={draft.until} onInput={(e) => setDraft({ ...draft, until: e.currentTarget.value })} />
          </label>
        </div>
        <div class="button-row">
          <button type="submit">Apply filters</button>
          <button type="button" class="secondary outline" onClick={clear}>
            Clear
          </button>
          <button type="button" class="secondary outline" aria-busy={first.loading} onClick={() => (setOlder(null), void first.reload())}>
            Refresh
          </button>
        </div>
      </form>
      <Load state={first} what="calls">
        {(page) => {
          const calls = [...page.calls, ...(older?.calls ?? [])];
          return calls.length === 0 ? (
            <p class="muted">No calls{Object.values(filter).some((v) => v) ? ' match these filters' : ' yet'}.</p>
          ) : (
            <>
              <CallTable tenant={tenant} integration={integration.id} calls={calls} />
              <ErrorNote error={more.error} />
              {next && (
                <button type="button" class="outline" aria-busy={more.busy} onClick={loadOlder}>
                  Older calls
                </button>
              )}
            </>
          );
        }}
      </Load>
    </>
  );
}

function CallTable({ tenant, integration, calls }: { tenant: string; integration: string; calls: Call[] }) {
  return (
    <div class="overflow-auto">
      <table class="striped" data-testid="calls">
        <thead>
          <tr>
            <th scope="col">Begun</th>
            <th scope="col">State</th>
            <th scope="col">Direction</th>
            <th scope="col">From</th>
            <th scope="col">To</th>
            <th scope="col">Users</th>
            <th scope="col">Disposition</th>
          </tr>
        </thead>
        <tbody>
          {calls.map((call) => (
            <tr key={call.id} data-testid="call-row" data-call-id={call.id}>
              <td>
                <a href={href({ page: 'call', tenant, integration, call: call.id })}>
                  <Time at={call.first_event_at} />
                </a>
              </td>
              <td>
                <Badge tone={STATE_TONE[call.state]}>{call.state}</Badge>
              </td>
              <td>{DIRECTION[call.direction] ?? call.direction}</td>
              <td>{phone(call.src_phone, call.src_phone_ext)}</td>
              <td>{phone(call.dst_phone, call.dst_phone_ext)}</td>
              <td>{call.users.length ? call.users.join(', ') : <span class="muted">—</span>}</td>
              <td>{call.state === 'ended' ? call.disposition : <span class="muted">—</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
