// Annotation effort per round, beside the label-efficiency curve, from GET /projects/{p}/metrics/effort: per round,
// the median active seconds and median counted actions an image cost, from a pseudo-label against from scratch
// (and corrections of a human label, when there are any), as a small chart of median actions and a table.

import { api } from '../api.js';
import { h } from '../ui.js';

const SVG = 'http://www.w3.org/2000/svg';
const SERIES = [
  { key: 'from_pseudo_label', label: 'from a pseudo-label', color: '#2a7ab5' },
  { key: 'from_scratch', label: 'from scratch', color: '#b5482a' },
  { key: 'from_human_label', label: 'from a human label', color: '#6b6b6b' },
];

function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

const number = (value, digits = 0) => (value == null ? '—' : value.toFixed(digits));
const seconds = (value) => (value == null ? '—' : `${Math.round(value)} s`);
const share = (value) => (value == null ? '—' : `${(value * 100).toFixed(1)} %`);
const roundName = (row) => (row.after_round === 0 ? 'before round 1' : `after round ${row.after_round}`);

/** Median actions per image against rounds, one line per start kind that has images. */
function effortChart(rounds, series) {
  const width = 760;
  const height = 200;
  const margin = { left: 48, right: 150, top: 12, bottom: 32 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'median actions per image by round', id: 'effort-svg', style: `max-width: ${width}px` });
  const values = rounds.flatMap((r) => series.map((s) => r[s.key].median_actions)).filter((v) => v != null);
  const yMax = Math.ceil(Math.max(4, ...values) / 5 + 0.05) * 5; // a multiple of 5 above the highest point: whole ticks
  const step = rounds.length > 1 ? plotW / (rounds.length - 1) : 0;
  const x = (i) => margin.left + (rounds.length > 1 ? i * step : plotW / 2);
  const y = (v) => margin.top + (1 - v / yMax) * plotH;
  chart.append(svg('line', { x1: margin.left, x2: margin.left + plotW, y1: margin.top + plotH, y2: margin.top + plotH, stroke: '#999' }));
  chart.append(svg('line', { x1: margin.left, x2: margin.left, y1: margin.top, y2: margin.top + plotH, stroke: '#999' }));
  for (let i = 0; i <= 5; i += 1) {
    const value = (yMax * i) / 5;
    chart.append(svg('line', { x1: margin.left, x2: margin.left + plotW, y1: y(value), y2: y(value), stroke: '#eee' }));
    chart.append(svg('text', { x: margin.left - 6, y: y(value) + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#666' }, String(value)));
  }
  rounds.forEach((row, i) => {
    chart.append(svg('text', { x: x(i), y: height - margin.bottom + 16, 'text-anchor': 'middle', 'font-size': 11, fill: '#666' }, row.after_round === 0 ? 'seed' : `r${row.after_round}`));
  });
  chart.append(svg('text', { x: 12, y: margin.top + plotH / 2, 'text-anchor': 'middle', 'font-size': 12, transform: `rotate(-90 12 ${margin.top + plotH / 2})` }, 'actions / image'));
  series.forEach((s, k) => {
    const points = rounds.map((row, i) => [i, row[s.key].median_actions]).filter(([, v]) => v != null);
    if (points.length > 1) chart.append(svg('polyline', { points: points.map(([i, v]) => `${x(i)},${y(v)}`).join(' '), fill: 'none', stroke: s.color, 'stroke-width': 2 }));
    for (const [i, v] of points) {
      const dot = svg('circle', { cx: x(i), cy: y(v), r: 4, fill: s.color, class: 'effort-point', 'data-series': s.key, 'data-round': rounds[i].after_round });
      dot.append(svg('title', {}, `${roundName(rounds[i])}, ${s.label}: median ${number(v, 1)} actions`));
      chart.append(dot);
    }
    chart.append(svg('rect', { x: width - margin.right + 12, y: margin.top + 6 + k * 18, width: 10, height: 10, fill: s.color }));
    chart.append(svg('text', { x: width - margin.right + 28, y: margin.top + 15 + k * 18, 'font-size': 11 }, s.label));
  });
  return chart;
}

function effortTable(rounds, series) {
  const head = h('tr', {}, h('th', {}, 'Labels saved'), h('th', { class: 'num' }, 'Labeled'),
    series.flatMap((s) => [
      h('th', { class: 'num', title: `images labelled ${s.label}` }, `${s.label}: images`),
      h('th', { class: 'num' }, 'median time'),
      h('th', { class: 'num' }, 'median actions'),
      s.key === 'from_scratch' ? null : h('th', { class: 'num', title: 'median share of the starting label kept (agreement of the first save with it)' }, 'kept'),
    ]));
  const rows = rounds.map((row) => h('tr', { dataset: { round: row.after_round } },
    h('td', {}, roundName(row)),
    h('td', { class: 'num' }, row.labeled_count ?? '—'),
    series.flatMap((s) => {
      const f = row[s.key];
      return [
        h('td', { class: 'num', dataset: { figure: `${s.key}-images` } }, f.images),
        h('td', { class: 'num', dataset: { figure: `${s.key}-seconds` } }, seconds(f.median_active_seconds)),
        h('td', { class: 'num', dataset: { figure: `${s.key}-actions` } }, number(f.median_actions, 1)),
        s.key === 'from_scratch' ? null : h('td', { class: 'num', dataset: { figure: `${s.key}-kept` } }, share(f.median_base_agreement)),
      ];
    })));
  return h('table', { class: 'list', id: 'effort-table' }, h('thead', {}, head), h('tbody', {}, rows));
}

/** Draw the effort panel (`panel`: its section element) for project `projectId`; errors are thrown to the caller. */
export async function renderEffort(panel, projectId) {
  const effort = await api(`/projects/${projectId}/metrics/effort`, { what: 'loading the annotation effort' });
  const { rounds } = effort;
  const heading = h('h2', { id: 'effort-heading' }, 'Effort per image');
  if (!rounds.length) {
    panel.replaceChildren(heading, h('p', { class: 'muted', id: 'no-effort' }, 'No effort recorded yet: the annotation view records time and actions with each save.'));
    panel.dataset.rounds = '0';
    return;
  }
  // "From a human label" (corrections of someone's label) only when there are any, to keep the table readable.
  const series = SERIES.filter((s) => s.key !== 'from_human_label' || rounds.some((r) => r.from_human_label.images > 0));
  panel.replaceChildren(
    heading,
    h('p', { class: 'muted' }, 'Median active seconds and counted actions (SAM clicks and boxes, commits, strokes, fills, polygons, undo/redo) per image, from real saves, grouped by the round after which the label was saved.'),
    effortChart(rounds, series),
    effortTable(rounds, series),
  );
  panel.dataset.rounds = String(rounds.length);
}
