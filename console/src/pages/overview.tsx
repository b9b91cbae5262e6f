/**
 * An integration at a glance: whether its parser is healthy (the circuit breaker and its last
 * errors), the webhook URL to paste into the provider's console, and the limits its requests
 * run under. Deleting it is here too, behind a confirmation.
 */

import { useState } from 'preact/hooks';

import type { BreakerState, Health } from '../api';
import { navigate } from '../router';
import { useApi } from '../session';
import { Badge, Confirm, CopyField, ErrorNote, Load, Time, useAction, useLoad, usePoll } from '../ui';
import type { TabProps } from './integration';
import { LimitsCard } from './limits';

const BREAKER: Record<BreakerState, { tone: string; label: string }> = {
  closed: { tone: 'ok', label: 'Healthy' },
  half_open: { tone: 'warn', label: 'Probing' },
  open: { tone: 'bad', label: 'Suspended' },
};

export function BreakerBadge({ state }: { state: BreakerState }) {
  const { tone, label } = BREAKER[state] ?? { tone: 'bad', label: state };
  return (
    <Badge tone={tone} testid="breaker-state">
      {label}
    </Badge>
  );
}

export function OverviewTab(props: TabProps) {
  return (
    <>
      <div class="grid two">
        <HealthCard {...props} />
        <WebhookCard {...props} />
      </div>
      <LimitsCard {...props} />
      <DeleteIntegration {...props} />
    </>
  );
}

function HealthCard({ tenant, integration }: TabProps) {
  const api = useApi();
  const health = useLoad(() => api.health(tenant, integration.id), [integration.active_version]);
  const reset = useAction();
  usePoll(() => void health.reload(), 10_000);
  return (
    <article aria-labelledby="health-title" data-testid="health">
      <header>
        <h2 id="health-title">Health</h2>
      </header>
      <Load state={health} what="health">
        {(data: Health) => (
          <>
            <p>
              <BreakerBadge state={data.state} />{' '}
              {data.state === 'closed'
                ? 'The parser is called for every request.'
                : data.state === 'open'
                  ? `The parser keeps failing: requests are answered 503 until the next probe${data.retry_in_ms !== null ? ` in ${Math.ceil(data.retry_in_ms / 1000)} s` : ''}.`
                  : 'A probe request is deciding whether the parser is called again.'}
            </p>
            <dl class="facts">
              <dt>Failures in a row</dt>
              <dd>{data.consecutive_failures}</dd>
              <dt>Failures since activation</dt>
              <dd>{data.total_failures}</dd>
            </dl>
            {data.misconfigured && (
              <p class="note warn">
                The parser reported the setting <code>{data.misconfigured.setting}</code> missing or wrong:{' '}
                {data.misconfigured.message} (<Time at={data.misconfigured.at} />)
              </p>
            )}
            {data.last_errors.length > 0 ? (
              <details>
                <summary>Last {data.last_errors.length} errors</summary>
                <div class="overflow-auto">
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">When</th>
                        <th scope="col">Kind</th>
                        <th scope="col">Message</th>
                      </tr>
                    </thead>
                    <tbody>
                      {[...data.last_errors].reverse().map((failure, n) => (
                        <tr key={n}>
                          <td>
                            <Time at={failure.at} />
                          </td>
                          <td>
                            <code>{failure.kind}</code>
                          </td>
                          <td>{failure.message}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              </details>
            ) : (
              <p class="muted">No parser failures recorded.</p>
            )}
            <ErrorNote error={reset.error} />
            <button
              type="button"
              class="outline"
              aria-busy={reset.busy}
              disabled={reset.busy || (data.state === 'closed' && data.consecutive_failures === 0)}
              onClick={() => void reset.run(async () => health.set(await api.resetHealth(tenant, integration.id)))}
            >
              Reset breaker
            </button>
          </>
        )}
      </Load>
    </article>
  );
}

function WebhookCard({ tenant, integration }: TabProps) {
  const api = useApi();
  const webhook = useLoad(() => api.webhook(tenant, integration.id), [tenant, integration.id]);
  const [confirming, setConfirming] = useState(false);
  const regenerate = useAction();
  return (
    <article aria-labelledby="webhook-title">
      <header>
        <h2 id="webhook-title">Webhook</h2>
      </header>
      <Load state={webhook} what="the webhook URL">
        {(data) => (
          <>
            <CopyField label="Webhook URL" value={data.url} testid="webhook-url" />
            <p class="muted">Paste it into the provider's console. The token in it is the integration's secret.</p>
            <button type="button" class="outline danger" onClick={() => (regenerate.clear(), setConfirming(true))}>
              Regenerate URL
            </button>
          </>
        )}
      </Load>
      <Confirm
        open={confirming}
        title="Regenerate the webhook URL?"
        confirm="Regenerate"
        action={regenerate}
        onCancel={() => setConfirming(false)}
        onConfirm={() =>
          void regenerate.run(async () => {
            webhook.set(await api.regenerateWebhook(tenant, integration.id));
            setConfirming(false);
          })
        }
      >
        <p>The current URL stops working at once: the provider's requests are refused until its console has the new one.</p>
      </Confirm>
    </article>
  );
}

function DeleteIntegration({ tenant, integration }: TabProps) {
  const api = useApi();
  const [confirming, setConfirming] = useState(false);
  const remove = useAction();
  return (
    <section class="danger-zone" aria-labelledby="delete-title">
      <h2 id="delete-title">Delete the integration</h2>
      <p class="muted">Its versions, settings and bindings go with it, and its webhook URL stops working.</p>
      <button type="button" class="outline danger" onClick={() => (remove.clear(), setConfirming(true))}>
        Delete {integration.id}
      </button>
      <Confirm
        open={confirming}
        title={`Delete ${integration.id}?`}
        confirm="Delete integration"
        action={remove}
        onCancel={() => setConfirming(false)}
        onConfirm={() =>
          void remove.run(async () => {
            await api.deleteIntegration(tenant, integration.id);
            setConfirming(false);
            navigate({ page: 'tenant', tenant });
          })
        }
      >
        <p>This cannot be undone.</p>
      </Confirm>
    </section>
  );
}
