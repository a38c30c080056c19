// A space's audience over time, drawn as SVG of our own (no charting library): listeners
// as a line, reactions per interval as bars under it, and below them a strip of arrivals
// (bars up) and departures (bars down) per interval; time along the replay's clock.
// Choosing a point on the chart plays the replay from there.

import { api } from './api.js';
import { number, t } from './i18n.js';

const NS = 'http://www.w3.org/2000/svg';
const WIDTH = 600;
const HEIGHT = 230;
const PAD = { left: 36, right: 8, top: 8, bottom: 22 };
const FLOW = 60; // the arrivals and departures strip, under the listeners' area
const GAP = 14;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const hours = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(hours ? 2 : 1, '0');
  return `${hours ? `${hours}:` : ''}${mm}:${String(s % 60).padStart(2, '0')}`;
}

/** Points on the replay's clock: seconds since `startedAt`, listeners, and the reactions,
 * arrivals and departures since the sample before (the API gives running totals). */
export function audiencePoints(samples, startedAt) {
  const since = (i, key) => (i === 0 ? samples[0][key] ?? 0 : Math.max(0, (samples[i][key] ?? 0) - (samples[i - 1][key] ?? 0)));
  return samples.map((sample, i) => ({
    t: Math.max(0, sample.at - startedAt),
    listeners: sample.listeners,
    reactions: since(i, 'reactions'),
    joins: since(i, 'joins'),
    leaves: since(i, 'leaves'),
  }));
}

/** Arrivals and departures over the whole space. */
export function audienceFlow(points) {
  return points.reduce((sum, p) => ({ joins: sum.joins + p.joins, leaves: sum.leaves + p.leaves }), { joins: 0, leaves: 0 });
}

/** The chart as an <svg>, or null with fewer than two samples (nothing to draw a line of). */
export function audienceChart(points, { onSeek } = {}) {
  if (points.length < 2) return null;
  const end = points[points.length - 1].t || 1;
  const top = Math.max(1, ...points.map((p) => p.listeners));
  const most = Math.max(1, ...points.map((p) => p.reactions));
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom - FLOW - GAP;
  const x = (t) => PAD.left + (t / end) * innerW;
  const y = (n) => PAD.top + innerH - (n / top) * innerH;
  const chart = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'audience-chart', role: 'img' });
  chart.append(svg('title', {}, t('listen.audience.title', { top })));
  const barW = Math.max(1, innerW / points.length - 1);
  for (const p of points) {
    if (!p.reactions) continue;
    const h = (p.reactions / most) * innerH * 0.3;
    chart.append(svg('rect', { class: 'reactions', x: x(p.t) - barW / 2, y: PAD.top + innerH - h, width: barW, height: h }));
  }
  chart.append(svg('polyline', { class: 'listeners', points: points.map((p) => `${x(p.t)},${y(p.listeners)}`).join(' ') }));
  chart.append(svg('line', { class: 'axis', x1: PAD.left, y1: PAD.top + innerH, x2: WIDTH - PAD.right, y2: PAD.top + innerH }));
  chart.append(svg('text', { class: 'tick', x: PAD.left - 4, y: PAD.top + 10, 'text-anchor': 'end' }, number(top)));
  chart.append(svg('text', { class: 'tick', x: PAD.left - 4, y: PAD.top + innerH, 'text-anchor': 'end' }, number(0)));
  drawFlow(chart, points, x, barW, PAD.top + innerH + GAP);
  chart.append(svg('text', { class: 'tick', x: PAD.left, y: HEIGHT - 6 }, '0:00'));
  chart.append(svg('text', { class: 'tick', x: WIDTH - PAD.right, y: HEIGHT - 6, 'text-anchor': 'end' }, clock(end)));
  if (onSeek) {
    chart.addEventListener('click', (event) => {
      const box = chart.getBoundingClientRect();
      const at = ((event.clientX - box.left) / box.width) * WIDTH;
      onSeek(Math.max(0, Math.min(end, ((at - PAD.left) / innerW) * end)));
    });
  }
  return chart;
}

/** Arrivals as bars up from the strip's middle line, departures as bars down. */
function drawFlow(chart, points, x, barW, top) {
  const mid = top + FLOW / 2;
  const most = Math.max(1, ...points.map((p) => Math.max(p.joins, p.leaves)));
  const scale = (n) => (n / most) * (FLOW / 2 - 2);
  for (const p of points) {
    if (p.joins) chart.append(svg('rect', { class: 'joins', x: x(p.t) - barW / 2, y: mid - scale(p.joins), width: barW, height: scale(p.joins) }));
    if (p.leaves) chart.append(svg('rect', { class: 'leaves', x: x(p.t) - barW / 2, y: mid, width: barW, height: scale(p.leaves) }));
  }
  chart.append(svg('line', { class: 'axis', x1: PAD.left, y1: mid, x2: WIDTH - PAD.right, y2: mid }));
  chart.append(svg('text', { class: 'tick', x: PAD.left - 4, y: mid - 4, 'text-anchor': 'end' }, t('listen.audience.arrivals_tick')));
  chart.append(svg('text', { class: 'tick', x: PAD.left - 4, y: mid + 12, 'text-anchor': 'end' }, t('listen.audience.departures_tick')));
}

/** A space's audience as a page shows it: the peak, the chart (null with fewer than two
 * samples) and the arrivals and departures; null when the curve cannot be read (it is
 * extra: the page works without it). */
export async function loadAudience(spaceId, startedAt, { retries = 0, onSeek } = {}) {
  let curve;
  try {
    curve = await api.get(`/spaces/${encodeURIComponent(spaceId)}/audience`, { retries });
  } catch {
    return null;
  }
  const points = audiencePoints(curve.samples, startedAt || 0);
  return {
    peak: curve.peak_listeners,
    chart: audienceChart(points, { onSeek }),
    flow: audienceFlow(points),
  };
}
