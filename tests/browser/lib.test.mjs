// lib.test.mjs - unit tests of web/lib.mjs (what the page computes), with
// Node's own test runner: node --test tests/browser/lib.test.mjs
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeOptions, optionsJson, usageQuery, usageSeries, niceMax, chartModel, formatBytes, formatMs,
  expiresIn, retryAfterSeconds, errorText, resultPath, concurrency, downloadName, DEFAULTS,
} from '../../web/lib.mjs';

test('defaults send no option at all', () => {
  assert.deepEqual(encodeOptions({ ...DEFAULTS }), []);
});

test('options: only what differs and applies', () => {
  assert.deepEqual(encodeOptions({ ...DEFAULTS, output_format: 'webp', output_quality: '75', bg_color: '#ff0000',
    max_resolution: '720p', crop: true, crop_margin: ' 10% ', refine: 'full', decontaminate: false }), [
    ['output_format', 'webp'], ['output_quality', '75'], ['bg_color', '#ff0000'], ['max_resolution', '720p'],
    ['crop', 'true'], ['crop_margin', '10%'], ['refine', 'full'], ['decontaminate', 'false']]);
  // quality means nothing for PNG; a margin nothing without crop
  assert.deepEqual(encodeOptions({ ...DEFAULTS, output_quality: '50', crop_margin: '20px' }), []);
  // a mask ignores format, colour and decontamination
  assert.deepEqual(encodeOptions({ ...DEFAULTS, output_type: 'mask', output_format: 'jpeg', bg_color: '#fff',
    decontaminate: false }), [['output_type', 'mask']]);
});

test('options as JSON are typed', () => {
  assert.deepEqual(optionsJson({ ...DEFAULTS, output_format: 'jpeg', output_quality: 60, crop: true, decontaminate: false }),
    { output_format: 'jpeg', output_quality: 60, crop: true, decontaminate: false });
});

test('usage periods end today (UTC)', () => {
  const now = new Date(Date.UTC(2026, 1, 13, 23, 30)); // Friday 2026-02-13
  assert.deepEqual(usageQuery('daily', now), { granularity: 'daily', start_date: '2026-01-15', end_date: '2026-02-13' });
  assert.deepEqual(usageQuery('weekly', now), { granularity: 'weekly', start_date: '2025-11-24', end_date: '2026-02-13' });
  assert.equal(new Date('2025-11-24T00:00:00Z').getUTCDay(), 1); // a Monday: 12 whole ISO weeks
  assert.deepEqual(usageQuery('monthly', now), { granularity: 'monthly', start_date: '2025-03-01', end_date: '2026-02-13' });
  assert.equal(usageQuery('bogus', now).granularity, 'daily');
  // a Monday starts its own week; 30 days back from 1 March of a leap year
  assert.equal(usageQuery('weekly', new Date(Date.UTC(2026, 1, 16))).start_date, '2025-12-01');
  assert.equal(usageQuery('daily', new Date(Date.UTC(2024, 2, 1))).start_date, '2024-02-01');
});

test('usage buckets oldest first with labels', () => {
  const s = usageSeries({ granularity: 'weekly', weekly: [
    { date: '2026-02-09', end_date: '2026-02-13', requests: 5, credits: 4 },
    { date: '2026-02-02', end_date: '2026-02-08', requests: 0, credits: 0 }] });
  assert.deepEqual(s.map((b) => [b.date, b.label, b.requests, b.credits]),
    [['2026-02-02', 'Feb 2', 0, 0], ['2026-02-09', 'Feb 9', 5, 4]]);
  assert.equal(usageSeries({ granularity: 'monthly', monthly: [{ date: '2025-12-01', requests: 1, credits: 0.25 }] })[0].label, 'Dec 2025');
  assert.deepEqual(usageSeries({ granularity: 'daily' }), []);
});

test('axis maximum', () => {
  assert.deepEqual([0, 1, 3, 7, 10, 11, 140, 999].map(niceMax), [1, 1, 5, 10, 10, 20, 200, 1000]);
});

test('chart geometry', () => {
  const series = Array.from({ length: 30 }, (_, i) => ({ label: `d${i}`, requests: i === 29 ? 12 : 0, credits: i === 29 ? 4 : 0 }));
  const m = chartModel(series, 640, 220);
  assert.equal(m.max, 20);
  assert.equal(m.bars.length, 60);
  const last = m.bars.filter((b) => b.bucket === 29);
  assert.ok(Math.abs(last[0].h - m.plotH * 12 / 20) < 1e-9);
  assert.ok(Math.abs(last[1].h - m.plotH * 4 / 20) < 1e-9);
  assert.ok(m.bars.every((b) => b.x >= m.left && b.x + b.w <= m.left + m.plotW + 1e-9));
  // the newest bucket is always labelled; labels at least 56 px apart
  assert.equal(m.labels[29].show, true);
  const shown = m.labels.filter((l) => l.show).map((l) => l.x);
  for (let i = 1; i < shown.length; i++) assert.ok(shown[i] - shown[i - 1] >= 56);
  assert.equal(m.showValues, false); // 30 buckets in 600 px: no room above each bar
  assert.equal(chartModel(series.slice(0, 7), 640, 220).showValues, true);
  assert.equal(chartModel([], 640, 220).max, 1);
});

test('formatting', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(701827), '685.4 KiB');
  assert.equal(formatBytes(3 * 1024 * 1024), '3.00 MiB');
  assert.equal(formatMs(850), '850 ms');
  assert.equal(formatMs(4226), '4.23 s');
  assert.equal(formatMs(61000), '61.0 s');
  const now = Date.parse('2026-02-13T10:00:00Z');
  assert.equal(expiresIn('2026-02-14T10:00:00Z', now), 'in 24 h');
  assert.equal(expiresIn('2026-02-20T10:00:00Z', now), 'in 7 d');
  assert.equal(expiresIn('2026-02-13T10:30:00Z', now), 'in 30 min');
  assert.equal(expiresIn('2026-02-13T09:00:00Z', now), 'expired');
  assert.equal(expiresIn(null, now), 'never');
});

test('Retry-After', () => {
  assert.equal(retryAfterSeconds('17'), 17);
  assert.equal(retryAfterSeconds('Fri, 13 Feb 2026 10:00:30 GMT', Date.parse('2026-02-13T10:00:00Z')), 30);
  assert.equal(retryAfterSeconds(null), null);
  assert.equal(retryAfterSeconds('soon'), null);
});

test('error messages keep the API\'s own words', () => {
  const body = (code, message) => ({ success: false, error: { code, message } });
  assert.equal(errorText(401, body('UNAUTHORIZED', 'Missing or invalid API key')), 'Missing or invalid API key');
  assert.equal(errorText(429, body('RATE_LIMITED', 'Rate limit exceeded'), 12), 'Rate limited: Rate limit exceeded Retry in 12 s.');
  assert.equal(errorText(413, body('FILE_TOO_LARGE', 'The image exceeds 10 MB')), 'Too large: The image exceeds 10 MB');
  assert.equal(errorText(415, body('UNSUPPORTED_FORMAT', 'Unreadable image')), 'Unsupported: Unreadable image');
  assert.equal(errorText(503, null, 2), 'Server busy: try again shortly. Retry in 2 s.');
  assert.equal(errorText(400, body('INVALID_PARAMETER', 'Invalid bg_color')), 'Invalid bg_color (INVALID_PARAMETER)');
  assert.equal(errorText(502, null), 'HTTP 502');
  assert.match(errorText(0, null), /Network error/);
});

test('result paths: same origin, fixed shape only', () => {
  assert.equal(resultPath('http://other.example:9/v1/results/img_abc123.png'), '/v1/results/img_abc123.png');
  assert.equal(resultPath('/v1/results/img_X9.webp'), '/v1/results/img_X9.webp');
  for (const bad of ['http://x/v1/results/../secret.png', 'http://x/v1/results/img_a.exe', 'javascript:alert(1)',
    'http://x/v1/results/img_a.png/x', 'http://x/other/img_a.png', '']) assert.equal(resultPath(bad), null, bad);
});

test('parallel uploads within the rate limit', () => {
  assert.equal(concurrency(null), 2);
  assert.equal(concurrency(59), 2);
  assert.equal(concurrency(1), 1);
  assert.equal(concurrency(0), 1);
  assert.equal(concurrency(10, 4), 4);
});

test('download names', () => {
  assert.equal(downloadName('holiday photo.JPG', 'png'), 'holiday_photo-nobg.png');
  assert.equal(downloadName('https://example.com/a/b/cat.webp?x=1', 'webp'), 'cat-nobg.webp');
  assert.equal(downloadName('../../etc/passwd', 'png'), 'passwd-nobg.png');
  assert.equal(downloadName('', 'jpg'), 'image-nobg.jpg');
});
