// page.test.mjs - the web page at / in headless Chromium, against the real
// server (run.py starts it and passes its address, a key and the photos).
//
// Prints one JSON line per check ({"check","ok","detail"}) and, last, a
// {"metrics":...} line; run.py prints and counts them. Every check fails
// loudly: a browser that cannot start is a failure, not a skip.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} not set`); return v; };
const BASE = env('BGR_WEB_BASE');           // http://127.0.0.1:PORT
const KEY = env('BGR_WEB_KEY');
const PHOTOS = env('BGR_WEB_PHOTOS').split(path.delimiter);
const OUT = env('BGR_WEB_OUT');             // screenshots and downloads
const CHROMIUM = process.env.BGR_CHROMIUM || '/usr/bin/chromium';
const require = createRequire(path.join(env('BGR_WEB_NODE_MODULES'), 'x.js'));
const puppeteer = require('puppeteer-core');

const results = [];
function check(name, ok, detail = '') {
  results.push({ check: name, ok: !!ok, detail: String(detail).slice(0, 400) });
  console.log(JSON.stringify(results[results.length - 1]));
}

// PNG header: width, height, bit depth, colour type (6 = RGBA).
function pngInfo(buf) {
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (buf.length < 33 || !buf.subarray(0, 8).equals(sig)) return null;
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20), depth: buf[24], colorType: buf[25] };
}

async function api(method, p, body) {
  const r = await fetch(BASE + p, { method, headers: { Authorization: `Bearer ${KEY}` }, body });
  return { status: r.status, json: await r.json().catch(() => null) };
}

async function waitForFile(dir, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const f = fs.readdirSync(dir).filter((n) => !n.endsWith('.crdownload'));
    if (f.length) return path.join(dir, f[0]);
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}

const origin = new URL(BASE).origin;
const offOrigin = [], consoleErrors = [], pageErrors = [];
let allowedConsole = []; // regexps of console errors a step expects (the bad key's 401)
const metrics = {};

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bgr-chromium-'));
const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true,
  userDataDir,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  // CSP violations, as the page itself sees them (injected over CDP, which
  // the page's CSP does not govern).
  await page.evaluateOnNewDocument(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const t = m.text();
    if (allowedConsole.some((re) => re.test(t))) return;
    consoleErrors.push(t);
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  let transfer = 0;
  page.on('request', (rq) => {
    const u = rq.url();
    if (u.startsWith('blob:') || u.startsWith('data:')) return;
    if (new URL(u).origin !== origin) offOrigin.push(u);
  });
  page.on('response', async (rs) => {
    const u = new URL(rs.url());
    if (u.origin === origin && (u.pathname === '/' || u.pathname.startsWith('/web/')) && !metrics.firstLoadDone)
      transfer += Number(rs.headers()['content-length'] || 0);
  });

  // ---- load -------------------------------------------------------------------
  const resp = await page.goto(`${BASE}/`, { waitUntil: 'networkidle0' });
  metrics.firstLoadDone = true;
  metrics.page_transfer_bytes = transfer;
  const h = resp.headers();
  check('headers', /default-src 'self'/.test(h['content-security-policy'] || '') &&
    /frame-ancestors 'none'/.test(h['content-security-policy']) && h['x-content-type-options'] === 'nosniff' &&
    h['referrer-policy'] === 'no-referrer', JSON.stringify(h));
  check('loads', await page.$('input[name=api_key]') && await page.$('input[type=file][multiple]'));

  // Every control and image has a label.
  const unlabeled = await page.evaluate(() => {
    const bad = [];
    for (const e of document.querySelectorAll('input, select, textarea, button')) {
      if (e.type === 'hidden') continue;
      const named = (e.labels && e.labels.length) || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby') ||
        (e.tagName === 'BUTTON' && e.textContent.trim());
      if (!named) bad.push(e.outerHTML.slice(0, 80));
    }
    for (const i of document.querySelectorAll('img')) if (!i.hasAttribute('alt')) bad.push(i.outerHTML.slice(0, 80));
    return bad;
  });
  check('labels', unlabeled.length === 0, unlabeled.join(' | '));

  // ---- a wrong key shows the API's own message -------------------------------
  const expected = await fetch(`${BASE}/v1/account`, { headers: { Authorization: 'Bearer bgr_live_wrongwrongwrong' } })
    .then((r) => r.json()).then((j) => j.error.message);
  allowedConsole = [/status of 401/];
  await page.type('input[name=api_key]', 'bgr_live_wrongwrongwrong');
  await page.keyboard.press('Enter'); // the keyboard submits the form
  await page.waitForSelector('#key-status.bad', { timeout: 10000 });
  const badText = await page.$eval('#key-status', (e) => e.textContent);
  check('bad_key', badText === expected, `${badText} / ${expected}`);
  const stored = await page.evaluate(() => [sessionStorage.length, localStorage.length]);
  check('bad_key_not_stored', stored[0] === 0 && stored[1] === 0, stored);
  allowedConsole = [];

  // ---- the right key ------------------------------------------------------------
  await page.$eval('input[name=api_key]', (e) => { e.value = ''; });
  await page.type('input[name=api_key]', KEY);
  await page.click('#key-form button[type=submit]');
  await page.waitForFunction(() => document.body.classList.contains('authed'), { timeout: 10000 });
  const where = await page.evaluate((k) => [sessionStorage.getItem('bgremover.api_key') === k,
    localStorage.length === 0, !location.href.includes(k)], KEY);
  check('key_session_only', where.every(Boolean), where);

  // ---- one photo -----------------------------------------------------------------
  const dl = path.join(OUT, 'downloads');
  fs.mkdirSync(dl, { recursive: true });
  const cdp = await page.createCDPSession();
  await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: dl });
  const input = await page.$('input[type=file]');
  await input.uploadFile(PHOTOS[0]);
  const t0 = Date.now();
  await page.click('#go');
  await page.waitForFunction(() => { const i = document.querySelector('img[data-result]'); return i && i.complete && i.naturalWidth > 0; }, { timeout: 120000 });
  metrics.first_result_ms = Date.now() - t0;
  const info = await page.$eval('img[data-result]', (i) => ({ id: i.dataset.result, w: +i.dataset.width, h: +i.dataset.height,
    nw: i.naturalWidth, nh: i.naturalHeight, src: i.src, size: +i.dataset.size,
    facts: i.closest('.job').querySelector('.facts-line').textContent }));
  check('result_shown', info.src.startsWith('blob:') && info.nw === info.w && info.nh === info.h &&
    info.facts.startsWith(`${info.w}×${info.h} PNG`), JSON.stringify(info));
  await page.click('.job.done a[download]');
  const file = await waitForFile(dl, 15000);
  const png = file ? pngInfo(fs.readFileSync(file)) : null;
  check('download_rgba_png', png && png.colorType === 6 && png.depth === 8 && png.width === info.w &&
    png.height === info.h && fs.statSync(file).size === info.size, JSON.stringify({ file, png }));
  const slider = await page.$('.job.done input[type=range]');
  check('before_after_slider', !!slider);

  // ---- a batch of three -----------------------------------------------------------
  await (await page.$('input[type=file]')).uploadFile(...PHOTOS.slice(0, 3));
  await page.click('#go');
  await page.waitForFunction(() => document.querySelectorAll('.job.done img[data-result]').length === 4 ||
    document.querySelectorAll('.job.failed').length > 0, { timeout: 300000 });
  const batch = await page.evaluate(() => ({ done: document.querySelectorAll('.job.done img[data-result]').length,
    failed: [...document.querySelectorAll('.job.failed .msg')].map((m) => m.textContent),
    bars: [...document.querySelectorAll('.job progress')].map((p) => p.value) }));
  check('batch_of_three', batch.done === 4 && batch.failed.length === 0 && batch.bars.every((v) => v === 100), JSON.stringify(batch));
  await page.waitForFunction(() => !document.getElementById('go').disabled, { timeout: 30000 });

  // ---- a file that is not an image: a clear message on its own card ------------------
  const bogus = path.join(OUT, 'not-an-image.png');
  fs.writeFileSync(bogus, 'this is text, not a PNG\n');
  allowedConsole = [/status of 415/];
  await (await page.$('input[type=file]')).uploadFile(bogus);
  await page.click('#go');
  await page.waitForSelector('.job.failed .msg.bad', { timeout: 30000 });
  const failMsg = await page.$eval('.job.failed .msg', (e) => e.textContent);
  const direct = await fetch(`${BASE}/v1/remove`, { method: 'POST', headers: { Authorization: `Bearer ${KEY}` },
    body: (() => { const f = new FormData(); f.append('image_file', new Blob([fs.readFileSync(bogus)]), 'x.png'); return f; })() })
    .then((r) => r.json());
  check('failure_message', failMsg === `Unsupported: ${direct.error.message}`, `${failMsg} / ${direct.error.message}`);
  await page.waitForFunction(() => !document.getElementById('go').disabled, { timeout: 30000 });
  allowedConsole = [];
  fs.rmSync(bogus);

  // ---- usage chart ------------------------------------------------------------------
  await page.waitForFunction(() => { const s = document.querySelector('svg[data-chart=usage]'); return s && +s.dataset.total >= 5; }, { timeout: 20000 })
    .catch(() => null);
  const chart = await page.evaluate(() => {
    const s = document.querySelector('svg[data-chart=usage]');
    if (!s) return null;
    const bars = [...s.querySelectorAll('rect.req, rect.cred')].filter((r) => +r.getAttribute('height') > 0).length;
    const values = [...s.querySelectorAll('text.val')].map((t) => t.textContent);
    return { total: +s.dataset.total, buckets: +s.dataset.buckets, bars, values };
  });
  check('usage_chart', chart && chart.total >= 5 && chart.buckets === 30 && chart.bars >= 2 && chart.values.includes('4'),
    JSON.stringify(chart));
  const facts = await page.$eval('#account-facts', (e) => e.textContent);
  check('account_facts', /pro/.test(facts) && /4 images/.test(facts) && /of 60 left/.test(facts) && /of 1000 left/.test(facts), facts);

  // ---- stored results, delete -------------------------------------------------------
  await page.waitForFunction(() => document.querySelectorAll('#stored li').length === 4, { timeout: 10000 }).catch(() => null);
  const listed = await page.$$eval('#stored li', (l) => l.map((e) => ({ id: e.dataset.image, exp: e.querySelector('.expiry').textContent })));
  check('results_listed', listed.length === 4 && listed.every((x) => /expires in \d+ d/.test(x.exp)), JSON.stringify(listed));
  await page.setViewport({ width: 1280, height: 900 });
  await page.screenshot({ path: path.join(OUT, 'web-desktop.png'), fullPage: true });
  const victim = listed[0] && listed[0].id;
  await page.click(`#stored li[data-image="${victim}"] button`);
  await page.waitForFunction((id) => !document.querySelector(`#stored li[data-image="${id}"]`), { timeout: 10000 }, victim).catch(() => null);
  const gone = await api('GET', `/v1/images/${victim}`);
  const left = await page.$$eval('#stored li', (l) => l.length);
  check('delete_result', gone.status === 404 && left === 3, `${gone.status} ${left}`);

  // ---- the batch filter: the API's own message for a bad id, then all again -----------
  allowedConsole = [/status of 400/];
  await page.type('#batch_filter', 'nope');
  await page.keyboard.press('Tab');
  await page.waitForSelector('#results-status.bad', { timeout: 10000 });
  const filterMsg = await page.$eval('#results-status', (e) => e.textContent);
  const filterApi = (await api('GET', '/v1/images?batch_id=nope')).json.error.message;
  await page.click('#batch_filter', { clickCount: 3 });
  await page.keyboard.press('Backspace');
  await page.keyboard.press('Tab');
  await page.waitForFunction(() => !document.getElementById('results-status').classList.contains('bad'), { timeout: 10000 }).catch(() => null);
  const after = await page.$$eval('#stored li', (l) => l.length);
  check('batch_filter', filterMsg.startsWith(filterApi) && after === 3, `${filterMsg} / ${filterApi} / ${after}`);
  allowedConsole = [];

  // ---- phone width ----------------------------------------------------------------------
  await page.setViewport({ width: 390, height: 844 });
  await new Promise((r) => setTimeout(r, 400)); // the chart redraws on resize
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
  check('phone_no_horizontal_scroll', overflow <= 390, overflow);
  await page.screenshot({ path: path.join(OUT, 'web-phone.png'), fullPage: true });
  // and one screen each of the top, a result and the account, at their real size
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(OUT, 'web-phone-top.png') });
  for (const [sel, name] of [['.job.done', 'result'], ['#account', 'account'], ['#results', 'results']]) {
    await page.$eval(sel, (e) => e.scrollIntoView());
    await page.screenshot({ path: path.join(OUT, `web-phone-${name}.png`) });
  }

  // ---- /docs ------------------------------------------------------------------------------
  const cspMain = await page.evaluate(() => window.__csp);
  await page.setViewport({ width: 1280, height: 900 });
  await page.goto(`${BASE}/docs`, { waitUntil: 'networkidle0' });
  const doc = await (await fetch(`${BASE}/v1/openapi.json`)).json();
  const nops = Object.values(doc.paths).reduce((a, p) => a + Object.keys(p).filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m)).length, 0);
  const docs = await page.evaluate(() => ({ ops: document.querySelectorAll('#ops article').length,
    curls: [...document.querySelectorAll('#ops article')].filter((a) => /curl /.test((a.querySelector('pre') || {}).textContent || '')).length,
    local: [...document.querySelectorAll('#ops pre')].every((p) => !p.textContent.includes('localhost:8080') || location.port === '8080') }));
  check('docs', docs.ops === nops && docs.curls === nops && docs.local, JSON.stringify({ ...docs, nops }));
  await page.screenshot({ path: path.join(OUT, 'web-docs.png'), fullPage: false });

  // ---- over the whole run ----------------------------------------------------------------
  const csp = cspMain.concat(await page.evaluate(() => window.__csp));
  check('no_console_errors', consoleErrors.length === 0 && pageErrors.length === 0, consoleErrors.concat(pageErrors).join(' | '));
  check('no_csp_violations', csp.length === 0, csp.join(' | '));
  check('same_origin_only', offOrigin.length === 0, offOrigin.join(' '));
} catch (e) {
  check('run', false, e.stack || e);
} finally {
  await browser.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
delete metrics.firstLoadDone;
console.log(JSON.stringify({ metrics }));
process.exit(results.every((r) => r.ok) ? 0 : 1);
