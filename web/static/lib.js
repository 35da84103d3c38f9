// Pure helpers: no DOM, no network, so their rules are easy to read and test.

/** The OAuth apps the design document lists, shown even when the service cannot list them. */
export const OAUTH_APPS = [
  { provider: 'gmail', name: 'Gmail', description: 'Read and send email.' },
  { provider: 'slack', name: 'Slack', description: 'Post and read channel messages.' },
  { provider: 'bigquery', name: 'BigQuery', description: 'Query Google BigQuery datasets.' },
];

const KNOWN_NAMES = {
  gmail: 'Gmail', slack: 'Slack', bigquery: 'BigQuery',
  postgres: 'PostgreSQL', postgresql: 'PostgreSQL', mysql: 'MySQL', redis: 'Redis', mongodb: 'MongoDB',
};

/** A display name for a provider or db_type slug. */
export function displayName(slug, known = {}) {
  if (!slug) return '';
  return known[slug] || KNOWN_NAMES[slug] || slug.charAt(0).toUpperCase() + slug.slice(1);
}

/**
 * Reads "#key=...&user=..." from a location hash. Returns null when neither is there.
 * @param {string} hash
 */
export function parseLoginFragment(hash) {
  const raw = (hash || '').replace(/^#/, '');
  if (!raw) return null;
  const p = new URLSearchParams(raw);
  if (!p.has('key') && !p.has('user')) return null;
  return { key: p.get('key') || '', user: p.get('user') || '' };
}

/**
 * Reads the OAuth return "?status=success|failed&provider=gmail".
 * @param {string} search
 */
export function parseOAuthReturn(search) {
  const p = new URLSearchParams(search || '');
  const status = p.get('status');
  if (status !== 'success' && status !== 'failed') return null;
  return { status, provider: p.get('provider') || '' };
}

/** Keeps only http(s) URLs, so a stored value cannot run script when navigated to. */
export function safeHttpUrl(value) {
  try {
    const u = new URL(value);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch {
    return null;
  }
}

/**
 * The body of POST /api/databases/test and /connect from a schema's fields and
 * the form's raw values: numbers as numbers, checkboxes as booleans, and
 * connection_name also sent as name (the document's connect body uses name).
 * Empty text and number inputs are left out.
 * @param {{name: string, type: string}[]} fields
 * @param {(field: {name: string, type: string}) => string|boolean} read
 * @returns {{payload: Record<string, unknown>, invalid: string|null}}
 */
export function databasePayload(dbType, fields, read) {
  const payload = { db_type: dbType };
  for (const f of fields) {
    const v = read(f);
    if (f.type === 'checkbox') {
      payload[f.name] = Boolean(v);
    } else if (f.type === 'number') {
      const s = String(v ?? '').trim();
      if (s === '') continue;
      const n = Number(s);
      if (!Number.isFinite(n)) return { payload, invalid: f.name };
      payload[f.name] = n;
    } else {
      const s = String(v ?? '');
      if (s === '') continue;
      payload[f.name] = f.type === 'password' ? s : s.trim();
    }
  }
  if (typeof payload.connection_name === 'string') payload.name = payload.connection_name;
  return { payload, invalid: null };
}

/**
 * The value a saved database gives a form field when it is edited: its
 * stored value, connection_name from name, and never a secret (password and
 * connection-string fields start empty and, left empty, keep the saved one).
 * @param {Record<string, unknown>} db an entry of GET /api/databases
 * @param {{name: string, type: string}} field
 * @returns {string|boolean|undefined} undefined: the field's default
 */
export function savedValue(db, field) {
  if (field.type === 'password') return '';
  const key = field.name === 'connection_name' ? 'name' : field.name;
  const v = db?.[key];
  if (v === undefined || v === null) return field.type === 'checkbox' ? false : undefined;
  return field.type === 'checkbox' ? v === true : String(v);
}

/**
 * The status lines of a saved database: its status, when it was last
 * tested and, when that failed, the error.
 * @param {Record<string, unknown>} db
 * @param {(v: string) => string} formatDate
 * @returns {string[]}
 */
export function checkLines(db, formatDate) {
  const when = db?.last_checked_at ? formatDate(String(db.last_checked_at)) : '';
  const lines = [`Status: ${db?.status || 'unknown'}${when ? ` (tested ${when})` : ' (not tested yet)'}`];
  if (db?.status === 'error' && db?.last_error) lines.push(`Last error: ${db.last_error}`);
  return lines;
}

function placeholderFor(schema) {
  if (!schema || typeof schema !== 'object') return '';
  if ('default' in schema) return schema.default;
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  let type = schema.type;
  if (Array.isArray(type)) type = type.find((t) => t !== 'null') ?? type[0];
  switch (type) {
    case 'string': return '';
    case 'integer':
    case 'number': return 0;
    case 'boolean': return false;
    case 'array': return [];
    case 'object': return {};
    case 'null': return null;
    default: return '';
  }
}

/**
 * The starting parameters of a tool: its input_schema's required properties
 * (and optional ones that declare a default), e.g. {"query": ""}. Without an
 * input_schema, the keys of the document's `parameters` map.
 */
export function initialParams(tool) {
  const schema = tool?.input_schema;
  const props = schema && typeof schema === 'object' && schema.properties && typeof schema.properties === 'object'
    ? schema.properties : null;
  const out = {};
  if (props) {
    const required = new Set(Array.isArray(schema.required) ? schema.required : []);
    let names = Object.keys(props).filter((k) => required.has(k) || (props[k] && 'default' in props[k]));
    if (names.length === 0) names = Object.keys(props);
    for (const k of names) out[k] = placeholderFor(props[k]);
    return out;
  }
  for (const k of Object.keys(tool?.parameters ?? {})) out[k] = '';
  return out;
}

/**
 * Parses the parameter editor. Returns {params} or {error}.
 * @param {string} text
 */
export function parseParams(text) {
  const src = (text ?? '').trim();
  if (src === '') return { params: {} };
  let v;
  try {
    v = JSON.parse(src);
  } catch (e) {
    return { error: `Parameters are not valid JSON: ${e.message}` };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    return { error: 'Parameters must be a JSON object, like {"query": "SELECT 1"}.' };
  }
  return { params: v };
}

const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** True for a non-empty array whose items are all objects: a table of rows. */
export function isRowArray(result) {
  return Array.isArray(result) && result.length > 0 && result.every(isPlainObject);
}

/** The union of the rows' keys, in first-seen order. */
export function columnsOf(rows) {
  const seen = new Set();
  for (const row of rows) for (const k of Object.keys(row)) seen.add(k);
  return [...seen];
}

/** The text of one table cell: nested values as JSON. */
export function cellText(v) {
  if (v === undefined) return '';
  if (v === null) return 'null';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
