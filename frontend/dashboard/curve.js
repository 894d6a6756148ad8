// The label-efficiency curve drawn as SVG from GET /projects/{p}/metrics: val mIoU against labeled images,
// one point per finished round; hovering (or focusing) a point shows its per-class IoU.

const SVG = 'http://www.w3.org/2000/svg';

function el(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function percent(value) {
  return value == null ? 'n/a' : `${(value * 100).toFixed(1)}`;
}

/** Draw `points` (CurvePoint[]) into `container`; returns the SVG element. */
export function renderCurve(container, points) {
  const width = 760;
  const height = 260;
  const margin = { left: 48, right: 16, top: 14, bottom: 36 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'label-efficiency curve', id: 'curve-svg' });
  const sorted = [...points].filter((p) => p.miou != null).sort((a, b) => a.labeled_count - b.labeled_count || a.round_index - b.round_index);
  const xMax = niceMax(Math.max(5, ...sorted.map((p) => p.labeled_count))); // at least 5: whole-number ticks
  const x = (count) => margin.left + (count / xMax) * plotW;
  const y = (miou) => margin.top + (1 - miou) * plotH;

  for (let i = 0; i <= 5; i += 1) {
    const value = i / 5;
    svg.append(el('line', { x1: margin.left, x2: width - margin.right, y1: y(value), y2: y(value), stroke: '#eee' }));
    svg.append(el('text', { x: margin.left - 6, y: y(value) + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#666' }, `${value * 100}`));
  }
  for (let i = 0; i <= 5; i += 1) {
    const value = (xMax * i) / 5;
    svg.append(el('text', { x: x(value), y: height - margin.bottom + 16, 'text-anchor': 'middle', 'font-size': 11, fill: '#666' }, `${Math.round(value)}`));
  }
  svg.append(el('line', { x1: margin.left, x2: margin.left, y1: margin.top, y2: margin.top + plotH, stroke: '#999' }));
  svg.append(el('line', { x1: margin.left, x2: width - margin.right, y1: margin.top + plotH, y2: margin.top + plotH, stroke: '#999' }));
  svg.append(el('text', { x: margin.left + plotW / 2, y: height - 4, 'text-anchor': 'middle', 'font-size': 12 }, 'labeled images'));
  svg.append(el('text', { x: 12, y: margin.top + plotH / 2, 'text-anchor': 'middle', 'font-size': 12, transform: `rotate(-90 12 ${margin.top + plotH / 2})` }, 'val mIoU (%)'));

  if (!sorted.length) {
    svg.append(el('text', { x: margin.left + plotW / 2, y: margin.top + plotH / 2, 'text-anchor': 'middle', fill: '#888' }, 'No finished round yet: start one to see the curve.'));
  } else {
    svg.append(el('polyline', { points: sorted.map((p) => `${x(p.labeled_count)},${y(p.miou)}`).join(' '), fill: 'none', stroke: '#b5482a', 'stroke-width': 2 }));
  }
  const tip = el('g', { class: 'tooltip', visibility: 'hidden', 'pointer-events': 'none' });
  const tipBox = el('rect', { fill: '#fff', stroke: '#888', rx: 4 });
  const tipText = el('text', { 'font-size': 11 });
  tip.append(tipBox, tipText);

  function show(point, cx, cy) {
    const lines = [
      `round ${point.round_index} · ${point.method} / ${point.strategy}`,
      `${point.labeled_count} labeled · mIoU ${percent(point.miou)}%`,
      ...Object.entries(point.per_class_iou).map(([name, iou]) => `${name}: ${percent(iou)}`),
    ];
    tipText.replaceChildren(...lines.map((line, i) => el('tspan', { x: 8, dy: i === 0 ? 14 : 14 }, line)));
    const boxW = 12 + 6.2 * Math.max(...lines.map((l) => l.length));
    const boxH = 8 + 14 * lines.length;
    tipBox.setAttribute('width', boxW);
    tipBox.setAttribute('height', boxH);
    const left = Math.min(cx + 10, width - boxW - 2);
    const top = Math.max(2, Math.min(cy - boxH / 2, height - boxH - 2));
    tip.setAttribute('transform', `translate(${left} ${top})`);
    tip.setAttribute('visibility', 'visible');
  }
  for (const point of sorted) {
    const cx = x(point.labeled_count);
    const cy = y(point.miou);
    const dot = el('circle', { cx, cy, r: 5, fill: '#b5482a', stroke: '#fff', 'stroke-width': 2, class: 'point', tabindex: 0, 'data-round': point.round_index });
    dot.append(el('title', {}, `round ${point.round_index}: ${point.labeled_count} labeled, mIoU ${percent(point.miou)}%`));
    dot.addEventListener('mouseenter', () => show(point, cx, cy));
    dot.addEventListener('focus', () => show(point, cx, cy));
    dot.addEventListener('mouseleave', () => tip.setAttribute('visibility', 'hidden'));
    dot.addEventListener('blur', () => tip.setAttribute('visibility', 'hidden'));
    svg.append(dot);
  }
  svg.append(tip);
  container.replaceChildren(svg);
  return svg;
}

/** The per-class IoU of every point as a table (rows: rounds; columns: classes). */
export function renderIouTable(table, points) {
  const names = [...new Set(points.flatMap((p) => Object.keys(p.per_class_iou)))];
  const head = document.createElement('thead');
  const headRow = document.createElement('tr');
  for (const label of ['Round', 'Labeled', 'Method / strategy', 'mIoU', ...names]) {
    const th = document.createElement('th');
    th.textContent = label;
    if (label !== 'Method / strategy') th.className = 'num';
    headRow.append(th);
  }
  head.append(headRow);
  const body = document.createElement('tbody');
  for (const p of [...points].sort((a, b) => a.round_index - b.round_index)) {
    const row = document.createElement('tr');
    const cells = [p.round_index, p.labeled_count, `${p.method} / ${p.strategy}`, percent(p.miou), ...names.map((n) => percent(p.per_class_iou[n]))];
    cells.forEach((value, i) => {
      const td = document.createElement('td');
      td.textContent = String(value);
      if (i !== 2) td.className = 'num';
      row.append(td);
    });
    body.append(row);
  }
  table.replaceChildren(head, body);
}
