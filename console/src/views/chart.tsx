// A stacked bar chart drawn as inline SVG (no chart library, no inline styles: the CSP allows
// stylesheets from the console's own origin only), with its numbers in a visually-hidden table
// and a `<title>` per bar, so the data reads without colour or sight.

/** One stacked series: a name (model or key) and a value per category (day). */
export interface Series {
  name: string;
  values: number[];
}

interface ChartProps {
  /** What is counted ("Requests", "Input tokens"); the chart's heading and table caption. */
  title: string;
  /** The x-axis categories (UTC days, `YYYY-MM-DD`). */
  categories: string[];
  series: Series[];
  /** Heading of the series column in the table ("Model", "API key"). */
  seriesLabel: string;
}

const WIDTH = 960;
const HEIGHT = 220;
const LEFT = 56;
const BOTTOM = 24;
const TOP = 8;
/** How many colours the stylesheet defines (`.series-0` … `.series-7`). */
export const PALETTE = 8;

/** How many intervals the y axis has (five grid lines). */
const TICKS = 4;

/** A round upper bound for the y axis such that its grid lines fall on whole, readable numbers. */
export function niceMax(max: number): number {
  if (max <= 0) return TICKS;
  const raw = max / TICKS;
  const unit = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) {
    const step = m * unit;
    if (step >= raw && Number.isInteger(step)) return step * TICKS;
  }
  return 10 * unit * TICKS;
}

/** `1234567` → `1.2M`, for axis labels (the tables carry the exact numbers). */
export function compact(n: number): string {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** A stacked bar per category with a legend, and the same numbers as a table. */
export function StackedBars({ title, categories, series, seriesLabel }: ChartProps) {
  const totals = categories.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const top = niceMax(Math.max(0, ...totals));
  const plotW = WIDTH - LEFT - 8;
  const plotH = HEIGHT - TOP - BOTTOM;
  const slot = plotW / Math.max(1, categories.length);
  const barW = Math.max(2, Math.min(40, slot * 0.7));
  const y = (v: number) => TOP + plotH - (v / top) * plotH;
  const labelEvery = Math.ceil(categories.length / 12);
  const ticks = Array.from({ length: TICKS + 1 }, (_, i) => (i * top) / TICKS);
  const slug = title.toLowerCase().replace(/[^a-z0-9]+/g, "-");

  return (
    <figure class="chart" data-chart={slug}>
      <figcaption id={`chart-${slug}`}>{title}</figcaption>
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        class="chart-svg"
        role="img"
        aria-labelledby={`chart-${slug}`}
        preserveAspectRatio="xMidYMid meet"
      >
        {ticks.map((t) => (
          <g key={t}>
            <line class="grid" x1={LEFT} x2={WIDTH - 8} y1={y(t)} y2={y(t)} />
            <text class="axis" x={LEFT - 6} y={y(t) + 4} text-anchor="end">
              {compact(t)}
            </text>
          </g>
        ))}
        {categories.map((c, i) => {
          const x = LEFT + i * slot + (slot - barW) / 2;
          let base = 0;
          return (
            <g key={c}>
              {series.map((s, k) => {
                const v = s.values[i] ?? 0;
                if (v <= 0) return null;
                const y0 = y(base);
                base += v;
                const y1 = y(base);
                return (
                  <rect
                    key={s.name}
                    class={`bar series-${k % PALETTE}`}
                    x={x}
                    y={y1}
                    width={barW}
                    height={Math.max(1, y0 - y1)}
                    data-series={s.name}
                    data-day={c}
                    data-value={v}
                  >
                    <title>{`${c} · ${s.name}: ${v.toLocaleString("en")} ${title.toLowerCase()}`}</title>
                  </rect>
                );
              })}
              {i % labelEvery === 0 && (
                <text class="axis" x={x + barW / 2} y={HEIGHT - 6} text-anchor="middle">
                  {c.slice(5)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      {series.length > 0 && (
        <ul class="legend" aria-hidden="true">
          {series.map((s, k) => (
            <li key={s.name}>
              <svg viewBox="0 0 10 10" width="10" height="10">
                <rect class={`series-${k % PALETTE}`} width="10" height="10" />
              </svg>{" "}
              {s.name}
            </li>
          ))}
        </ul>
      )}
      <table class="visually-hidden" id={`table-${slug}`}>
        <caption>{title} per day</caption>
        <thead>
          <tr>
            <th scope="col">Day</th>
            {series.map((s) => (
              <th scope="col" key={s.name}>
                {seriesLabel} {s.name}
              </th>
            ))}
            <th scope="col">Total</th>
          </tr>
        </thead>
        <tbody>
          {categories.map((c, i) => (
            <tr key={c}>
              <th scope="row">{c}</th>
              {series.map((s) => (
                <td key={s.name}>{s.values[i] ?? 0}</td>
              ))}
              <td>{totals[i]}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
