// A space's audience over time, drawn as SVG of our own (no charting library): listeners
// as a line, reactions per interval as bars under it, time along the replay's clock.
// Choosing a point on the chart plays the replay from there.

const NS = 'http://www.w3.org/2000/svg';
const WIDTH = 600;
const HEIGHT = 160;
const PAD = { left: 36, right: 8, top: 8, bottom: 22 };

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

/** Points on the replay's clock: seconds since `startedAt`, listeners, reactions since the
 * sample before. */
export function audiencePoints(samples, startedAt) {
  return samples.map((sample, i) => ({
    t: Math.max(0, sample.at - startedAt),
    listeners: sample.listeners,
    reactions: i === 0 ? sample.reactions : Math.max(0, sample.reactions - samples[i - 1].reactions),
  }));
}

/** The chart as an <svg>, or null with fewer than two samples (nothing to draw a line of). */
export function audienceChart(points, { onSeek } = {}) {
  if (points.length < 2) return null;
  const end = points[points.length - 1].t || 1;
  const top = Math.max(1, ...points.map((p) => p.listeners));
  const most = Math.max(1, ...points.map((p) => p.reactions));
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const x = (t) => PAD.left + (t / end) * innerW;
  const y = (n) => PAD.top + innerH - (n / top) * innerH;
  const chart = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'audience-chart', role: 'img' });
  chart.append(svg('title', {}, `Listeners over time: at most ${top}`));
  const barW = Math.max(1, innerW / points.length - 1);
  for (const p of points) {
    if (!p.reactions) continue;
    const h = (p.reactions / most) * innerH * 0.3;
    chart.append(svg('rect', { class: 'reactions', x: x(p.t) - barW / 2, y: PAD.top + innerH - h, width: barW, height: h }));
  }
  chart.append(svg('polyline', { class: 'listeners', points: points.map((p) => `${x(p.t)},${y(p.listeners)}`).join(' ') }));
  chart.append(svg('line', { class: 'axis', x1: PAD.left, y1: PAD.top + innerH, x2: WIDTH - PAD.right, y2: PAD.top + innerH }));
  chart.append(svg('text', { class: 'tick', x: PAD.left - 4, y: PAD.top + 10, 'text-anchor': 'end' }, String(top)));
  chart.append(svg('text', { class: 'tick', x: PAD.left - 4, y: PAD.top + innerH, 'text-anchor': 'end' }, '0'));
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
