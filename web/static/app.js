// The connectors page: a reference client of the service's public REST API.
// Plain ES modules, no framework and no build step.

import { ApiError, createClient } from './api.js';
import { $, ActionMessage, busy, h } from './dom.js';
import {
  OAUTH_APPS, cellText, checkLines, columnsOf, databasePayload, displayName, initialParams, isRowArray,
  parseLoginFragment, parseOAuthReturn, parseParams, safeHttpUrl, savedValue,
} from './lib.js';

// ---- session -----------------------------------------------------------------
// The key and user id live in this tab's sessionStorage only, and the key is
// only ever sent in the X-API-Key header.

const KEY = 'mcp.apiKey';
const USER = 'mcp.userId';

const session = {
  key: () => sessionStorage.getItem(KEY) || '',
  user: () => sessionStorage.getItem(USER) || '',
  save(key, user) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(USER, user);
  },
  forgetKey: () => sessionStorage.removeItem(KEY),
  clear() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(USER);
  },
};

const api = createClient({ getKey: session.key, onUnauthorized: (err) => signOut(err.message) });

// ---- state ---------------------------------------------------------------------

const state = {
  integrations: null, integrationsError: null, // [{provider,name,description,logo,configured}]
  dbTypes: null, dbTypesError: null, // [{db_type,name,description}]
  connected: [], connectedError: null, // [{integration_id,provider,status,connected_email,created_at}]
  databases: [], databasesError: null, // [{db_id,db_type,name,host,port,database,...}]
  tools: [], toolsError: null, // [{name,description,provider,parameters,input_schema}]
  generation: 0,
};

let pendingBanner = null; // shown once the app is visible

const names = () => {
  const known = {};
  for (const i of state.integrations ?? []) known[i.provider] = i.name;
  for (const t of state.dbTypes ?? []) known[t.db_type] = t.name;
  return known;
};

const errorText = (e) => (e instanceof Error ? e.message : String(e));

// ---- views -----------------------------------------------------------------

function showLogin(message = '') {
  $('app-view').hidden = true;
  $('session-bar').hidden = true;
  $('login-view').hidden = false;
  const dialog = $('db-dialog');
  if (dialog.open) dialog.close();
  $('login-user').value = $('login-user').value || session.user();
  const msg = ActionMessage.byIds('login-status', 'login-error');
  if (message) msg.error(message);
  else msg.clear();
  document.title = 'Sign in · MCP Integration Service';
  $('login-key').focus();
}

function showApp() {
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('session-bar').hidden = false;
  $('session-user').textContent = session.user();
  document.title = 'Connectors · MCP Integration Service';
  if (pendingBanner) {
    showBanner(pendingBanner.kind, pendingBanner.text);
    pendingBanner = null;
  }
}

function signOut(message) {
  if (message) session.forgetKey();
  else session.clear();
  showLogin(message);
}

function showBanner(kind, text) {
  const banner = $('banner');
  banner.className = `banner banner-${kind}`;
  $('banner-text').textContent = (kind === 'success' ? '✓ ' : '') + text;
  banner.hidden = false;
  // Announce it: politely for news, assertively for failures.
  $('banner-live').textContent = kind === 'success' ? text : '';
  $('banner-alert').textContent = kind === 'success' ? '' : text;
}

function hideBanner() {
  $('banner').hidden = true;
  $('banner-live').textContent = '';
  $('banner-alert').textContent = '';
}

function showGlobalError(text) {
  const el = $('global-alert');
  el.textContent = text;
  el.hidden = false;
}

// ---- login -----------------------------------------------------------------

async function login(key, user) {
  const msg = ActionMessage.byIds('login-status', 'login-error');
  key = key.trim();
  user = user.trim();
  if (!key || !user) {
    msg.error(!key ? 'Enter the API key.' : 'Enter a user id.');
    (!key ? $('login-key') : $('login-user')).focus();
    return false;
  }
  if (user.length > 256) {
    msg.error('The user id is longer than 256 characters.');
    return false;
  }
  msg.ok('Checking the key…');
  // Check the key with a cheap authenticated call before keeping it.
  const probe = createClient({ getKey: () => key });
  try {
    await probe.databaseTypes();
  } catch (e) {
    msg.error(e instanceof ApiError && e.status === 401
      ? `The service refused this key: ${e.message}`
      : `Could not sign in: ${errorText(e)}`);
    return false;
  }
  session.save(key, user);
  msg.clear();
  $('login-key').value = '';
  showApp();
  $('main').focus();
  await refreshAll();
  return true;
}

// ---- loading -----------------------------------------------------------------

async function settle(promise) {
  try {
    return { value: await promise };
  } catch (e) {
    return { error: e };
  }
}

async function refreshAll() {
  const user = session.user();
  if (!session.key() || !user) return;
  const gen = ++state.generation;
  for (const id of ['connectors', 'connected', 'tools']) $(id).setAttribute('aria-busy', 'true');
  const list = (promise, key) => settle(promise.then((body) => listOf(body, key)));
  const [integrations, dbTypes, connected, databases, tools] = await Promise.all([
    list(api.integrations(), 'integrations'),
    list(api.databaseTypes(), 'types'),
    list(api.connectedIntegrations(user), 'integrations'),
    list(api.databases(user), 'databases'),
    list(api.tools(user), 'tools'),
  ]);
  if (gen !== state.generation) return; // a newer refresh is under way
  for (const id of ['connectors', 'connected', 'tools']) $(id).removeAttribute('aria-busy');
  if ([integrations, dbTypes, connected, databases, tools].some((r) => r.error?.status === 401)) return;

  state.integrations = integrations.error ? null : integrations.value;
  state.integrationsError = integrations.error ?? null;
  state.dbTypes = dbTypes.error ? null : dbTypes.value;
  state.dbTypesError = dbTypes.error ?? null;
  state.connected = connected.error ? [] : connected.value;
  state.connectedError = connected.error ?? null;
  state.databases = databases.error ? [] : databases.value;
  state.databasesError = databases.error ?? null;
  state.tools = tools.error ? [] : tools.value;
  state.toolsError = tools.error ?? null;
  render();
}

function listOf(body, key) {
  const v = body?.[key];
  if (!Array.isArray(v)) throw new ApiError(`The service's answer has no "${key}" list.`, { code: 'bad_response' });
  return v;
}

// ---- rendering -----------------------------------------------------------------

function render() {
  const focusKey = document.activeElement?.dataset?.focusKey;
  renderAppGrid();
  renderDbGrid();
  renderConnected();
  renderTools();
  if (focusKey) {
    const again = document.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`);
    if (again && !again.disabled) again.focus();
  }
}

function monogram(name, slug) {
  return h('span', { class: `logo logo-${slug}`, 'aria-hidden': 'true' }, (name || '?').charAt(0).toUpperCase());
}

function logoFor(item, slug) {
  const url = item.logo ? safeHttpUrl(item.logo) : null;
  if (!url) return monogram(item.name, slug);
  const img = h('img', { class: 'logo', src: url, alt: '', width: 40, height: 40, referrerpolicy: 'no-referrer', decoding: 'async' });
  img.addEventListener('error', () => img.replaceWith(monogram(item.name, slug)), { once: true });
  return img;
}

function card({ slug, kind, name, description, logo, connectedNote, stateName, footer }) {
  const msg = h('div', { class: 'action-msg' },
    h('span', { class: 'msg msg-ok', role: 'status', 'aria-live': 'polite' }),
    h('span', { class: 'msg msg-error', role: 'alert' }));
  const el = h('li', { class: `card card-${stateName}`, dataset: { connector: slug, kind, state: stateName }, tabindex: '-1' },
    h('div', { class: 'card-head' }, logo, h('h4', { class: 'card-title' }, name)),
    description ? h('p', { class: 'card-desc' }, description) : null,
    h('div', { class: 'card-foot' }, connectedNote, footer),
    msg);
  return { el, msg: new ActionMessage(msg.children[0], msg.children[1]) };
}

function connectedBadge(detail) {
  return h('p', { class: 'status status-ok' },
    h('span', { class: 'check', 'aria-hidden': 'true' }, '✓'), ' Connected',
    detail ? h('span', { class: 'status-detail' }, detail) : null);
}

function renderAppGrid() {
  const grid = $('app-grid');
  const err = state.integrationsError;
  const apps = state.integrations ?? OAUTH_APPS.map((a) => ({ ...a, configured: false }));
  const live = $('apps-live');
  live.textContent = err ? `Apps cannot be connected: ${err.message}` : '';
  grid.replaceChildren(...apps.map((app) => {
    const active = state.connected.filter((i) => i.provider === app.provider && i.status === 'active');
    const pending = state.connected.find((i) => i.provider === app.provider && i.status !== 'active');
    const name = app.name || displayName(app.provider);
    const unavailable = Boolean(err) || app.configured === false;
    const stateName = active.length ? 'connected' : unavailable ? 'unavailable' : 'available';
    let footer = null;
    let note = null;
    const errId = `app-error-${app.provider}`;
    if (active.length) {
      note = connectedBadge(active.map((i) => i.connected_email).filter(Boolean).join(', '));
    } else {
      footer = h('button', {
        type: 'button', class: 'btn btn-primary', 'aria-label': `Connect ${name}`,
        disabled: unavailable, 'aria-describedby': unavailable ? errId : null,
        dataset: { focusKey: `connect:${app.provider}` },
      }, 'Connect');
      if (unavailable) {
        note = h('p', { class: 'msg msg-error card-error', id: errId },
          err ? err.message : `${name} is not configured on this server.`);
      } else if (pending) {
        note = h('p', { class: 'status status-muted' }, `Status: ${pending.status}`);
      }
    }
    const c = card({ slug: app.provider, kind: 'app', name, description: app.description, logo: logoFor(app, app.provider), connectedNote: note, stateName, footer });
    if (footer && !unavailable) footer.addEventListener('click', () => connectApp(app.provider, name, footer, c.msg));
    return c.el;
  }));
}

function renderDbGrid() {
  const grid = $('db-grid');
  const errEl = $('db-types-error');
  errEl.textContent = state.dbTypesError ? `Could not load the database types: ${state.dbTypesError.message}` : '';
  grid.replaceChildren(...(state.dbTypes ?? []).map((t) => {
    const saved = state.databases.filter((d) => d.db_type === t.db_type);
    const name = t.name || displayName(t.db_type);
    const stateName = saved.length ? 'connected' : 'available';
    const button = h('button', {
      type: 'button', class: saved.length ? 'btn' : 'btn btn-primary',
      'aria-label': saved.length ? `Add another ${name} connection` : `Connect ${name}`,
      dataset: { focusKey: `connect:${t.db_type}` },
    }, saved.length ? 'Add another' : 'Connect');
    const note = saved.length ? connectedBadge(saved.length > 1 ? `${saved.length} connections` : saved[0].name) : null;
    const c = card({ slug: t.db_type, kind: 'database', name, description: t.description, logo: monogram(name, t.db_type), connectedNote: note, stateName, footer: button });
    button.addEventListener('click', () => openDatabaseForm(t.db_type, name, button, c.msg));
    return c.el;
  }));
}

function formatDate(v) {
  if (v === undefined || v === null || v === '') return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
}

function renderConnected() {
  const known = names();
  const appsErr = $('connected-apps-error');
  const appsList = $('connected-apps');
  const ce = state.connectedError;
  // "not configured" is already shown on the app cards; it is no failure of this list.
  appsErr.textContent = ce && ce.code !== 'composio_not_configured' ? `Could not load connected apps: ${ce.message}` : '';
  if (state.connected.length === 0) {
    appsList.replaceChildren(h('li', { class: 'empty' },
      ce?.code === 'composio_not_configured' ? 'None: OAuth apps are not configured on this server.' : ce ? '—' : 'No apps connected yet.'));
  } else {
    appsList.replaceChildren(...state.connected.map((i) => {
      const name = displayName(i.provider, known);
      const label = i.connected_email ? `${name} (${i.connected_email})` : name;
      return item({
        data: { integrationId: i.integration_id, provider: i.provider },
        title: name,
        lines: [i.connected_email || 'No email reported', `Status: ${i.status}`, formatDate(i.created_at) && `Since ${formatDate(i.created_at)}`],
        ok: i.status === 'active',
        label,
        focusKey: `disconnect:${i.integration_id}`,
        onDisconnect: () => api.disconnectIntegration(session.user(), i.integration_id),
      });
    }));
  }

  const dbErr = $('connected-dbs-error');
  const dbList = $('connected-dbs');
  dbErr.textContent = state.databasesError ? `Could not load connected databases: ${state.databasesError.message}` : '';
  if (state.databases.length === 0) {
    dbList.replaceChildren(h('li', { class: 'empty' }, state.databasesError ? '—' : 'No databases connected yet.'));
  } else {
    dbList.replaceChildren(...state.databases.map((d) => {
      const type = displayName(d.db_type, known);
      const where = d.host ? `${d.host}${d.port ? ':' + d.port : ''}${d.database ? ' / ' + d.database : ''}` : (d.database || '');
      const label = `${d.name || d.db_id} (${type})`;
      return item({
        data: { dbId: d.db_id, dbType: d.db_type },
        title: d.name || d.db_id,
        lines: [[type, where].filter(Boolean).join(' • '), ...checkLines(d, formatDate),
          formatDate(d.created_at) && `Since ${formatDate(d.created_at)}`],
        ok: d.status === 'connected',
        label,
        focusKey: `disconnect:${d.db_id}`,
        onDisconnect: () => api.disconnectDatabase(session.user(), d.db_id),
        actions: (msg) => databaseActions(d, type, label, msg),
      });
    }));
  }
}

// Re-test and Edit of a saved database, beside its Disconnect.
function databaseActions(d, type, label, msg) {
  const retest = h('button', { type: 'button', class: 'btn', 'aria-label': `Re-test ${label}`,
    dataset: { focusKey: `retest:${d.db_id}` } }, 'Re-test');
  retest.addEventListener('click', async () => {
    msg.clear();
    let res;
    try {
      res = await busy(retest, 'Testing…', () => api.retestDatabase(session.user(), d.db_id));
    } catch (e) {
      await refreshAll(); // the failure is recorded on the database
      listMessage(d.db_id).error(errorText(e));
      return;
    }
    await refreshAll();
    listMessage(d.db_id).ok(res.message || 'Connection successful');
  });
  const edit = h('button', { type: 'button', class: 'btn', 'aria-label': `Edit ${label}`,
    dataset: { focusKey: `edit:${d.db_id}` } }, 'Edit');
  edit.addEventListener('click', () => openDatabaseForm(d.db_type, type, edit, msg, d));
  return [retest, edit];
}

// The message beside a listed database's buttons, after the list was redrawn.
function listMessage(dbId) {
  const li = document.querySelector(`#connected-dbs [data-db-id="${CSS.escape(dbId)}"]`);
  if (!li) return new ActionMessage(h('span'), h('span'));
  return new ActionMessage(li.querySelector('.msg-ok'), li.querySelector('.msg-error'));
}

function item({ data, title, lines, ok, label, focusKey, onDisconnect, actions }) {
  const status = h('span', { class: 'msg msg-ok', role: 'status', 'aria-live': 'polite' });
  const error = h('span', { class: 'msg msg-error', role: 'alert' });
  const msg = new ActionMessage(status, error);
  const button = h('button', { type: 'button', class: 'btn btn-danger', 'aria-label': `Disconnect ${label}`, dataset: { focusKey } }, 'Disconnect');
  button.addEventListener('click', async () => {
    if (!window.confirm(`Disconnect ${label}? Agents will lose access to it.`)) return;
    msg.clear();
    try {
      await busy(button, 'Disconnecting…', onDisconnect);
    } catch (e) {
      msg.error(errorText(e));
      return;
    }
    showBanner('success', `${label} disconnected.`);
    await refreshAll();
    $('connected-title').focus();
  });
  return h('li', { class: 'item', dataset: data },
    h('div', { class: 'item-body' },
      h('p', { class: 'item-title' }, ok ? h('span', { class: 'check', 'aria-hidden': 'true' }, '✓ ') : null, title),
      ...lines.filter(Boolean).map((l) => h('p', { class: 'item-line' }, l))),
    h('div', { class: 'item-actions' }, ...(actions ? actions(msg) : []), button,
      h('div', { class: 'action-msg' }, status, error)));
}

// ---- OAuth -----------------------------------------------------------------

function ownUrl() {
  // The page's own address without query or fragment: /ui/ when served there.
  return new URL('.', window.location.origin + window.location.pathname).href;
}

async function connectApp(provider, name, button, msg) {
  msg.clear();
  button.disabled = true;
  button.textContent = 'Redirecting…';
  try {
    const res = await api.connectIntegration(session.user(), provider, ownUrl());
    const url = safeHttpUrl(res.auth_url);
    if (!url) throw new ApiError(`The service returned no usable auth_url for ${name}.`, { code: 'bad_response' });
    msg.ok(`Opening the ${name} consent page…`);
    window.location.assign(url);
  } catch (e) {
    button.disabled = false;
    button.textContent = 'Connect';
    msg.error(errorText(e));
  }
}

// ---- database form -----------------------------------------------------------------

let currentSchema = null; // {db_type, name, fields}
let openerCard = null;
let editing = null; // the saved database the form edits, or null for a new one

// Opens the form for a new database of dbType, or, given saved, to edit it.
async function openDatabaseForm(dbType, name, button, cardMsg, saved = null) {
  cardMsg.clear();
  let schema;
  try {
    schema = await busy(button, 'Loading…', () => api.databaseSchema(dbType));
    if (!Array.isArray(schema.fields)) throw new ApiError(`The ${name} form has no fields.`, { code: 'bad_response' });
  } catch (e) {
    cardMsg.error(errorText(e));
    return;
  }
  currentSchema = { db_type: schema.db_type || dbType, name: schema.name || name, fields: schema.fields };
  openerCard = dbType;
  editing = saved;
  $('db-dialog-title').textContent = saved ? `Edit ${saved.name || saved.db_id}` : `Connect ${currentSchema.name}`;
  $('db-fields').replaceChildren(...currentSchema.fields.map((f) => fieldInput(f, saved)));
  // An edit saves what the form says; Re-test in the list tests what is saved.
  $('db-test').hidden = Boolean(saved);
  $('db-connect').textContent = saved ? 'Save' : 'Connect';
  ActionMessage.byIds('db-test-status', 'db-test-error').clear();
  ActionMessage.byIds('db-connect-status', 'db-connect-error').clear();
  const dialog = $('db-dialog');
  if (!dialog.open) dialog.showModal();
  dialog.querySelector('input')?.focus();
}

function fieldInput(f, saved) {
  const id = `db-field-${f.name}`;
  const type = ['text', 'number', 'password', 'checkbox'].includes(f.type) ? f.type : 'text';
  const label = f.label || f.name;
  // A saved secret is kept when its field is left empty.
  const keep = saved && f.type === 'password';
  const required = Boolean(f.required) && !keep;
  const value = saved ? savedValue(saved, f) : undefined;
  if (f.type === 'textarea') {
    // Multi-line text such as a PEM certificate, which a text input would flatten.
    const area = h('textarea', { id, name: f.name, rows: '4', spellcheck: 'false', autocomplete: 'off',
      required, 'aria-required': required ? 'true' : null, dataset: { fieldType: 'textarea' } });
    if (typeof value === 'string') area.value = value;
    return h('div', { class: 'field' }, h('label', { for: id }, label), area);
  }
  const input = h('input', {
    id, name: f.name, type,
    required, 'aria-required': required ? 'true' : null,
    autocomplete: type === 'password' ? 'new-password' : 'off',
    spellcheck: type === 'text' || type === 'password' ? 'false' : null,
    inputmode: type === 'number' ? 'numeric' : null,
    step: type === 'number' ? '1' : null,
    placeholder: keep ? 'Leave empty to keep the saved one' : null,
    dataset: { fieldType: type },
  });
  if (type === 'checkbox') input.checked = value !== undefined ? value === true : f.default === true;
  else if (value !== undefined) input.value = String(value);
  else if (f.default !== undefined && f.default !== null) input.value = String(f.default);
  const marker = required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null;
  if (type === 'checkbox') {
    return h('div', { class: 'field field-check' }, input, h('label', { for: id }, label, marker));
  }
  return h('div', { class: 'field' }, h('label', { for: id }, label, marker), input);
}

function readDatabaseForm() {
  const form = $('db-form');
  return databasePayload(currentSchema.db_type, currentSchema.fields, (f) => {
    const input = form.elements.namedItem(f.name);
    if (!input) return '';
    return input.type === 'checkbox' ? input.checked : input.value;
  });
}

async function testDatabase() {
  const msg = ActionMessage.byIds('db-test-status', 'db-test-error');
  msg.clear();
  const { payload, invalid } = readDatabaseForm();
  if (invalid) {
    msg.error(`${labelOf(invalid)} must be a number.`);
    return;
  }
  try {
    const res = await busy($('db-test'), 'Testing…', () => api.testDatabase(payload));
    msg.ok(res.message || 'Connection successful');
  } catch (e) {
    msg.error(errorText(e));
  }
}

function labelOf(fieldName) {
  return currentSchema?.fields.find((f) => f.name === fieldName)?.label || fieldName;
}

async function connectDatabase(event) {
  event.preventDefault();
  const msg = ActionMessage.byIds('db-connect-status', 'db-connect-error');
  msg.clear();
  const { payload, invalid } = readDatabaseForm();
  if (invalid) {
    msg.error(`${labelOf(invalid)} must be a number.`);
    return;
  }
  const saved = editing;
  let res;
  try {
    res = saved
      ? await busy($('db-connect'), 'Saving…', () => api.updateDatabase(session.user(), saved.db_id, payload))
      : await busy($('db-connect'), 'Connecting…', () => api.connectDatabase({ user_id: session.user(), ...payload }));
  } catch (e) {
    msg.error(errorText(e));
    return;
  }
  $('db-dialog').close();
  const done = saved ? 'saved' : 'connected';
  showBanner('success', `${res.name || payload.name || currentSchema.name} (${currentSchema.name}) ${done}.`);
  await refreshAll();
  const focus = saved ? `#connected-dbs [data-focus-key="edit:${CSS.escape(saved.db_id)}"]`
    : `#db-grid [data-connector="${CSS.escape(openerCard ?? '')}"]`;
  document.querySelector(focus)?.focus();
}

// ---- tools -----------------------------------------------------------------

function renderTools() {
  const select = $('tool-select');
  const previous = select.value;
  const err = $('tools-error');
  err.textContent = state.toolsError ? `Could not load tools: ${state.toolsError.message}` : '';
  const run = $('run-tool');
  if (state.tools.length === 0) {
    select.replaceChildren(h('option', { value: '' }, 'No tools yet: connect a database or an app first'));
    select.disabled = true;
    run.disabled = true;
    $('tool-params').disabled = true;
    $('tool-description').textContent = '';
    $('tool-params').value = '';
    $('tool-result').replaceChildren();
    ActionMessage.byIds('run-status', 'run-error').clear();
    return;
  }
  select.disabled = false;
  run.disabled = false;
  $('tool-params').disabled = false;
  const known = names();
  select.replaceChildren(...state.tools.map((t) => h('option', { value: t.name },
    `${t.name} (${displayName(t.provider, known)})`)));
  if (state.tools.some((t) => t.name === previous)) {
    select.value = previous;
  } else {
    select.value = state.tools[0].name;
    toolChanged();
  }
}

function selectedTool() {
  return state.tools.find((t) => t.name === $('tool-select').value);
}

function toolChanged() {
  const tool = selectedTool();
  $('tool-description').textContent = tool?.description ?? '';
  $('tool-params').value = tool ? JSON.stringify(initialParams(tool), null, 2) : '';
  $('tool-result').replaceChildren();
  ActionMessage.byIds('run-status', 'run-error').clear();
}

async function runTool(event) {
  event.preventDefault();
  const msg = ActionMessage.byIds('run-status', 'run-error');
  msg.clear();
  const action = $('tool-select').value;
  if (!action) {
    msg.error('Choose a tool first.');
    return;
  }
  const parsed = parseParams($('tool-params').value);
  if (parsed.error) {
    msg.error(parsed.error);
    $('tool-params').setAttribute('aria-invalid', 'true');
    $('tool-params').focus();
    return;
  }
  $('tool-params').removeAttribute('aria-invalid');
  const out = $('tool-result');
  out.replaceChildren();
  let res;
  try {
    res = await busy($('run-tool'), 'Running…', () => api.execute(session.user(), action, parsed.params));
  } catch (e) {
    msg.error(errorText(e));
    return;
  }
  out.replaceChildren(...renderResult(action, res));
  const rows = Array.isArray(res.result) ? (res.row_count ?? res.result.length) : null;
  msg.ok(rows === null ? `${action} succeeded.` : `${action} returned ${rows} row${rows === 1 ? '' : 's'}.`);
}

function renderResult(action, res) {
  const nodes = [];
  const result = 'result' in res ? res.result : Object.fromEntries(Object.entries(res).filter(([k]) => k !== 'success'));
  if (res.truncated) {
    nodes.push(h('p', { class: 'notice notice-warn', role: 'note' },
      `Truncated: only the first ${res.row_count ?? (Array.isArray(result) ? result.length : '')} rows are shown (the server's row cap applied).`));
  }
  if (isRowArray(result)) {
    const cols = columnsOf(result);
    const table = h('table', { class: 'rows' },
      h('caption', {}, `${action}: ${result.length} row${result.length === 1 ? '' : 's'}`),
      h('thead', {}, h('tr', {}, ...cols.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, ...result.map((row) => h('tr', {}, ...cols.map((c) => {
        const v = row[c];
        return h('td', { class: v === null || v === undefined ? 'null' : typeof v === 'object' ? 'nested' : null }, cellText(v));
      })))));
    nodes.push(h('div', { class: 'table-wrap', role: 'region', 'aria-label': `Result of ${action}`, tabindex: '0' }, table));
  } else if (Array.isArray(result) && result.length === 0) {
    nodes.push(h('p', { class: 'muted' }, 'No rows.'));
  } else {
    nodes.push(h('pre', { class: 'json', tabindex: '0', 'aria-label': `Result of ${action}` }, JSON.stringify(result, null, 2)));
  }
  return nodes;
}

// ---- start -----------------------------------------------------------------

function wire() {
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const submit = $('login-submit');
    busy(submit, 'Signing in…', () => login($('login-key').value, $('login-user').value))
      .catch((err) => ActionMessage.byIds('login-status', 'login-error').error(errorText(err)));
  });
  $('logout').addEventListener('click', () => signOut(''));
  $('banner-close').addEventListener('click', hideBanner);
  $('refresh').addEventListener('click', () => busy($('refresh'), 'Refreshing…', refreshAll));
  $('db-dialog-close').addEventListener('click', () => $('db-dialog').close());
  $('db-test').addEventListener('click', testDatabase);
  $('db-form').addEventListener('submit', connectDatabase);
  $('tool-select').addEventListener('change', toolChanged);
  $('tool-form').addEventListener('submit', runTool);
  window.addEventListener('hashchange', onHashChange);
  // Nothing fails silently: anything unexpected is shown at the top.
  window.addEventListener('error', (e) => showGlobalError(`Unexpected error: ${e.message}`));
  window.addEventListener('unhandledrejection', (e) => showGlobalError(`Unexpected error: ${errorText(e.reason)}`));
}

function loginFromFragment(fragment) {
  $('login-key').value = fragment.key;
  $('login-user').value = fragment.user;
  showLogin();
  if (fragment.key && fragment.user) $('login-submit').click();
}

// A ready-made link (#key=…&user=…) opened in a tab that already shows the page.
function onHashChange() {
  const fragment = parseLoginFragment(window.location.hash);
  if (!fragment) return;
  history.replaceState(history.state, '', window.location.pathname + window.location.search);
  loginFromFragment(fragment);
}

function start() {
  wire();
  // Take the OAuth return (?status=…&provider=…) and a login fragment
  // (#key=…&user=…) out of the address bar before anything else.
  const oauth = parseOAuthReturn(window.location.search);
  const fragment = parseLoginFragment(window.location.hash);
  if (oauth || fragment) {
    const keepSearch = oauth ? '' : window.location.search;
    const keepHash = fragment ? '' : window.location.hash;
    history.replaceState(history.state, '', window.location.pathname + keepSearch + keepHash);
  }
  if (oauth) {
    const name = displayName(oauth.provider) || 'The app';
    pendingBanner = oauth.status === 'success'
      ? { kind: 'success', text: `${name} connected successfully!` }
      : { kind: 'error', text: `${name} was not connected: the authorization failed or was cancelled.` };
  }

  if (fragment) {
    loginFromFragment(fragment);
    return;
  }
  if (session.key() && session.user()) {
    showApp();
    refreshAll();
    return;
  }
  showLogin();
}

start();
