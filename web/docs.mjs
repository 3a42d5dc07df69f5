// docs.mjs - /docs: renders this server's /v1/openapi.json (the repository's
// docs/openapi.json, embedded) as a readable reference: every operation with
// its parameters, body fields, responses and curl example (the document's
// x-codeSamples, with this server's address). Our own small renderer rather
// than a vendored viewer: the document is ours and plain, and this keeps the
// page dependency-free and within a strict CSP (no inline styles/eval).
// Every string of the document is put into the page as text.

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, String(v));
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

// Text with `code` spans as <code> elements (everything else stays text),
// split into paragraphs at blank lines.
function richText(s) {
  const box = el('div', { class: 'desc' });
  for (const para of String(s || '').split(/\n\s*\n/)) {
    if (!para.trim()) continue;
    const p = el('p');
    String(para).split('`').forEach((part, i) => p.append(i % 2 ? el('code', { text: part }) : part));
    box.append(p);
  }
  return box;
}

function resolve(doc, node, depth = 0) {
  if (!node || typeof node !== 'object' || depth > 8) return node || {};
  if (typeof node.$ref === 'string' && node.$ref.startsWith('#/')) {
    let t = doc;
    for (const k of node.$ref.slice(2).split('/')) t = t ? t[k.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
    return resolve(doc, t, depth + 1);
  }
  return node;
}

function refName(node) {
  return node && typeof node.$ref === 'string' ? node.$ref.split('/').pop() : null;
}

function typeText(doc, s) {
  const name = refName(s);
  if (name) return name;
  s = resolve(doc, s);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (Array.isArray(s.type)) return s.type.join(' | ');
  if (s.type === 'array') return `array of ${typeText(doc, s.items || {})}`;
  if (s.oneOf || s.anyOf) return (s.oneOf || s.anyOf).map((x) => typeText(doc, x)).join(' | ');
  return (s.type || 'any') + (s.format ? ` (${s.format})` : '');
}

// The properties and required names of a schema, allOf parts merged.
function flatten(doc, schema, depth = 0) {
  const s = resolve(doc, schema);
  const props = { ...(s.properties || {}) }, req = new Set(s.required || []);
  if (Array.isArray(s.allOf) && depth < 8)
    for (const part of s.allOf) {
      const f = flatten(doc, part, depth + 1);
      Object.assign(props, f.props);
      f.req.forEach((r) => req.add(r));
    }
  return { props, req };
}

function propsTable(doc, schema) {
  const { props, req } = flatten(doc, schema);
  const rows = Object.entries(props).map(([name, p]) => {
    const r = resolve(doc, p);
    return el('tr', {}, el('td', {}, el('code', { text: name })), el('td', { text: typeText(doc, p) }),
      el('td', { text: req.has(name) ? 'yes' : '' }),
      el('td', {}, richText([r.description, r.default !== undefined ? `Default: \`${JSON.stringify(r.default)}\`` : ''].filter(Boolean).join('\n\n'))));
  });
  if (!rows.length) return null;
  return el('table', {}, el('thead', {}, el('tr', {}, ...['Field', 'Type', 'Required', 'Description'].map((h) => el('th', { text: h })))),
    el('tbody', {}, ...rows));
}

function operation(doc, path, method, op, origin) {
  const id = op.operationId || `${method}-${path}`;
  const box = el('article', { class: 'op', id });
  box.append(el('h3', {}, el('span', { class: `method ${method}`, text: method.toUpperCase() }), el('code', { text: path }),
    el('span', { text: op.summary || '' })));
  const sec = op.security !== undefined ? op.security : doc.security;
  box.append(el('p', { class: 'hint', text: sec && sec.length ? 'Needs an API key: Authorization: Bearer <key>.' : 'No API key needed.' }));
  if (op.description) box.append(richText(op.description));
  const params = (op.parameters || []).map((p) => resolve(doc, p));
  if (params.length) {
    box.append(el('h4', { text: 'Parameters' }));
    box.append(el('table', {}, el('thead', {}, el('tr', {}, ...['Name', 'In', 'Type', 'Description'].map((h) => el('th', { text: h })))),
      el('tbody', {}, ...params.map((p) => el('tr', {}, el('td', {}, el('code', { text: p.name })), el('td', { text: p.in + (p.required ? ', required' : '') }),
        el('td', { text: typeText(doc, p.schema || {}) }), el('td', {}, richText(p.description)))))));
  }
  const body = resolve(doc, op.requestBody);
  if (body && body.content) {
    box.append(el('h4', { text: 'Request body' }));
    if (body.description) box.append(richText(body.description));
    for (const [ct, media] of Object.entries(body.content)) {
      box.append(el('p', {}, el('code', { text: ct })));
      const t = media.schema ? propsTable(doc, media.schema) : null;
      if (t) box.append(t);
    }
  }
  const resps = Object.entries(op.responses || {});
  if (resps.length) {
    box.append(el('h4', { text: 'Responses' }));
    const ul = el('ul');
    for (const [code, r0] of resps) {
      const r = resolve(doc, r0);
      const json = r.content && r.content['application/json'] && r.content['application/json'].schema;
      let dataName = null;
      if (json) {
        const js = resolve(doc, json);
        const data = js.properties && js.properties.data;
        dataName = data ? typeText(doc, data) : refName(json);
      }
      const li = el('li', {}, el('strong', { text: code }), ` ${r.description || ''}`);
      if (dataName) li.append(' — data: ', el('a', { href: `#schema-${dataName}`, text: dataName }));
      ul.append(li);
    }
    box.append(ul);
  }
  const samples = (op['x-codeSamples'] || []).filter((s) => /curl|shell/i.test(s.lang || s.label || ''));
  for (const s of samples) {
    box.append(el('h4', { text: 'Example' }));
    box.append(el('pre', {}, el('code', { text: String(s.source).replaceAll('http://localhost:8080', origin) })));
  }
  return box;
}

async function main() {
  let doc;
  try {
    const r = await fetch('/v1/openapi.json', { cache: 'no-cache' });
    doc = await r.json();
  } catch (e) {
    $('intro').replaceChildren(el('p', { class: 'status bad', text: `Cannot load /v1/openapi.json: ${e.message}` }));
    return;
  }
  const origin = location.origin;
  document.title = `${doc.info.title} ${doc.info.version} — bgremover`;
  $('intro').replaceChildren(el('p', {}, el('strong', { text: `${doc.info.title} ${doc.info.version}` }),
    ` · OpenAPI ${doc.openapi} · this server: `, el('code', { text: origin })), richText(doc.info.description));
  const toc = $('toc'), ops = $('ops');
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
      const op = item[method];
      if (!op) continue;
      const node = operation(doc, path, method, op, origin);
      ops.append(node);
      toc.append(el('li', {}, el('a', { href: `#${node.id}` }, el('code', { text: `${method.toUpperCase()} ${path}` })), ` ${op.summary || ''}`));
    }
  }
  const schemas = $('schemas');
  for (const [name, s] of Object.entries((doc.components && doc.components.schemas) || {})) {
    const box = el('article', { class: 'op', id: `schema-${name}` }, el('h3', {}, el('code', { text: name })));
    if (s.description) box.append(richText(s.description));
    const t = propsTable(doc, s);
    box.append(t || el('p', { class: 'hint', text: typeText(doc, s) }));
    schemas.append(box);
  }
  if (location.hash) { const t = document.getElementById(decodeURIComponent(location.hash.slice(1))); if (t) t.scrollIntoView(); }
}

main();
