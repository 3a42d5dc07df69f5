// lib.mjs - what the page computes, without the DOM: request options, usage
// periods and chart geometry, error messages, formatting. Pure functions,
// unit-tested under Node (tests/browser/lib.test.mjs).

export const DEFAULTS = Object.freeze({
  output_format: 'png', output_quality: 90, bg_color: '', max_resolution: 'original',
  crop: false, crop_margin: '', output_type: 'cutout', refine: 'fast', decontaminate: true,
});

// The form fields of one POST /v1/remove for the chosen options: only what
// differs from the server's defaults, and nothing that does not apply
// (quality for PNG, a margin without crop, format for a mask). Values are
// strings, as multipart text fields are. Validation is the server's: its
// message is shown as it stands.
export function encodeOptions(o) {
  const out = [];
  const mask = o.output_type === 'mask';
  if (mask) out.push(['output_type', 'mask']);
  if (!mask && o.output_format && o.output_format !== 'png') out.push(['output_format', o.output_format]);
  if (!mask && o.output_format && o.output_format !== 'png' && Number(o.output_quality) !== 90)
    out.push(['output_quality', String(Math.round(Number(o.output_quality)))]);
  const bg = (o.bg_color || '').trim();
  if (!mask && bg) out.push(['bg_color', bg]);
  if (o.max_resolution && o.max_resolution !== 'original') out.push(['max_resolution', o.max_resolution]);
  if (o.crop) {
    out.push(['crop', 'true']);
    const m = (o.crop_margin || '').trim();
    if (m) out.push(['crop_margin', m]);
  }
  if (o.refine && o.refine !== 'fast') out.push(['refine', o.refine]);
  if (!mask && o.decontaminate === false) out.push(['decontaminate', 'false']);
  return out;
}

// The same options as a JSON body (for image_url): booleans and integers
// typed as the API wants them in JSON.
export function optionsJson(o) {
  const out = {};
  for (const [k, v] of encodeOptions(o)) {
    if (k === 'crop' || k === 'decontaminate') out[k] = v === 'true';
    else if (k === 'output_quality') out[k] = Number(v);
    else out[k] = v;
  }
  return out;
}

const pad = (n) => String(n).padStart(2, '0');
export function isoDay(d) {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

// The GET /v1/usage query of a chart: the last 30 days, the last 12 ISO
// weeks (from a Monday) or the last 12 calendar months (from the 1st), all
// ending today (UTC).
export function usageQuery(granularity, now = new Date()) {
  const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  let start;
  if (granularity === 'weekly') {
    const dow = (end.getUTCDay() + 6) % 7; // Monday = 0
    start = new Date(end.getTime() - (dow + 7 * 11) * 86400000);
  } else if (granularity === 'monthly') {
    start = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - 11, 1));
  } else {
    granularity = 'daily';
    start = new Date(end.getTime() - 29 * 86400000);
  }
  return { granularity, start_date: isoDay(start), end_date: isoDay(end) };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// The buckets of a /v1/usage response, oldest first, each with a short
// label ("Dec 5", "wk Dec 1", "Dec 2026").
export function usageSeries(data) {
  const g = data.granularity || 'daily';
  const list = Array.isArray(data[g]) ? data[g].slice() : [];
  list.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
  return list.map((b) => {
    const [y, m, d] = b.date.split('-').map(Number);
    const label = g === 'monthly' ? `${MONTHS[m - 1]} ${y}` : `${MONTHS[m - 1]} ${d}`;
    return { date: b.date, label, requests: b.requests | 0, credits: Number(b.credits) || 0 };
  });
}

// A "nice" axis maximum at or above v (1, 2, 5 x 10^n), at least 1.
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const f of [1, 2, 5, 10]) if (f * p >= v) return f * p;
  return 10 * p;
}

// Geometry of the usage bar chart in a width x height box: two bars per
// bucket (requests, credits), the axis maximum, which buckets get an x label
// (at most one per 56 px) and whether values fit above the bars.
export function chartModel(series, width, height) {
  const left = 36, right = 8, top = 18, bottom = 28;
  const plotW = Math.max(10, width - left - right), plotH = Math.max(10, height - top - bottom);
  const max = niceMax(Math.max(0, ...series.map((s) => Math.max(s.requests, s.credits))));
  const slot = series.length ? plotW / series.length : plotW;
  const barW = Math.max(1, Math.min(24, (slot - 4) / 2));
  const every = Math.max(1, Math.ceil(56 / slot));
  const showValues = slot >= 22;
  const y = (v) => top + plotH - (v / max) * plotH;
  const bars = [];
  series.forEach((s, i) => {
    const x0 = left + i * slot + (slot - 2 * barW) / 2;
    for (const [k, kind] of [['requests', 'req'], ['credits', 'cred']]) {
      const v = s[k], x = kind === 'req' ? x0 : x0 + barW;
      bars.push({ kind, x, y: y(v), w: barW, h: top + plotH - y(v), value: v, bucket: i });
    }
  });
  const labels = series.map((s, i) => ({ text: s.label, x: left + i * slot + slot / 2,
    show: (series.length - 1 - i) % every === 0 }));
  return { left, top, plotW, plotH, max, slot, barW, bars, labels, showValues,
    ticks: [0, max / 2, max].map((v) => ({ value: v, y: y(v) })) };
}

export function formatBytes(n) {
  if (!(n >= 0)) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

export function formatMs(ms) {
  if (!(ms >= 0)) return '';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

// "in 23 h", "in 6 d", "in 12 min", "expired".
export function expiresIn(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return 'never';
  const s = (t - now) / 1000;
  if (s <= 0) return 'expired';
  if (s < 3600) return `in ${Math.max(1, Math.round(s / 60))} min`;
  if (s < 2 * 86400) return `in ${Math.round(s / 3600)} h`;
  return `in ${Math.round(s / 86400)} d`;
}

// Seconds of a Retry-After header (delta-seconds or an HTTP date), or null.
export function retryAfterSeconds(value, now = Date.now()) {
  if (value == null || value === '') return null;
  if (/^\d+$/.test(value)) return Number(value);
  const t = Date.parse(value);
  return Number.isFinite(t) ? Math.max(0, Math.ceil((t - now) / 1000)) : null;
}

// The message shown for a failed request: the API's own message (its
// envelope's error.message), prefixed with what the status means to the
// user; for 429 and 503 with the wait the server asked for.
export function errorText(status, body, retryAfter) {
  const apiMsg = body && body.error && typeof body.error.message === 'string' ? body.error.message : '';
  const code = body && body.error && body.error.code ? body.error.code : '';
  const wait = retryAfter != null ? ` Retry in ${retryAfter} s.` : '';
  switch (status) {
    case 0: return 'Network error: the server could not be reached.';
    case 401: return apiMsg || 'The API key was refused.';
    case 402: return `Out of credits: ${apiMsg || 'this month\'s credits are used.'}`;
    case 413: return `Too large: ${apiMsg || 'the file exceeds the plan\'s maximum size.'}`;
    case 415: return `Unsupported: ${apiMsg || 'not an image the server can read.'}`;
    case 429: return `Rate limited: ${apiMsg || 'too many requests.'}${wait}`;
    case 503: return `Server busy: ${apiMsg || 'try again shortly.'}${wait}`;
    default:
      if (apiMsg) return code ? `${apiMsg} (${code})` : apiMsg;
      return `HTTP ${status}`;
  }
}

// The same-origin path of a result's output_url (/v1/results/img_....ext):
// the page fetches results from its own origin whatever public_url says,
// and never follows a URL of another shape.
export function resultPath(outputUrl) {
  let p;
  try { p = new URL(outputUrl, 'http://x/').pathname; } catch { return null; }
  return /^\/v1\/results\/img_[A-Za-z0-9]+\.(png|webp|jpg)$/.test(p) ? p : null;
}

// How many uploads to run at once: at most `max`, and no more than the
// requests the per-minute window has left (from X-RateLimit-Remaining;
// null = unknown), but always at least one (a 429 then says how long).
export function concurrency(remaining, max = 2) {
  if (remaining == null || !Number.isFinite(remaining)) return max;
  return Math.max(1, Math.min(max, remaining));
}

// A download name for a result: the upload's base name + "-nobg" + ext.
export function downloadName(source, ext) {
  const base = String(source || 'image').split(/[\\/]/).pop().replace(/\.[^.]*$/, '') || 'image';
  return `${base.replace(/[^\w.-]+/g, '_').slice(0, 80)}-nobg.${ext}`;
}
