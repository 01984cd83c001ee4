// The workspace's usage (DESIGN §15): requests and input/output tokens per day over a chosen
// period, stacked by model or by API key, as SVG charts with their numbers in tables.
import { useEffect, useState } from "preact/hooks";
import { api, messageOf, type Schemas } from "../api/client";
import { StackedBars, type Series } from "./chart";
import type { Ctx } from "./context";
import { Refusal } from "./notice";

type Row = Schemas["UsageView"];
type GroupBy = "model" | "api_key";

/** The periods the selector offers, in days (the API allows at most 92). */
const PERIODS = [7, 30, 90] as const;
const DAY_MS = 24 * 3600 * 1000;

/** The UTC days of the last `days` days, oldest first, as `YYYY-MM-DD`. */
export function lastDays(days: number, now = new Date()): string[] {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return Array.from({ length: days }, (_, i) => new Date(today - (days - 1 - i) * DAY_MS).toISOString().slice(0, 10));
}

/** A group of rows: its key (model name or API key id) and the label shown for it. */
interface Group {
  key: string;
  label: string;
  requests: number;
  errors: number;
  input: number;
  output: number;
  cached: number;
  cost: number | null;
  byDay: Map<string, Row>;
}

/** Gathers rows grouped by (day, model|api_key) into one group per model or key. */
export function groupsOf(rows: Row[], by: GroupBy): Group[] {
  const groups = new Map<string, Group>();
  for (const r of rows) {
    const key = by === "model" ? (r.model ?? "") : (r.api_key_id ?? "");
    const label = by === "model" ? (r.model ?? "(unknown)") : (r.api_key_name ?? `deleted key ${key.slice(0, 8)}`);
    let g = groups.get(key);
    if (!g) {
      g = { key, label, requests: 0, errors: 0, input: 0, output: 0, cached: 0, cost: null, byDay: new Map() };
      groups.set(key, g);
    }
    g.requests += r.requests;
    g.errors += r.errors;
    g.input += r.input_tokens;
    g.output += r.output_tokens;
    g.cached += r.cached_input_tokens;
    if (r.cost_usd != null) g.cost = (g.cost ?? 0) + r.cost_usd;
    if (r.day) g.byDay.set(r.day, r);
  }
  const list = [...groups.values()].sort((a, b) => b.requests - a.requests || a.label.localeCompare(b.label));
  // Two keys may share a name: tell them apart by their id.
  const seen = new Map<string, number>();
  for (const g of list) seen.set(g.label, (seen.get(g.label) ?? 0) + 1);
  for (const g of list) if ((seen.get(g.label) ?? 0) > 1) g.label = `${g.label} (${g.key.slice(0, 8)})`;
  return list;
}

/** The usage screen. */
export function Usage({ ctx }: { ctx: Ctx }) {
  const ws = ctx.ws.id;
  const [days, setDays] = useState<number>(30);
  const [by, setBy] = useState<GroupBy>("model");
  // The rows with the period and grouping they were asked for, so nothing stale is drawn.
  const [report, setReport] = useState<{ days: number; by: GroupBy; rows: Row[] } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loads, setLoads] = useState(0);

  useEffect(() => {
    setReport(null);
    setError(null);
    const from = `${lastDays(days)[0]}T00:00:00Z`;
    // An answer that arrives after the period or grouping changed again is dropped.
    let current = true;
    void api
      .GET("/api/v1/workspaces/{ws}/usage", { params: { path: { ws }, query: { from, group_by: `day,${by}` } } })
      .then((answer) => {
        if (!current) return;
        // JSON was asked for (no `format=csv`), so the body is the report, not CSV text.
        const report = answer.data as Schemas["UsageReport"] | undefined;
        if (report) setReport({ days, by, rows: report.data });
        else setError(messageOf(answer.error));
      });
    return () => {
      current = false;
    };
  }, [ws, days, by, loads]);

  const rows = report?.rows ?? null;
  const shownBy = report?.by ?? by;
  const categories = lastDays(report?.days ?? days);
  const groups = report ? groupsOf(report.rows, report.by) : [];
  const seriesOf = (pick: (r: Row) => number): Series[] =>
    groups.map((g) => ({ name: g.label, values: categories.map((d) => { const r = g.byDay.get(d); return r ? pick(r) : 0; }) }));
  const groupLabel = shownBy === "model" ? "Model" : "API key";
  const priced = groups.some((g) => g.cost != null);

  return (
    <section class="card" aria-labelledby="usage-title">
      <h2 id="usage-title">Usage</h2>
      <div class="controls">
        <div class="field">
          <label for="usage-period">Period</label>
          <select id="usage-period" value={String(days)} onChange={(e) => setDays(Number((e.target as HTMLSelectElement).value))}>
            {PERIODS.map((p) => (
              <option key={p} value={String(p)}>
                Last {p} days
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="usage-group">Group by</label>
          <select id="usage-group" value={by} onChange={(e) => setBy((e.target as HTMLSelectElement).value as GroupBy)}>
            <option value="model">Model</option>
            <option value="api_key">API key</option>
          </select>
        </div>
        <div class="field submit">
          <button type="button" class="secondary" onClick={() => setLoads(loads + 1)}>
            Refresh
          </button>
        </div>
      </div>
      <p class="muted">UTC days; the gateway's counts reach this report within a few seconds.</p>
      <Refusal text={error} />
      {!rows && !error && <p>Loading usage…</p>}
      {rows && groups.length === 0 && <p data-empty="usage">No requests in this period.</p>}
      {rows && groups.length > 0 && (
        <>
          <table class="models usage-totals" data-group-by={shownBy} data-period={categories.length}>
            <caption class="caption">Totals over the last {categories.length} days by {shownBy === "model" ? "model" : "API key"}</caption>
            <thead>
              <tr>
                <th scope="col">{groupLabel}</th>
                <th scope="col" class="num">Requests</th>
                <th scope="col" class="num">Errors</th>
                <th scope="col" class="num">Input tokens</th>
                <th scope="col" class="num">Output tokens</th>
                <th scope="col" class="num">Cached input tokens</th>
                {priced && <th scope="col" class="num">Cost (USD)</th>}
              </tr>
            </thead>
            <tbody>
              {groups.map((g) => (
                <tr key={g.key} data-group={shownBy === "model" ? g.key : g.label}>
                  <th scope="row">{g.label}</th>
                  <td class="num" data-col="requests">{g.requests}</td>
                  <td class="num" data-col="errors">{g.errors}</td>
                  <td class="num" data-col="input_tokens">{g.input}</td>
                  <td class="num" data-col="output_tokens">{g.output}</td>
                  <td class="num" data-col="cached_input_tokens">{g.cached}</td>
                  {priced && <td class="num">{g.cost == null ? "—" : g.cost.toFixed(4)}</td>}
                </tr>
              ))}
            </tbody>
          </table>
          <StackedBars title="Requests" categories={categories} series={seriesOf((r) => r.requests)} seriesLabel={groupLabel} />
          <StackedBars title="Input tokens" categories={categories} series={seriesOf((r) => r.input_tokens)} seriesLabel={groupLabel} />
          <StackedBars title="Output tokens" categories={categories} series={seriesOf((r) => r.output_tokens)} seriesLabel={groupLabel} />
        </>
      )}
    </section>
  );
}
