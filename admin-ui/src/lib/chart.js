// A uPlot time-series chart sized to its container, drawn in the palette of
// the current theme and relabelled when the language changes.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useEffect, useRef } from 'preact/hooks';
import { html } from './html.js';
import { lang, t } from './i18n.js';
import { dateTime, short } from './format.js';
import { useStore } from './store.js';
import { dark } from './theme.js';

const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

const pad = (n) => String(n).padStart(2, '0');
/** An axis label: the day at midnight (or when ticks are a day apart) on a multi-day span, else the time. */
function tick(secs, spanSecs, incr) {
  const d = new Date(secs * 1000);
  const day = `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  if (incr >= 86400) return day;
  const midnight = d.getHours() === 0 && d.getMinutes() === 0;
  return spanSecs > 86400 && midnight ? day : `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Indices of values with no value on either side (a line cannot show them). */
function isolated(u, si, show) {
  if (show) return null;
  const v = u.data[si];
  const out = [];
  for (let i = 0; i < v.length; i += 1) {
    if (v[i] !== null && v[i] !== undefined && (v[i - 1] === null || v[i - 1] === undefined) && (v[i + 1] === null || v[i + 1] === undefined)) out.push(i);
  }
  return out.length ? out : null;
}

/**
 * `x`: times in seconds; `series`: `[{ label, values, color: '--c1', kind:
 * 'line' | 'bars', fmt }]`; `yFmt` formats the axis. `empty` is shown over
 * a chart whose values are all zero or missing.
 */
export function Chart({ title, x, series, height = 200, yFmt = short, empty }) {
  const box = useRef(null);
  const plot = useRef(null);
  const isDark = useStore(dark);
  const language = useStore(lang);
  const hasData = series.some((s) => s.values.some((v) => v !== null && v !== undefined && v !== 0));

  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const axisColor = cssVar('--text-muted');
    const gridColor = cssVar('--grid');
    const span = x.length > 1 ? x[x.length - 1] - x[0] : 0;
    const step = x.length > 1 ? (x[x.length - 1] - x[0]) / (x.length - 1) : 3600;
    const bars = series.some((s) => s.kind === 'bars');
    const opts = {
      width: Math.max(200, el.clientWidth),
      height,
      padding: [8, 16, 0, 0],
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      legend: { show: true, live: true },
      scales: {
        // Bars sit on their bucket's time: half a bucket of room each side.
        x: { time: true, range: (u, min, max) => (bars ? [min - step / 2, max + step / 2] : [min, max]) },
        // Counts start at zero.
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.08 : 1] },
      },
      series: [
        { label: t('chart.time'), value: (u, v) => (v === null || v === undefined ? '–' : dateTime(v * 1000, { seconds: false })) },
        ...series.map((s) => {
          const color = cssVar(s.color);
          return {
            label: s.label,
            stroke: color,
            // Bars are fill only: an outline would draw every empty bucket as a dash on the zero line.
            width: s.kind === 'bars' ? 0 : 2,
            fill: s.kind === 'bars' ? `${color}cc` : undefined,
            paths: s.kind === 'bars' ? uPlot.paths.bars({ size: [0.7, 40], gap: 1 }) : undefined,
            // A value with no neighbour draws no line: show it as a dot.
            points: { show: false, size: 6, width: 1, fill: color, filter: s.kind === 'bars' ? undefined : isolated },
            spanGaps: false,
            value: (u, v) => (v === null || v === undefined ? '–' : (s.fmt ?? String)(v)),
          };
        }),
      ],
      axes: [
        {
          stroke: axisColor,
          grid: { stroke: gridColor, width: 1 },
          ticks: { stroke: gridColor },
          values: (u, vals, axis, space, incr) => vals.map((v) => tick(v, span, incr)),
          font: '11px system-ui, sans-serif',
        },
        {
          stroke: axisColor,
          grid: { stroke: gridColor, width: 1 },
          ticks: { stroke: gridColor },
          values: (u, vals) => vals.map((v) => yFmt(v)),
          size: 52,
          font: '11px system-ui, sans-serif',
        },
      ],
    };
    const data = [x, ...series.map((s) => s.values)];
    plot.current = new uPlot(opts, data, el);
    const ro = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (plot.current && Math.abs(plot.current.width - w) > 1) plot.current.setSize({ width: w, height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [x, series, height, isDark, language]);

  return html`
    <figure class="chart">
      <figcaption>${title}</figcaption>
      <div class="chart-box" ref=${box}></div>
      ${!hasData && html`<p class="chart-empty">${empty ?? t('chart.empty')}</p>`}
    </figure>`;
}
