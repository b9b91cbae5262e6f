/**
 * An integration's settings (its provider secrets, mostly). They are write-only: the API gives
 * their keys, never their values, and so does this page; a value typed here is sent once and
 * the field is emptied.
 */

import { useState } from 'preact/hooks';

import { useApi } from '../session';
import { Confirm, ErrorNote, Load, useAction, useLoad } from '../ui';
import type { TabProps } from './integration';

export function SettingsTab({ tenant, integration }: TabProps) {
  const api = useApi();
  const settings = useLoad(() => api.settings(tenant, integration.id), [tenant, integration.id]);
  const remove = useAction();
  const [removing, setRemoving] = useState<string | null>(null);
  const [status, setStatus] = useState('');

  const removeKey = (key: string) =>
    void remove.run(async () => {
      settings.set(await api.updateSettings(tenant, integration.id, { [key]: null }));
      setRemoving(null);
      setStatus(`${key} removed.`);
    });

  return (
    <>
      <section aria-labelledby="settings-title">
        <h2 id="settings-title">Settings</h2>
        <p class="muted">
          The values the parser reads with <code>settings.get</code>, stored sealed. Values are never shown again, here
          or by the API; setting a key again replaces its value.
        </p>
        <Load state={settings} what="settings">
          {({ keys }) =>
            keys.length === 0 ? (
              <p class="muted" data-testid="no-settings">
                No settings yet: the parser's README lists the ones it needs.
              </p>
            ) : (
              <table data-testid="settings">
                <thead>
                  <tr>
                    <th scope="col">Key</th>
                    <th scope="col">Value</th>
                    <th scope="col">
                      <span class="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {keys.map((key) => (
                    <tr key={key}>
                      <th scope="row">
                        <code data-testid="setting-key">{key}</code>
                      </th>
                      <td class="muted">set, hidden</td>
                      <td class="actions">
                        <button type="button" class="outline danger small" onClick={() => (remove.clear(), setRemoving(key))}>
                          Remove<span class="visually-hidden"> {key}</span>
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
          }
        </Load>
      </section>
      <SetSetting
        tenant={tenant}
        integration={integration.id}
        keys={settings.data?.keys ?? []}
        status={status}
        onSaved={(keys, key) => {
          settings.set({ keys });
          setStatus(`${key} set.`);
        }}
      />
      <Confirm
        open={removing !== null}
        title={`Remove ${removing ?? ''}?`}
        confirm="Remove setting"
        action={remove}
        onCancel={() => setRemoving(null)}
        onConfirm={() => removing && removeKey(removing)}
      >
        <p>A parser that needs it refuses requests until it is set again.</p>
      </Confirm>
    </>
  );
}

function SetSetting({
  tenant,
  integration,
  keys,
  status,
  onSaved,
}: {
  tenant: string;
  integration: string;
  keys: string[];
  status: string;
  onSaved: (keys: string[], key: string) => void;
}) {
  const api = useApi();
  const [key, setKey] = useState('');
  const [value, setValue] = useState('');
  const save = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    const name = key.trim();
    void save.run(async () => {
      const answer = await api.updateSettings(tenant, integration, { [name]: value });
      setKey('');
      setValue('');
      onSaved(answer.keys, name);
    });
  };
  return (
    <article aria-labelledby="set-setting">
      <header>
        <h2 id="set-setting">Set a setting</h2>
      </header>
      <form onSubmit={submit} autoComplete="off">
        <div class="grid">
          <label>
            Key
            <input
              name="setting-key"
              required
              maxLength={128}
              list="setting-keys"
              placeholder="api_secret"
              value={key}
              onInput={(e) => setKey(e.currentTarget.value)}
            />
            <datalist id="setting-keys">
              {keys.map((k) => (
                <option key={k} value={k} />
              ))}
            </datalist>
          </label>
          <label>
            Value
            <input
              name="setting-value"
              type="password"
              autoComplete="new-password"
              required
              value={value}
              onInput={(e) => setValue(e.currentTarget.value)}
            />
          </label>
        </div>
        <ErrorNote error={save.error} />
        <div class="button-row">
          <button type="submit" aria-busy={save.busy} disabled={save.busy}>
            Set
          </button>
          <small role="status" data-testid="settings-status">
            {status}
          </small>
        </div>
      </form>
    </article>
  );
}
