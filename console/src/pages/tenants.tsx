/**
 * The admin's list of tenants: create one (its token is shown this once, as the API returns
 * it only once), open one, delete one.
 */

import { useState } from 'preact/hooks';

import type { CreatedTenant, Tenant } from '../api';
import { href, navigate } from '../router';
import { useApi } from '../session';
import { Confirm, CopyField, Dialog, ErrorNote, IdNameFields, Load, Time, useAction, useLoad } from '../ui';

export function TenantsPage() {
  const api = useApi();
  const tenants = useLoad(() => api.tenants(), []);
  const [created, setCreated] = useState<CreatedTenant | null>(null);
  const [deleting, setDeleting] = useState<Tenant | null>(null);
  const remove = useAction();

  return (
    <>
      <h1 tabIndex={-1}>Tenants</h1>
      <Load state={tenants} what="tenants">
        {(list) =>
          list.length === 0 ? (
            <p class="muted">No tenants yet: create the first below.</p>
          ) : (
            <div class="overflow-auto">
              <table class="striped" data-testid="tenants">
                <thead>
                  <tr>
                    <th scope="col">Id</th>
                    <th scope="col">Name</th>
                    <th scope="col">Created</th>
                    <th scope="col">
                      <span class="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((tenant) => (
                    <tr key={tenant.id}>
                      <td>
                        <a href={href({ page: 'tenant', tenant: tenant.id })}>{tenant.id}</a>
                      </td>
                      <td>{tenant.name}</td>
                      <td>
                        <Time at={tenant.created_at} />
                      </td>
                      <td class="actions">
                        <button type="button" class="outline danger small" onClick={() => (remove.clear(), setDeleting(tenant))}>
                          Delete<span class="visually-hidden"> {tenant.id}</span>
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Load>
      <CreateTenant
        onCreated={(tenant) => {
          setCreated(tenant);
          void tenants.reload();
        }}
      />

      <Dialog open={created !== null} onClose={() => setCreated(null)} title={`Tenant ${created?.id ?? ''} created`}>
        {created && (
          <>
            <p>
              This is the tenant's token. It manages the tenant's integrations and is shown only now: hand it to the tenant's
              admin.
            </p>
            <CopyField label="Tenant token" value={created.token} testid="tenant-token" />
            <footer>
              <button
                type="button"
                onClick={() => {
                  setCreated(null);
                  navigate({ page: 'tenant', tenant: created.id });
                }}
              >
                Open {created.id}
              </button>
            </footer>
          </>
        )}
      </Dialog>

      <Confirm
        open={deleting !== null}
        title={`Delete tenant ${deleting?.id ?? ''}?`}
        confirm="Delete tenant"
        action={remove}
        onCancel={() => setDeleting(null)}
        onConfirm={() =>
          deleting &&
          void remove.run(async () => {
            await api.deleteTenant(deleting.id);
            setDeleting(null);
            await tenants.reload();
          })
        }
      >
        <p>Its integrations, versions, settings and token go with it; its webhook URLs stop working at once.</p>
      </Confirm>
    </>
  );
}

function CreateTenant({ onCreated }: { onCreated: (tenant: CreatedTenant) => void }) {
  const api = useApi();
  const [id, setId] = useState('');
  const [name, setName] = useState('');
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    void action.run(async () => {
      const tenant = await api.createTenant(id.trim(), name.trim() || undefined);
      setId('');
      setName('');
      onCreated(tenant);
    });
  };
  return (
    <article aria-labelledby="new-tenant">
      <header>
        <h2 id="new-tenant">New tenant</h2>
      </header>
      <form onSubmit={submit} class="inline-form">
        <IdNameFields
          prefix="tenant"
          id={id}
          setId={setId}
          name={name}
          setName={setName}
          idExample="acme"
          nameExample="Acme Ltd"
          idUse="part of its webhook URLs"
        />
        <ErrorNote error={action.error} />
        <button type="submit" aria-busy={action.busy} disabled={action.busy}>
          Create tenant
        </button>
      </form>
    </article>
  );
}
