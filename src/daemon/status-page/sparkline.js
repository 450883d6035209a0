/* global document */
// A sparkline in inline SVG: the model's output over time against its rule's thresholds. Drawn here in a few
// lines instead of shipping a charting library: nothing to vet, update or serve from a CDN on a plant network.

const SVG = 'http://www.w3.org/2000/svg';
const W = 400;
const H = 48;
const PAD = 3;

function el(name, attrs) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/**
 * points: [{t, v}] oldest first (t: epoch ms, v: number); thresholds: {raise, clear} (numbers or null);
 * skips: [t] of windows that were not evaluated; now: the right edge (the gateway's clock, epoch ms). The y range always holds both thresholds, so a value is read
 * against them at a glance.
 */
export function sparkline(points, thresholds, skips, spanMs, now) {
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' });
  const t0 = now - spanMs;
  const values = points.map((p) => p.v).filter((v) => Number.isFinite(v));
  for (const v of [thresholds.raise, thresholds.clear]) if (typeof v === 'number') values.push(v);
  if (values.length === 0) return svg;
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const margin = (hi - lo) * 0.08;
  lo -= margin; hi += margin;
  const x = (t) => PAD + ((t - t0) / spanMs) * (W - 2 * PAD);
  const y = (v) => H - PAD - ((v - lo) / (hi - lo)) * (H - 2 * PAD);
  for (const [key, cls] of [['raise', 'spark-raise'], ['clear', 'spark-clear']]) {
    const v = thresholds[key];
    if (typeof v === 'number') svg.append(el('line', { x1: 0, x2: W, y1: y(v), y2: y(v), class: cls }));
  }
  for (const t of skips) if (t >= t0) svg.append(el('rect', { x: x(t) - 1, y: H - PAD - 4, width: 2, height: 4, class: 'spark-skip' }));
  const d = points
    .filter((p) => p.t >= t0 && Number.isFinite(p.v))
    .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`)
    .join('');
  if (d) svg.append(el('path', { d, class: 'spark-line', 'vector-effect': 'non-scaling-stroke' }));
  return svg;
}
