/**
 * One call: where it stands, who was in it, whom it notified, its call record (the recording
 * reference the platform hands back to the provider) and the events it was made of, oldest
 * first.
 */

import { useState } from 'preact/hooks';

import type { CallDetail, StoredEvent } from '../api';
import { useApi } from '../session';
import { Badge, clock, CopyField, Dialog, Json, Load, Time, useLoad } from '../ui';
import { DIRECTION, phone, STATE_TONE } from './calls';
import { Breadcrumb } from './integration';

const EVENT_NAMES: Record<string, string> = { notify_start: 'start', notify_answer: 'answer', notify_end: 'end' };

export function CallPage({ tenant, integration, call }: { tenant: string; integration: string; call: string }) {
  const api = useApi();
  const detail = useLoad(() => api.call(tenant, integration, call), [tenant, integration, call]);
  return (
    <>
      <Breadcrumb tenant={tenant} integration={integration} last="call" />
      <Load state={detail} what="the call">
        {(data) => <CallView detail={data} />}
      </Load>
      {detail.data === undefined && <h1 tabIndex={-1}>Call</h1>}
    </>
  );
}

function CallView({ detail: { call, events } }: { detail: CallDetail }) {
  const [shown, setShown] = useState<StoredEvent | null>(null);
  const talk = call.answered_at && call.ended_at ? (Date.parse(call.ended_at) - Date.parse(call.answered_at)) / 1000 : null;
  return (
    <>
      <hgroup>
        <h1 tabIndex={-1}>
          {phone(call.src_phone, call.src_phone_ext)} → {phone(call.dst_phone, call.dst_phone_ext)}
        </h1>
        <p>
          <Badge tone={STATE_TONE[call.state]} testid="call-state">
            {call.state}
          </Badge>{' '}
          {DIRECTION[call.direction] ?? call.direction} call
          {call.state === 'ended' && `, ${call.disposition}`}
          {call.closed_by === 'timeout' && ' (ended by the host after hearing nothing)'}
        </p>
      </hgroup>
      <div class="grid two">
        <article>
          <dl class="facts">
            <dt>Started</dt>
            <dd>
              <Time at={call.started_at ?? call.first_event_at} />
            </dd>
            <dt>Answered</dt>
            <dd>
              <Time at={call.answered_at} />
            </dd>
            <dt>Ended</dt>
            <dd>
              <Time at={call.ended_at} />
            </dd>
            {talk !== null && (
              <>
                <dt>Talk time</dt>
                <dd>{clock(talk)}</dd>
              </>
            )}
            <dt>Notifies</dt>
            <dd>{call.users.length ? call.users.join(', ') : <span class="muted">no one bound</span>}</dd>
            <dt>Provider's call id</dt>
            <dd>
              <code>{call.provider_call_id ?? '—'}</code>
            </dd>
            <dt>Our call id</dt>
            <dd>
              <code>{call.id}</code>
            </dd>
          </dl>
        </article>
        <article data-testid="call-record">
          <header>
            <h2>Call record</h2>
          </header>
          {call.record ? (
            <>
              <dl class="facts">
                <dt>Duration</dt>
                <dd>{clock(call.record.duration)}</dd>
                <dt>Disposition</dt>
                <dd>{call.record.disposition}</dd>
              </dl>
              {call.record.call ? (
                <CopyField label="Recording reference" value={call.record.call} testid="recording" />
              ) : (
                <p class="muted">No recording.</p>
              )}
              <small class="muted">The provider's reference the platform exchanges for the recording's link.</small>
            </>
          ) : (
            <p class="muted">No call record yet: it comes with or after the call's end.</p>
          )}
        </article>
      </div>
      <section aria-labelledby="events-title">
        <h2 id="events-title">Events</h2>
        {events.length === 0 ? (
          <p class="muted">The event log no longer holds this call's events.</p>
        ) : (
          <div class="overflow-auto">
            <table class="striped" data-testid="call-events">
              <thead>
                <tr>
                  <th scope="col">Seq</th>
                  <th scope="col">Received</th>
                  <th scope="col">Event</th>
                  <th scope="col">Disposition</th>
                  <th scope="col">Users</th>
                  <th scope="col">Version</th>
                  <th scope="col">As stored</th>
                </tr>
              </thead>
              <tbody>
                {events.map((event) => (
                  <EventRow key={event.seq} event={event} onShow={() => setShown(event)} />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <Dialog open={shown !== null} onClose={() => setShown(null)} title={`Event ${shown?.seq ?? ''} as stored`} wide>
        {shown && <Json value={shown} />}
      </Dialog>
    </>
  );
}

function EventRow({ event, onShow }: { event: StoredEvent; onShow: () => void }) {
  const kind = [event.event ? EVENT_NAMES[event.event.event] ?? event.event.event : null, event.call_record ? 'call record' : null]
    .filter(Boolean)
    .join(' + ');
  return (
    <tr>
      <td>{event.seq}</td>
      <td>
        <Time at={event.received_at} />
      </td>
      <td>
        {kind}
        {event.unresolved && <Badge tone="warn">unresolved</Badge>}
      </td>
      <td>{event.event?.disposition ?? event.call_record?.disposition ?? '—'}</td>
      <td>{event.users.length ? event.users.join(', ') : <span class="muted">—</span>}</td>
      <td>{event.version}</td>
      <td>
        <button type="button" class="link" onClick={onShow}>
          JSON<span class="visually-hidden"> of event {event.seq}</span>
        </button>
      </td>
    </tr>
  );
}
