/**
 * One tenant's integrations, each with the state of its circuit breaker, so that the one
 * failing is seen first; and creating an integration, which opens it.
 */

import { useState } from 'preact/hooks';

import type { Health, Integration } from '../api';
import { href, navigate } from '../router';
import { isAdmin, useApi, useSession } from '../session';
import { ErrorNote, IdNameFields, Load, Time, useAction, useLoad } from '../ui';
import { BreakerBadge } from './overview';

interface Row {
  integration: Integration;
  health: Health | null;
}

export function TenantPage({ tenant }: { tenant: string }) {
  const api = useApi();
  const { who } = useSession();
  const rows = useLoad(async (): Promise<Row[]> => {
    const integrations = await api.integrations(tenant);
    // One health request each: a tenant has a handful of integrations.
    return Promise.all(
      integrations.map(async (integration) => ({
        integration,
        health: await api.health(tenant, integration.id).catch(() => null),
      })),
    );
  }, [tenant]);

  return (
    <>
      {isAdmin(who) && (
        <nav aria-label="breadcrumb">
          <ul>
            <li>
              <a href={href({ page: 'tenants' })}>Tenants</a>
            </li>
            <li aria-current="page">{tenant}</li>
          </ul>
        </nav>
      )}
      <h1 tabIndex={-1}>
        Integrations <span class="muted">of {tenant}</span>
      </h1>
      <Load state={rows} what="integrations">
        {(list) =>
          list.length === 0 ? (
            <p class="muted">No integrations yet: create one below, then upload its parser.</p>
          ) : (
            <div class="overflow-auto">
              <table class="striped" data-testid="integrations">
                <thead>
                  <tr>
                    <th scope="col">Integration</th>
                    <th scope="col">Active version</th>
                    <th scope="col">Health</th>
                    <th scope="col">Last error</th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {list.map(({ integration, health }) => (
                    <tr key={integration.id}>
                      <td>
                        <a href={href({ page: 'integration', tenant, integration: integration.id, tab: 'overview' })}>
                          {integration.id}
                        </a>
                        {integration.name !== integration.id && <div class="muted">{integration.name}</div>}
                      </td>
                      <td>{integration.active_version ?? <span class="muted">none</span>}</td>
                      <td>{health ? <BreakerBadge state={health.state} /> : <span class="muted">—</span>}</td>
                      <td class="clip">{health?.last_errors.at(-1)?.message ?? <span class="muted">—</span>}</td>
                      <td>
                        <Time at={integration.created_at} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Load>
      <CreateIntegration tenant={tenant} />
    </>
  );
}

function CreateIntegration({ tenant }: { tenant: string }) {
  const api = useApi();
  const [id, setId] = useState('');
  const [name, setName] = useState('');
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    void action.run(async () => {
      const created = await api.createIntegration(tenant, id.trim(), name.trim() || undefined);
      navigate({ page: 'integration', tenant, integration: created.id, tab: 'overview' });
    });
  };
  return (
    <article aria-labelledby="new-integration">
      <header>
        <h2 id="new-integration">New integration</h2>
      </header>
      <form onSubmit={submit}>
        <IdNameFields
          prefix="integration"
          id={id}
          setId={setId}
          name={name}
          setName={setName}
          idExample="zadarma"
          nameExample="Zadarma PBX"
          idUse="part of its webhook URL"
        />
        <ErrorNote error={action.error} />
        <button type="submit" aria-busy={action.busy} disabled={action.busy}>
          Create integration
        </button>
      </form>
    </article>
  );
}
