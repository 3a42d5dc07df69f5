// app.mjs - the page at /: a client of the public API with the user's key
// (Authorization: Bearer), nothing more. Every string that comes from the
// server or from a file name is put into the page as text (textContent,
// attributes), never as HTML. Results are fetched from this origin and shown
// through blob: URLs.
//
// Uploads: each chosen file is its own POST /v1/remove, run in parallel (at
// most 2 at once, the server's default worker count, and never more than the
// per-minute window has left). A 429 or 503 makes that file wait the
// Retry-After the server sent (shown) and try again, up to 3 times.
import {
  encodeOptions, optionsJson, usageQuery, usageSeries, chartModel, formatBytes, formatMs,
  expiresIn, retryAfterSeconds, errorText, resultPath, concurrency, downloadName,
} from './lib.mjs';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const KEY_NAME = 'bgremover.api_key';

const state = { key: '', rate: {}, nextCursor: null, usage: null };

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text != null) e.textContent = text;
  return e;
}

function say(id, text, bad = false) {
  const n = $(id);
  n.textContent = text;
  n.classList.toggle('bad', bad);
}

// ---- the key ----------------------------------------------------------------

function loadKey() {
  const k = sessionStorage.getItem(KEY_NAME) || localStorage.getItem(KEY_NAME) || '';
  if (k) {
    $('api_key').value = k;
    $('remember').checked = !!localStorage.getItem(KEY_NAME);
  }
  return k;
}

function storeKey(k, remember) {
  sessionStorage.removeItem(KEY_NAME);
  localStorage.removeItem(KEY_NAME);
  if (!k) return;
  (remember ? localStorage : sessionStorage).setItem(KEY_NAME, k);
}

// ---- the API ----------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(errorText(status, body, retryAfter));
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

function noteRate(get) {
  const n = (h) => { const v = get(h); return v == null || v === '' ? null : Number(v); };
  if (n('X-RateLimit-Limit') == null) return;
  state.rate = {
    limit: n('X-RateLimit-Limit'), remaining: n('X-RateLimit-Remaining'),
    reset: n('X-RateLimit-Reset'), dayLimit: n('X-RateLimit-Daily-Limit'),
    dayRemaining: n('X-RateLimit-Daily-Remaining'),
  };
  renderRate();
}

async function api(path, { method = 'GET', body, json } = {}) {
  const headers = { Authorization: `Bearer ${state.key}` };
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  let r;
  try {
    r = await fetch(path, { method, body, headers, cache: 'no-store', credentials: 'omit' });
  } catch {
    throw new ApiError(0, null, null);
  }
  noteRate((h) => r.headers.get(h));
  let j = null;
  try { j = await r.json(); } catch { /* not JSON: the status says it */ }
  if (!r.ok || !j || j.success !== true)
    throw new ApiError(r.status, j, retryAfterSeconds(r.headers.get('Retry-After')));
  return j.data;
}

// POST /v1/remove with upload progress (fetch has none): resolves with the
// data object, rejects with an ApiError.
function postRemove(form, onUpload) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('POST', '/v1/remove');
    x.setRequestHeader('Authorization', `Bearer ${state.key}`);
    x.responseType = 'json';
    x.upload.onprogress = (ev) => { if (ev.lengthComputable) onUpload(ev.loaded / ev.total); };
    x.upload.onload = () => onUpload(1);
    x.onerror = () => reject(new ApiError(0, null, null));
    x.onload = () => {
      noteRate((h) => x.getResponseHeader(h));
      const j = x.response;
      if (x.status === 200 && j && j.success === true) resolve(j.data);
      else reject(new ApiError(x.status, j, retryAfterSeconds(x.getResponseHeader('Retry-After'))));
    };
    x.send(form);
  });
}

// ---- removing backgrounds ---------------------------------------------------

function currentOptions() {
  const transparent = $('bg_transparent').checked;
  return {
    output_format: $('output_format').value,
    output_quality: $('output_quality').value,
    bg_color: transparent ? '' : ($('bg_color').value || $('bg_picker').value),
    max_resolution: $('max_resolution').value,
    crop: $('crop').checked,
    crop_margin: $('crop_margin').value,
    output_type: $('output_type').value,
    refine: $('refine').value,
    decontaminate: $('decontaminate').checked,
  };
}

// One entry of the session's list: its progress bar, message and, once done,
// the result with a before/after slider.
function jobCard(title) {
  const bar = el('progress', { max: 100, value: 0, 'aria-label': `Progress of ${title}` });
  const msg = el('p', { class: 'msg', role: 'status' });
  const body = el('div', { class: 'job-body' });
  const li = el('li', { class: 'job' }, el('h3', { text: title }), bar, msg, body);
  $('jobs').prepend(li);
  return { li, bar, msg, body };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function runJob(job) {
  const { card } = job;
  const t0 = performance.now();
  for (let attempt = 0; ; attempt++) {
    try {
      card.msg.textContent = 'Uploading…';
      card.bar.value = 0;
      let data;
      if (job.file) {
        const form = new FormData();
        form.append('image_file', job.file, job.file.name);
        for (const [k, v] of encodeOptions(job.opts)) form.append(k, v);
        data = await postRemove(form, (f) => {
          card.bar.value = Math.round(f * 60);
          if (f >= 1) card.msg.textContent = 'Processing…';
        });
      } else {
        card.bar.removeAttribute('value'); // indeterminate: the server downloads it
        card.msg.textContent = 'Processing…';
        data = await api('/v1/remove', { method: 'POST', json: { image_url: job.url, ...optionsJson(job.opts) } });
      }
      card.bar.value = 80;
      await showResult(job, data, performance.now() - t0);
      return true;
    } catch (e) {
      const wait = e.retryAfter;
      if ((e.status === 429 || e.status === 503) && wait != null && wait <= 120 && attempt < 3) {
        card.li.classList.add('waiting');
        for (let s = wait; s > 0; s--) {
          card.msg.textContent = `${e.message} Waiting ${s} s…`;
          await sleep(1000);
        }
        card.li.classList.remove('waiting');
        continue;
      }
      card.bar.value = 100;
      card.li.classList.add('failed');
      card.msg.textContent = e.message;
      card.msg.classList.add('bad');
      return false;
    }
  }
}

async function showResult(job, data, elapsed) {
  const { card } = job;
  const path = resultPath(data.output_url);
  if (!path) throw new ApiError(500, { error: { message: 'The server returned an unexpected output_url' } });
  const r = await fetch(path, { cache: 'no-store', credentials: 'omit' });
  if (!r.ok) throw new ApiError(r.status, null, null);
  const blob = await r.blob();
  const url = URL.createObjectURL(blob);
  const ext = path.split('.').pop();
  const name = downloadName(job.file ? job.file.name : job.url, ext);

  const after = el('img', { src: url, alt: `Result: ${name}`, 'data-result': data.id, 'data-width': data.width,
    'data-height': data.height, 'data-size': blob.size, class: 'after' });
  const loaded = new Promise((res, rej) => { after.onload = res; after.onerror = () => rej(new ApiError(415, { error: { message: 'The result could not be displayed' } })); });
  const stage = el('div', { class: 'compare checker' });
  let slider = null;
  if (job.file && data.width && data.original_width === data.width && data.original_height === data.height) {
    // Before/after: the original under the result, the result clipped from
    // the slider's position (only when they share a frame: no crop/resize).
    const before = el('img', { src: URL.createObjectURL(job.file), alt: `Original: ${job.file.name}`, class: 'before' });
    stage.append(before, after);
    slider = el('input', { type: 'range', min: 0, max: 100, value: 50, 'aria-label': `Before/after: ${name}` });
    const clip = () => {
      // The original left of the handle, the cutout (over the checkerboard) right of it.
      before.style.clipPath = `inset(0 ${100 - slider.value}% 0 0)`;
      after.style.clipPath = `inset(0 0 0 ${slider.value}%)`;
    };
    slider.addEventListener('input', clip);
    clip();
  } else {
    stage.append(after);
  }
  const facts = el('p', { class: 'facts-line',
    text: `${data.width}×${data.height} ${data.format.toUpperCase()} · ${formatBytes(blob.size)} · ` +
      `processed in ${formatMs(data.processing_time_ms)} (${formatMs(elapsed)} in all) · ` +
      `${data.credits_used} credit${data.credits_used === 1 ? '' : 's'} · expires ${expiresIn(data.expires_at)}` });
  const dl = el('a', { href: url, download: name, class: 'button', text: 'Download' });
  card.body.append(stage);
  if (slider) card.body.append(el('label', { class: 'slider' }, 'Before ', slider, ' After'));
  card.body.append(facts, el('div', { class: 'row' }, dl, el('code', { text: data.id })));
  await loaded;
  card.bar.value = 100;
  card.msg.textContent = 'Done';
  card.li.classList.add('done');
}

async function submitRemove(ev) {
  ev.preventDefault();
  if (!state.key) { say('remove-status', 'Enter an API key first.', true); $('api_key').focus(); return; }
  const files = Array.from($('files').files || []).concat(state.dropped);
  const url = $('image_url').value.trim();
  if (!files.length && !url) { say('remove-status', 'Choose or drop an image, or give an image URL.', true); return; }
  const opts = currentOptions();
  const jobs = files.map((f) => ({ file: f, opts }));
  if (url) jobs.push({ url, opts });
  for (const j of jobs) j.card = jobCard(j.file ? j.file.name : j.url);
  state.dropped = [];
  $('files').value = '';
  $('chosen').textContent = '';
  say('remove-status', `${jobs.length} image${jobs.length > 1 ? 's' : ''} in progress…`);
  $('go').disabled = true;
  const t0 = performance.now();
  let next = 0, ok = 0;
  const worker = async () => {
    while (next < jobs.length) if (await runJob(jobs[next++])) ok++;
  };
  const n = Math.min(jobs.length, concurrency(state.rate.remaining));
  await Promise.all(Array.from({ length: n }, worker));
  $('go').disabled = false;
  say('remove-status', `${ok} of ${jobs.length} done in ${formatMs(performance.now() - t0)}` +
    (ok < jobs.length ? ` — ${jobs.length - ok} failed (see below)` : '.'), ok < jobs.length);
  refreshAll();
}

function chooseFiles(list) {
  state.dropped = Array.from(list).filter((f) => f.type.startsWith('image/') || f.type === '');
  const all = Array.from($('files').files || []).concat(state.dropped);
  $('chosen').textContent = all.length ? `${all.length} chosen: ${all.map((f) => f.name).join(', ')}` : '';
}

// ---- account, usage ----------------------------------------------------------

function fact(dl, term, value) {
  dl.append(el('dt', { text: term }), el('dd', { text: value }));
}

function renderRate() {
  const r = state.rate, n = $('rate-facts');
  if (!n) return;
  n.replaceChildren();
  if (r.limit != null) fact(n, 'Per minute', `${r.remaining} of ${r.limit} left` +
    (r.reset ? ` (window resets ${new Date(r.reset * 1000).toLocaleTimeString()})` : ''));
  fact(n, 'Per day', r.dayLimit != null ? `${r.dayRemaining} of ${r.dayLimit} left` : 'unlimited');
}

async function loadAccount() {
  const a = await api('/v1/account');
  const dl = $('account-facts');
  dl.replaceChildren();
  fact(dl, 'Account', `${a.email} (${a.id})`);
  fact(dl, 'Plan', a.plan);
  fact(dl, 'Credits', a.credits_total == null ? 'unlimited'
    : `${a.credits_remaining} of ${a.credits_total} left this month`);
  const u = a.usage_this_month || {};
  fact(dl, 'This month', `${u.images_processed} images, ${u.credits_used} credits, ${u.api_calls} API calls`);
  const rate = el('div', { class: 'rate' });
  rate.append(el('dl', { id: 'rate-facts', class: 'facts' }));
  dl.append(el('dt', { text: 'Limits' }), el('dd', {}, rate));
  renderRate();
  return a;
}

async function loadUsage() {
  const q = usageQuery($('granularity').value);
  const data = await api(`/v1/usage?${new URLSearchParams(q)}`);
  state.usage = data;
  drawChart();
  $('usage-total').textContent = `${data.period.start} to ${data.period.end}: ${data.total_requests} requests, ` +
    `${data.total_credits_used} credits, ${formatMs(data.avg_processing_time_ms)} per image on average`;
}

function drawChart() {
  const box = $('chart');
  const series = state.usage ? usageSeries(state.usage) : [];
  const width = Math.max(280, Math.round(box.clientWidth || 640)), height = 220;
  const m = chartModel(series, width, height);
  const total = series.reduce((a, s) => a + s.requests, 0);
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img',
    'data-chart': 'usage', 'data-buckets': series.length, 'data-total': total,
    'aria-label': `Usage chart: ${series.length} ${state.usage ? state.usage.granularity : ''} buckets, ${total} requests in all` });
  for (const t of m.ticks) {
    root.append(svg('line', { x1: m.left, x2: m.left + m.plotW, y1: t.y, y2: t.y, class: 'grid' }));
    root.append(svg('text', { x: m.left - 4, y: t.y + 4, 'text-anchor': 'end', class: 'tick' },
      Number.isInteger(t.value) ? t.value : t.value.toFixed(1)));
  }
  for (const b of m.bars) {
    const r = svg('rect', { x: b.x.toFixed(1), y: b.y.toFixed(1), width: b.w.toFixed(1), height: Math.max(0, b.h).toFixed(1), class: b.kind });
    r.append(svg('title', {}, `${series[b.bucket].label}: ${b.value} ${b.kind === 'req' ? 'requests' : 'credits'}`));
    root.append(r);
    if (b.value > 0 && (m.showValues || b.kind === 'req'))
      if (m.showValues || series.length <= 12)
        root.append(svg('text', { x: (b.x + b.w / 2).toFixed(1), y: (b.y - 3).toFixed(1), 'text-anchor': 'middle', class: `val ${b.kind}` }, b.value));
  }
  for (const l of m.labels) if (l.show) {
    // A label that would run past the right edge ends at the plot's edge instead.
    const end = l.x + 28 > width;
    root.append(svg('text', { x: (end ? m.left + m.plotW : l.x).toFixed(1), y: height - 10,
      'text-anchor': end ? 'end' : 'middle', class: 'tick' }, l.text));
  }
  box.replaceChildren(root);
  // Busy days printed under the chart too, so exact values never need hovering.
  const busy = series.filter((s) => s.requests > 0).slice(-6)
    .map((s) => `${s.label}: ${s.requests} req, ${s.credits} cr`).join(' · ');
  box.append(el('p', { class: 'hint', text: busy ? `Latest active: ${busy}` : 'No requests in this period.' }));
}

// ---- stored results ----------------------------------------------------------

function resultItem(img) {
  const path = resultPath(img.output_url);
  const del = el('button', { type: 'button', class: 'secondary', text: 'Delete', 'aria-label': `Delete ${img.id}` });
  const li = el('li', { 'data-image': img.id },
    el('div', { class: 'thumb checker' }, path ? el('img', { src: path, alt: `Result ${img.id}` }) : null),
    el('div', { class: 'meta' },
      el('code', { text: img.id }),
      el('span', { text: `${img.width}×${img.height} ${String(img.format).toUpperCase()} · ${formatBytes(img.file_size_bytes)}` }),
      el('span', { text: `created ${new Date(img.created_at).toLocaleString()}` }),
      el('span', { class: 'expiry', text: `expires ${expiresIn(img.expires_at)} (${new Date(img.expires_at).toLocaleString()})` }),
      img.batch_id ? el('span', { text: `batch ${img.batch_id}` }) : null),
    el('div', { class: 'actions' }, path ? el('a', { href: path, class: 'button secondary', download: `${img.id}.${path.split('.').pop()}`, text: 'Download' }) : null, del));
  del.addEventListener('click', async () => {
    del.disabled = true;
    try {
      await api(`/v1/images/${encodeURIComponent(img.id)}`, { method: 'DELETE' });
      li.remove();
      say('results-status', `Deleted ${img.id}.`);
    } catch (e) {
      del.disabled = false;
      say('results-status', e.message, true);
    }
  });
  return li;
}

async function loadResults(more = false) {
  const q = new URLSearchParams({ limit: '20' });
  if (more && state.nextCursor) q.set('cursor', state.nextCursor);
  const batch = $('batch_filter').value.trim();
  if (batch) q.set('batch_id', batch);
  const data = await api(`/v1/images?${q}`);
  const ul = $('stored');
  if (!more) ul.replaceChildren();
  for (const img of data.images) ul.append(resultItem(img));
  state.nextCursor = data.next_cursor;
  $('more-results').hidden = !data.has_more;
  say('results-status', ul.children.length ? `${ul.children.length} shown, newest first.`
    : batch ? 'No stored results in this batch.' : 'No stored results.');
}

async function refreshAll() {
  if (!state.key) return;
  const tasks = [
    loadAccount().then(() => say('account-status', ''), (e) => say('account-status', e.message, true)),
    loadUsage().catch((e) => say('account-status', e.message, true)),
    loadResults().catch((e) => say('results-status', e.message, true)),
  ];
  await Promise.all(tasks);
}

// ---- wiring --------------------------------------------------------------------

async function useKey(k, remember) {
  state.key = k;
  say('key-status', 'Checking the key…');
  try {
    const a = await loadAccount();
    storeKey(k, remember);
    say('key-status', `Using the key of ${a.email} (${a.plan} plan).`);
    document.body.classList.add('authed');
    await Promise.all([loadUsage().catch((e) => say('account-status', e.message, true)),
      loadResults().catch((e) => say('results-status', e.message, true))]);
  } catch (e) {
    state.key = '';
    document.body.classList.remove('authed');
    say('key-status', e.message, true);
  }
}

function init() {
  state.dropped = [];
  $('key-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    useKey($('api_key').value.trim(), $('remember').checked);
  });
  $('forget').addEventListener('click', () => {
    storeKey('', false);
    state.key = '';
    $('api_key').value = '';
    document.body.classList.remove('authed');
    say('key-status', 'Key forgotten.');
  });
  $('remove-form').addEventListener('submit', submitRemove);
  $('files').addEventListener('change', () => chooseFiles([]));
  const drop = $('drop');
  drop.addEventListener('dragover', (ev) => { ev.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    drop.classList.remove('over');
    chooseFiles(ev.dataTransfer.files);
  });
  drop.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); $('files').click(); }
  });
  $('output_quality').addEventListener('input', () => { $('quality_out').textContent = $('output_quality').value; });
  const syncBg = () => {
    const t = $('bg_transparent').checked;
    $('bg_picker').disabled = t;
    $('bg_color').disabled = t;
  };
  $('bg_transparent').addEventListener('change', syncBg);
  $('bg_picker').addEventListener('input', () => { $('bg_color').value = $('bg_picker').value; });
  $('bg_color').addEventListener('change', () => {
    const v = $('bg_color').value.trim().replace(/^#?/, '#');
    if (/^#[0-9a-fA-F]{6}$/.test(v)) $('bg_picker').value = v.toLowerCase();
  });
  $('crop').addEventListener('change', () => { $('crop_margin').disabled = !$('crop').checked; });
  const syncFormat = () => {
    const mask = $('output_type').value === 'mask', png = $('output_format').value === 'png';
    $('output_quality').disabled = mask || png;
    $('output_format').disabled = mask;
  };
  $('output_type').addEventListener('change', syncFormat);
  $('output_format').addEventListener('change', syncFormat);
  syncBg();
  syncFormat();
  $('granularity').addEventListener('change', () => loadUsage().catch((e) => say('account-status', e.message, true)));
  $('refresh-account').addEventListener('click', () => Promise.all([loadAccount(), loadUsage()]).then(
    () => say('account-status', 'Updated.'), (e) => say('account-status', e.message, true)));
  $('refresh-results').addEventListener('click', () => loadResults().catch((e) => say('results-status', e.message, true)));
  $('batch_filter').addEventListener('change', () => loadResults().catch((e) => say('results-status', e.message, true)));
  $('more-results').addEventListener('click', () => loadResults(true).catch((e) => say('results-status', e.message, true)));
  let resizeTimer = 0;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(drawChart, 150); });
  drawChart();
  const k = loadKey();
  if (k) useKey(k, $('remember').checked);
}

init();
