/**
 * What the integration's parser did lately: the activity of the last half hour as charts
 * (outcomes and latency, from the server's own metrics), and the last 50 invocations, each
 * opening with its error, the parser's log and the request as the server kept it (secrets
 * redacted), from where it can be tried again on any version.
 */

import { useState } from 'preact/hooks';

import type { Invocation } from '../api';
import { useApi } from '../session';
import { Badge, Dialog, Load, micros, outcomeTone, Time, useLoad, usePoll } from '../ui';
import { ActivityCharts } from './activity-chart';
import type { TabProps } from './integration';
import { LogTable } from './log-table';
import { requestOf, TrialDialog } from './trial';

const POLL_MS = 5000;

export function InvocationsTab({ tenant, integration }: TabProps) {
  const api = useApi();
  const invocations = useLoad(() => api.invocations(tenant, integration.id), [tenant, integration.id]);
  const [open, setOpen] = useState<Invocation | null>(null);
  const [trial, setTrial] = useState<Invocation | null>(null);
  usePoll(() => void invocations.reload(), POLL_MS);

  return (
    <>
      <ActivityCharts tenant={tenant} integration={integration.id} pollMs={POLL_MS} />
      <section aria-labelledby="invocations-title">
        <div class="section-head">
          <h2 id="invocations-title">Recent invocations</h2>
          <button type="button" class="outline small" aria-busy={invocations.loading} onClick={() => void invocations.reload()}>
            Refresh
          </button>
        </div>
        <Load state={invocations} what="invocations">
          {(list) =>
            list.length === 0 ? (
              <p class="muted">No requests since the server started.</p>
            ) : (
              <div class="overflow-auto">
                <table class="striped" data-testid="invocations">
                  <thead>
                    <tr>
                      <th scope="col">Received</th>
                      <th scope="col">Outcome</th>
                      <th scope="col">Version</th>
                      <th scope="col">Time in parser</th>
                      <th scope="col">Request</th>
                      <th scope="col">Error</th>
                    </tr>
                  </thead>
                  <tbody>
                    {list.map((invocation, n) => (
                      <tr key={`${invocation.at}-${n}`} data-testid="invocation" data-outcome={invocation.outcome}>
                        <td>
                          <button type="button" class="link" onClick={() => setOpen(invocation)}>
                            <Time at={invocation.at} clock />
                            <span class="visually-hidden"> open</span>
                          </button>
                        </td>
                        <td>
                          <Badge tone={outcomeTone(invocation.outcome)}>{invocation.outcome}</Badge>
                        </td>
                        <td>{invocation.version}</td>
                        <td>{micros(invocation.duration_us)}</td>
                        <td class="clip">
                          <code>
                            {invocation.method} {invocation.path}
                          </code>
                        </td>
                        <td class="clip">{invocation.error ?? <span class="muted">—</span>}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )
          }
        </Load>
      </section>

      <Dialog open={open !== null} onClose={() => setOpen(null)} title="Invocation" wide testid="invocation-dialog">
        {open && (
          <InvocationDetail
            invocation={open}
            onTrial={() => {
              setTrial(open);
              setOpen(null);
            }}
          />
        )}
      </Dialog>
      <TrialDialog
        open={trial !== null}
        onClose={() => setTrial(null)}
        tenant={tenant}
        integration={integration}
        version={trial?.version ?? integration.active_version ?? 1}
        request={trial ? requestOf(trial) : undefined}
      />
    </>
  );
}

function InvocationDetail({ invocation, onTrial }: { invocation: Invocation; onTrial: () => void }) {
  return (
    <div data-testid="invocation-detail">
      <p>
        <Badge tone={outcomeTone(invocation.outcome)} testid="invocation-outcome">
          {invocation.outcome}
        </Badge>{' '}
        version {invocation.version}, <Time at={invocation.at} />, {micros(invocation.duration_us)} in the parser
      </p>
      {invocation.error && (
        <p class="note error" data-testid="invocation-error">
          {invocation.error}
        </p>
      )}
      <h3>Log</h3>
      <LogTable log={invocation.log} testid="invocation-log" />
      <h3>Request</h3>
      <p>
        <code data-testid="invocation-request-line">
          {invocation.method} {invocation.path}
        </code>
      </p>
      {invocation.headers && invocation.headers.length > 0 && (
        <div class="overflow-auto">
          <table class="headers">
            <tbody>
              {invocation.headers.map(([name, value], n) => (
                <tr key={n}>
                  <th scope="row">{name}</th>
                  <td>{value}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {invocation.body ? (
        <pre class="body">
          <code>{invocation.body}</code>
        </pre>
      ) : (
        <p class="muted">No body.</p>
      )}
      <p class="muted">The webhook token and the settings' values are redacted; the body is cut at 4 KiB.</p>
      <footer>
        <button type="button" onClick={onTrial}>
          Trial run with this request
        </button>
      </footer>
    </div>
  );
}
