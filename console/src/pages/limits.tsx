/**
 * An integration's own limits beside the ones its requests run under. A field left empty
 * keeps the host's default (the API's `null`), which the field shows as its placeholder;
 * a value outside the host's caps is the server's `400`, naming the field.
 */

import { useEffect, useState } from 'preact/hooks';

import type { EffectiveLimits, Limits, OwnLimits } from '../api';
import { useApi } from '../session';
import { ErrorNote, Load, useAction, useLoad } from '../ui';
import type { TabProps } from './integration';

const MIB = 1024 * 1024;

interface Field {
  key: keyof OwnLimits;
  label: string;
  unit?: string;
  /** The API's unit per unit of the field (memory is asked in MiB, stored in bytes). */
  scale?: number;
  effective: (limits: EffectiveLimits) => number | null;
  help: string;
}

const FIELDS: Field[] = [
  { key: 'timeout_ms', label: 'Parser timeout', unit: 'ms', effective: (l) => l.timeout_ms, help: '1 to 1000' },
  { key: 'memory_bytes', label: 'Memory', unit: 'MiB', scale: MIB, effective: (l) => l.memory_bytes, help: '1 to 128' },
  { key: 'max_concurrency', label: 'Running at once', effective: (l) => l.max_concurrency, help: '1 to 128' },
  { key: 'max_queue', label: 'Queue', effective: (l) => l.max_queue, help: '0 to 10,000' },
  { key: 'rate_per_second', label: 'Rate', unit: 'per second', effective: (l) => l.rate_per_second, help: '1 to 1,000,000' },
  { key: 'burst', label: 'Burst', effective: (l) => l.burst, help: '1 to 1,000,000' },
];

type Draft = Record<keyof OwnLimits, string>;

function draftOf(own: OwnLimits): Draft {
  const draft = {} as Draft;
  for (const field of FIELDS) {
    const value = own[field.key];
    draft[field.key] = value === null || value === undefined ? '' : String(value / (field.scale ?? 1));
  }
  return draft;
}

export function LimitsCard({ tenant, integration }: TabProps) {
  const api = useApi();
  const limits = useLoad(() => api.limits(tenant, integration.id), [tenant, integration.id]);
  return (
    <article aria-labelledby="limits-title">
      <header>
        <h2 id="limits-title">Limits</h2>
      </header>
      <Load state={limits} what="limits">
        {(data) => <LimitsForm tenant={tenant} integration={integration.id} limits={data} onSaved={limits.set} />}
      </Load>
    </article>
  );
}

function LimitsForm({
  tenant,
  integration,
  limits,
  onSaved,
}: {
  tenant: string;
  integration: string;
  limits: Limits;
  onSaved: (limits: Limits) => void;
}) {
  const api = useApi();
  const [draft, setDraft] = useState(() => draftOf(limits.own));
  const [saved, setSaved] = useState('');
  const save = useAction();
  useEffect(() => setDraft(draftOf(limits.own)), [limits]);

  const submit = (own: OwnLimits) =>
    void save.run(async () => {
      setSaved('');
      onSaved(await api.replaceLimits(tenant, integration, own));
      setSaved('Limits saved.');
    });

  const onSubmit = (event: Event) => {
    event.preventDefault();
    const own: OwnLimits = {};
    for (const field of FIELDS) {
      const text = draft[field.key].trim();
      if (text !== '') own[field.key] = Math.round(Number(text) * (field.scale ?? 1));
    }
    submit(own);
  };

  return (
    <form onSubmit={onSubmit}>
      <p class="muted">Empty fields keep the host's default, shown greyed; requests run under the values shown.</p>
      <div class="limits-grid">
        {FIELDS.map((field) => {
          const effective = field.effective(limits.effective);
          const shown = effective === null ? 'none' : String(effective / (field.scale ?? 1));
          return (
            <div key={field.key}>
              <label for={`limit-${field.key}`}>
                {field.label}
                {field.unit && <span class="muted"> ({field.unit})</span>}
              </label>
              <input
                id={`limit-${field.key}`}
                type="number"
                min={0}
                step="any"
                inputMode="numeric"
                name={field.key}
                placeholder={shown}
                value={draft[field.key]}
                onInput={(e) => setDraft({ ...draft, [field.key]: e.currentTarget.value })}
                aria-describedby={`limit-${field.key}-help`}
              />
              <small id={`limit-${field.key}-help`}>
                In force: {shown} · {field.help}
              </small>
            </div>
          );
        })}
      </div>
      <ErrorNote error={save.error} />
      <div class="button-row">
        <button type="submit" aria-busy={save.busy} disabled={save.busy}>
          Save limits
        </button>
        <button type="button" class="secondary outline" disabled={save.busy} onClick={() => submit({})}>
          Use the host's defaults
        </button>
        <small role="status">{saved}</small>
      </div>
    </form>
  );
}
