/**
 * Which platform user gets the calls of each extension: edited as a table and saved whole
 * (`PUT I/bindings` replaces them all), applying from the next webhook on.
 */

import { useEffect, useState } from 'preact/hooks';

import type { Binding } from '../api';
import { useApi } from '../session';
import { ErrorNote, Load, useAction, useLoad } from '../ui';
import type { TabProps } from './integration';

/** A row being edited; `key` keeps each row's inputs its own while rows come and go. */
interface Row extends Binding {
  key: number;
}

let nextKey = 0;
const rowsOf = (bindings: Binding[]): Row[] => bindings.map((b) => ({ ...b, key: nextKey++ }));

export function BindingsTab({ tenant, integration }: TabProps) {
  const api = useApi();
  const bindings = useLoad(() => api.bindings(tenant, integration.id), [tenant, integration.id]);
  return (
    <section aria-labelledby="bindings-title">
      <h2 id="bindings-title">Bindings</h2>
      <p class="muted">
        Each call notifies the users bound to the extensions it names: whom its card pops up for. A change applies from
        the next webhook on; stored calls keep whom they named.
      </p>
      <Load state={bindings} what="bindings">
        {(saved) => <BindingsEditor tenant={tenant} integration={integration.id} saved={saved} onSaved={bindings.set} />}
      </Load>
    </section>
  );
}

function BindingsEditor({
  tenant,
  integration,
  saved,
  onSaved,
}: {
  tenant: string;
  integration: string;
  saved: Binding[];
  onSaved: (bindings: Binding[]) => void;
}) {
  const api = useApi();
  const [rows, setRows] = useState(() => rowsOf(saved));
  const [status, setStatus] = useState('');
  const save = useAction();
  useEffect(() => setRows(rowsOf(saved)), [saved]);

  const edit = (key: number, field: keyof Binding, value: string) => {
    setStatus('');
    setRows(rows.map((row) => (row.key === key ? { ...row, [field]: value } : row)));
  };
  const add = () => {
    setRows([...rows, { key: nextKey++, extension: '', user_id: '' }]);
    // The new row's first field takes the focus, for typing straight on.
    requestAnimationFrame(() => document.querySelector<HTMLInputElement>('[data-testid="bindings"] tbody tr:last-child input')?.focus());
  };
  const remove = (key: number) => setRows(rows.filter((row) => row.key !== key));
  const submit = (event: Event) => {
    event.preventDefault();
    const bindings = rows
      .map(({ extension, user_id }) => ({ extension: extension.trim(), user_id: user_id.trim() }))
      .filter((b) => b.extension !== '' || b.user_id !== '');
    void save.run(async () => {
      onSaved(await api.replaceBindings(tenant, integration, bindings));
      setStatus(`${bindings.length} binding${bindings.length === 1 ? '' : 's'} saved.`);
    });
  };
  const dirty = JSON.stringify(rows.map(({ extension, user_id }) => [extension, user_id])) !== JSON.stringify(saved.map((b) => [b.extension, b.user_id]));

  return (
    <form onSubmit={submit}>
      <div class="overflow-auto">
        <table data-testid="bindings">
          <thead>
            <tr>
              <th scope="col">Extension</th>
              <th scope="col">User id</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row, n) => (
              <tr key={row.key}>
                <td>
                  <input
                    aria-label={`Extension of row ${n + 1}`}
                    value={row.extension}
                    placeholder="101"
                    onInput={(e) => edit(row.key, 'extension', e.currentTarget.value)}
                  />
                </td>
                <td>
                  <input
                    aria-label={`User id of row ${n + 1}`}
                    value={row.user_id}
                    placeholder="u-42"
                    onInput={(e) => edit(row.key, 'user_id', e.currentTarget.value)}
                  />
                </td>
                <td class="actions">
                  <button type="button" class="outline danger small" onClick={() => remove(row.key)}>
                    Remove<span class="visually-hidden"> row {n + 1}</span>
                  </button>
                </td>
              </tr>
            ))}
            {rows.length === 0 && (
              <tr>
                <td colSpan={3} class="muted">
                  No bindings: calls notify no one until an extension is bound.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      <ErrorNote error={save.error} />
      <div class="button-row">
        <button type="button" class="secondary outline" onClick={add}>
          Add a binding
        </button>
        <button type="submit" aria-busy={save.busy} disabled={save.busy || !dirty}>
          Save bindings
        </button>
        <small role="status">{dirty ? 'Unsaved changes.' : status}</small>
      </div>
    </form>
  );
}
