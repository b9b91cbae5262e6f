/**
 * The last half hour of an integration, from the server's own metrics (`GET I/activity`):
 * requests per bucket stacked by outcome, and the parser's p50 and p99 latency. Polled every
 * few seconds while the page is visible. uPlot draws on a canvas, so the charts carry a text
 * summary for those who cannot see them.
 */

import uPlot from 'uplot';
import { useEffect, useRef } from 'preact/hooks';

import type { Activity } from '../api';
import { useApi } from '../session';
import { ErrorNote, micros, useLoad, usePoll } from '../ui';

const WINDOW_SECS = 30 * 60;
const HEIGHT = 220;

/** Outcome colours: the good, the provider's fault, the parser's or the host's. */
const OUTCOME_COLOURS: Record<string, string> = {
  ok: '#2f9e44',
  duplicate: '#74b816',
  rejected: '#f08c00',
  rate_limited: '#e8590c',
  busy: '#d9480f',
  misconfigured: '#ae3ec9',
};
const OTHER_COLOURS = ['#e03131', '#c2255c', '#9c36b5', '#6741d9', '#1971c2', '#0c8599'];

function colour(outcome: string, n: number): string {
  return OUTCOME_COLOURS[outcome] ?? OTHER_COLOURS[n % OTHER_COLOURS.length];
}

/** The buckets on a full grid of the window, the empty ones as zero requests. */
function grid(activity: Activity, now: number) {
  const step = Math.max(1, activity.bucket_secs);
  const last = Math.floor(now / step) * step;
  const first = last - Math.ceil(WINDOW_SECS / step) * step + step;
  const times: number[] = [];
  for (let t = first; t <= last; t += step) times.push(t);
  const index = new Map(times.map((t, n) => [t, n]));
  const outcomes = [...new Set(activity.buckets.flatMap((b) => Object.keys(b.outcomes)))].sort((a, b) =>
    a === 'ok' ? -1 : b === 'ok' ? 1 : a.localeCompare(b),
  );
  const counts = outcomes.map(() => times.map(() => 0));
  const p50: (number | null)[] = times.map(() => null);
  const p99: (number | null)[] = times.map(() => null);
  for (const bucket of activity.buckets) {
    const t = Math.floor(Date.parse(bucket.at) / 1000 / step) * step;
    const n = index.get(t);
    if (n === undefined) continue;
    outcomes.forEach((outcome, o) => (counts[o][n] += bucket.outcomes[outcome] ?? 0));
    p50[n] = bucket.p50_us;
    p99[n] = bucket.p99_us;
  }
  return { times, outcomes, counts, p50, p99 };
}

export function ActivityCharts({ tenant, integration, pollMs }: { tenant: string; integration: string; pollMs: number }) {
  const api = useApi();
  const activity = useLoad(() => api.activity(tenant, integration), [tenant, integration]);
  usePoll(() => void activity.reload(), pollMs);

  const data = activity.data;
  const g = data ? grid(data, Date.now() / 1000) : null;
  const total = g ? g.counts.flat().reduce((a, b) => a + b, 0) : 0;
  const summary = g
    ? g.outcomes.map((outcome, o) => `${g.counts[o].reduce((a, b) => a + b, 0)} ${outcome}`).join(', ')
    : '';

  return (
    <section aria-labelledby="activity-title" data-testid="activity">
      <h2 id="activity-title">Last 30 minutes</h2>
      <ErrorNote error={activity.error} />
      {!g ? (
        activity.error === undefined && <p aria-busy="true">Loading activity…</p>
      ) : total === 0 ? (
        <p class="muted">No requests in the last 30 minutes.</p>
      ) : (
        <div class="grid two charts">
          <figure>
            <figcaption>Requests by outcome</figcaption>
            <OutcomeChart {...g} />
            <p class="visually-hidden">
              {total} requests: {summary}.
            </p>
          </figure>
          <figure>
            <figcaption>Parser latency (p50, p99)</figcaption>
            <LatencyChart {...g} />
          </figure>
        </div>
      )}
    </section>
  );
}

type Grid = ReturnType<typeof grid>;

function OutcomeChart({ times, outcomes, counts }: Grid) {
  // Stacked bars: each series is the running total up to its outcome, drawn from the tallest
  // down so that each shorter one covers the one beneath; the legend shows each own count.
  // An empty bucket is no bar at all (a bar of height 0 still draws its outline).
  const stacked = counts.map((_, o) =>
    times.map((_, n) => counts.slice(0, o + 1).reduce((sum, c) => sum + c[n], 0) || null),
  );
  const order = outcomes.map((_, o) => o).reverse();
  const bars = uPlot.paths.bars!({ size: [0.8, 24] });
  const series: uPlot.Series[] = [
    {},
    ...order.map((o) => ({
      label: outcomes[o],
      stroke: colour(outcomes[o], o),
      fill: colour(outcomes[o], o),
      paths: bars,
      width: 0,
      points: { show: false },
      // The series' own count: its running total less the one beneath it (the next series).
      value: (u: uPlot, _: number, s: number, idx: number | null) =>
        idx === null ? '—' : (u.data[s][idx] ?? 0) - (s + 1 < u.data.length ? (u.data[s + 1][idx] ?? 0) : 0),
    })),
  ];
  const data: uPlot.AlignedData = [times, ...order.map((o) => stacked[o])];
  return <Chart series={series} data={data} seriesKey={outcomes.join(',')} yFormat={(v) => String(v)} />;
}

function LatencyChart({ times, p50, p99 }: Grid) {
  const line = (label: string, stroke: string): uPlot.Series => ({
    label,
    stroke,
    width: 2,
    spanGaps: true,
    points: { show: true, size: 4 },
    value: (_: uPlot, v: number | null) => (v === null ? '—' : micros(v)),
  });
  const series = [{}, line('p50', '#1971c2'), line('p99', '#e8590c')];
  return <Chart series={series} data={[times, p50, p99] as uPlot.AlignedData} seriesKey="latency" yFormat={(v) => micros(v)} />;
}

/**
 * One uPlot chart, as wide as its container: made once per set of series, given new data in
 * place on every poll.
 */
function Chart({
  series,
  data,
  seriesKey,
  yFormat,
}: {
  series: uPlot.Series[];
  data: uPlot.AlignedData;
  seriesKey: string;
  yFormat: (value: number) => string;
}) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const styles = getComputedStyle(document.documentElement);
    const text = styles.getPropertyValue('--pico-muted-color').trim() || '#888';
    const lines = styles.getPropertyValue('--pico-muted-border-color').trim() || 'rgba(128,128,128,.2)';
    const axis = (values?: uPlot.Axis['values']): uPlot.Axis => ({
      stroke: text,
      grid: { stroke: lines, width: 1 },
      ticks: { stroke: lines, width: 1 },
      values,
    });
    const options: uPlot.Options = {
      width: element.clientWidth || 400,
      height: HEIGHT,
      series,
      axes: [axis(), { ...axis((_, ticks) => ticks.map((v) => yFormat(v))), size: 64 }],
      scales: { y: { range: (_, min, max) => [Math.min(0, min), Math.max(1, max * 1.1)] } },
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
    };
    const chart = new uPlot(options, data, element);
    plot.current = chart;
    const resize = new ResizeObserver(() => chart.setSize({ width: element.clientWidth, height: HEIGHT }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, [seriesKey]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return <div ref={container} class="chart" />;
}
