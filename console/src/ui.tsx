/**
 * The few pieces every page shares: loading data, running an action with its error shown
 * beside it, dialogs on the platform's `<dialog>`, a copyable field, and formatting of times,
 * sizes and durations. Everything else is Pico's styling of plain HTML.
 */

import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

/** The state of data a page loads. */
export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => Promise<void>;
  set: (data: T) => void;
}

/**
 * Loads `load()` now and whenever `deps` change. A reload keeps the data shown until the new
 * answer arrives, so polling does not flicker; an answer that arrives after a newer request
 * began is dropped.
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(true);
  const generation = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  const reload = useCallback(async () => {
    const mine = ++generation.current;
    setLoading(true);
    try {
      const value = await loadRef.current();
      if (mine === generation.current) {
        setData(value);
        setError(undefined);
      }
    } catch (err) {
      if (mine === generation.current) setError(err);
    } finally {
      if (mine === generation.current) setLoading(false);
    }
  }, []);

  useEffect(() => {
    setData(undefined);
    void reload();
  }, deps);

  return { data, error, loading, reload, set: setData };
}

/** An action's state: whether it runs, and how it failed. */
export interface Action {
  busy: boolean;
  error: unknown;
  run: (action: () => Promise<unknown>) => Promise<boolean>;
  clear: () => void;
}

/** Runs one action at a time, keeping its error for an {@link ErrorNote} beside its button. */
export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = useCallback(async (action: () => Promise<unknown>) => {
    setBusy(true);
    setError(undefined);
    try {
      await action();
      return true;
    } catch (err) {
      setError(err);
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, clear: () => setError(undefined) };
}

export function message(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** An error, announced to screen readers as it appears. */
export function ErrorNote({ error, testid }: { error: unknown; testid?: string }) {
  if (error === undefined || error === null) return null;
  return (
    <p role="alert" class="note error" data-testid={testid ?? 'error'}>
      {message(error)}
    </p>
  );
}

/** Pico's spinner, for a first load. */
export function Loading({ what }: { what?: string }) {
  return <p aria-busy="true">{what ? `Loading ${what}…` : 'Loading…'}</p>;
}

/** The first load's spinner or error, else the page's content. */
export function Load<T>({
  state,
  what,
  children,
}: {
  state: Loaded<T>;
  what?: string;
  children: (data: T) => ComponentChildren;
}) {
  if (state.data === undefined) {
    return state.error !== undefined ? <ErrorNote error={state.error} /> : <Loading what={what} />;
  }
  return (
    <>
      {state.error !== undefined && <ErrorNote error={state.error} />}
      {children(state.data)}
    </>
  );
}

/**
 * A modal `<dialog>`: the browser keeps the focus inside it, closes it on Escape and gives
 * the focus back where it was. `onClose` hears every way it closes.
 */
export function Dialog({
  open,
  onClose,
  title,
  children,
  wide,
  testid,
}: {
  open: boolean;
  onClose: () => void;
  title: string;
  children: ComponentChildren;
  wide?: boolean;
  testid?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <dialog ref={ref} onClose={onClose} aria-label={title} class={wide ? 'wide' : undefined} data-testid={testid}>
      {open && (
        <article>
          <header>
            <button type="button" aria-label="Close" class="close" onClick={onClose} />
            <h2 class="dialog-title">{title}</h2>
          </header>
          {children}
        </article>
      )}
    </dialog>
  );
}

/** A confirmation before something that cannot be undone. */
export function Confirm({
  open,
  title,
  children,
  confirm,
  onConfirm,
  onCancel,
  action,
}: {
  open: boolean;
  title: string;
  children: ComponentChildren;
  confirm: string;
  onConfirm: () => void;
  onCancel: () => void;
  action: Action;
}) {
  return (
    <Dialog open={open} onClose={onCancel} title={title}>
      {children}
      <ErrorNote error={action.error} />
      <footer>
        <button type="button" class="secondary" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" class="danger" aria-busy={action.busy} disabled={action.busy} onClick={onConfirm}>
          {confirm}
        </button>
      </footer>
    </Dialog>
  );
}

/** A read-only value with a button that copies it, for URLs and tokens. */
export function CopyField({ label, value, testid }: { label: string; value: string; testid?: string }) {
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<string>('');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied('Copied.');
    } catch {
      // No clipboard (an insecure origin): select it for the person to copy.
      input.current?.select();
      setCopied('Selected: press Ctrl+C to copy.');
    }
  };
  useEffect(() => setCopied(''), [value]);
  return (
    <div class="copy-field">
      <label>
        {label}
        <fieldset role="group">
          <input ref={input} type="text" readOnly value={value} data-testid={testid} onFocus={(e) => e.currentTarget.select()} />
          <button type="button" class="secondary" onClick={copy}>
            Copy
          </button>
        </fieldset>
      </label>
      <small role="status">{copied}</small>
    </div>
  );
}

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const clockFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

/** A time as the reader's locale writes it, the exact RFC 3339 one on hover. */
export function Time({ at, clock }: { at: string | null | undefined; clock?: boolean }) {
  if (!at) return <span class="muted">—</span>;
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return <span>{at}</span>;
  return (
    <time dateTime={at} title={at}>
      {(clock ? clockFormat : timeFormat).format(date)}
    </time>
  );
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function micros(us: number): string {
  if (us < 1000) return `${us} µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
  return `${(us / 1_000_000).toFixed(2)} s`;
}

/** `1:05`, `12:03:09`: a call's length. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

/** A state or outcome as a coloured label; `tone` picks the colour. */
export function Badge({ tone, children, testid }: { tone: string; children: ComponentChildren; testid?: string }) {
  return (
    <span class={`badge badge-${tone}`} data-testid={testid}>
      {children}
    </span>
  );
}

/** The colour of an invocation's outcome. */
export function outcomeTone(outcome: string): string {
  if (outcome === 'ok' || outcome === 'duplicate') return 'ok';
  if (outcome === 'rejected' || outcome === 'rate_limited' || outcome === 'busy') return 'warn';
  return 'bad';
}

/** Pretty-printed JSON. */
export function Json({ value, testid }: { value: unknown; testid?: string }) {
  return (
    <pre class="json" data-testid={testid}>
      <code>{JSON.stringify(value, null, 2)}</code>
    </pre>
  );
}

/** Re-renders every `ms` while mounted (live durations). */
export function useTick(ms: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

/** Calls `poll` every `ms` while the page is visible, and at once when it becomes so. */
export function usePoll(poll: () => void, ms: number): void {
  const ref = useRef(poll);
  ref.current = poll;
  useEffect(() => {
    const tick = () => {
      if (document.visibilityState === 'visible') ref.current();
    };
    const timer = setInterval(tick, ms);
    document.addEventListener('visibilitychange', tick);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', tick);
    };
  }, [ms]);
}

/**
 * The id and optional name of something new (a tenant, an integration): the id becomes part of
 * webhook URLs, so it is checked here by the server's own rule before the server says so.
 */
export function IdNameFields({
  prefix,
  id,
  setId,
  name,
  setName,
  idExample,
  nameExample,
  idUse,
}: {
  prefix: string;
  id: string;
  setId: (id: string) => void;
  name: string;
  setName: (name: string) => void;
  idExample: string;
  nameExample: string;
  idUse: string;
}) {
  return (
    <div class="grid">
      <div>
        <label for={`${prefix}-id`}>Id</label>
        <input
          id={`${prefix}-id`}
          name={`${prefix}-id`}
          required
          pattern="[a-z0-9_\-]{1,64}"
          placeholder={idExample}
          value={id}
          onInput={(e) => setId(e.currentTarget.value)}
          aria-describedby={`${prefix}-id-help`}
        />
        <small id={`${prefix}-id-help`}>1 to 64 of a-z, 0-9, - and _; {idUse}.</small>
      </div>
      <div>
        <label for={`${prefix}-name`}>
          Name <span class="muted">(optional)</span>
        </label>
        <input
          id={`${prefix}-name`}
          name={`${prefix}-name`}
          placeholder={nameExample}
          value={name}
          onInput={(e) => setName(e.currentTarget.value)}
        />
      </div>
    </div>
  );
}
