// Unit tests of the page's pure rules (web/static/lib.js), in plain Node:
//   node --test web/e2e/lib.test.mjs

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  cellText, checkLines, columnsOf, databasePayload, displayName, initialParams, isRowArray,
  parseLoginFragment, parseOAuthReturn, parseParams, safeHttpUrl, savedValue,
} from '../static/lib.js';

const pgFields = [
  { name: 'connection_name', label: 'Connection Name', type: 'text', required: true },
  { name: 'host', label: 'Host', type: 'text', required: true },
  { name: 'port', label: 'Port', type: 'number', default: 5432 },
  { name: 'database', label: 'Database Name', type: 'text', required: true },
  { name: 'username', label: 'Username', type: 'text', required: true },
  { name: 'password', label: 'Password', type: 'password', required: true },
  { name: 'ssl', label: 'SSL Required', type: 'checkbox', default: false },
];

describe('databasePayload', () => {
  it('sends numbers as numbers, checkboxes as booleans, and the name twice', () => {
    const values = { connection_name: ' My DB ', host: ' db.example.com ', port: '5433', database: 'c',
      username: 'u', password: ' secret ', ssl: true };
    const { payload, invalid } = databasePayload('postgres', pgFields, (f) => values[f.name]);
    assert.equal(invalid, null);
    assert.deepEqual(payload, {
      db_type: 'postgres', connection_name: 'My DB', name: 'My DB', host: 'db.example.com', port: 5433,
      database: 'c', username: 'u', password: ' secret ', ssl: true,
    });
  });

  it('leaves out empty inputs and keeps unchecked boxes as false', () => {
    const { payload } = databasePayload('postgres', pgFields, (f) => (f.type === 'checkbox' ? false : ''));
    assert.deepEqual(payload, { db_type: 'postgres', ssl: false });
  });

  it('reports a number field that is not a number', () => {
    const { invalid } = databasePayload('postgres', pgFields, (f) => (f.name === 'port' ? '12ab' : 'x'));
    assert.equal(invalid, 'port');
  });
});

describe('initialParams', () => {
  it('fills required properties from input_schema', () => {
    const tool = { input_schema: { type: 'object', properties: { query: { type: 'string' }, max_rows: { type: 'integer' } }, required: ['query'] } };
    assert.deepEqual(initialParams(tool), { query: '' });
  });

  it('keeps optional properties that declare a default, and types the rest', () => {
    const tool = { input_schema: { type: 'object', required: ['n', 'b', 'a', 'o'], properties: {
      n: { type: 'integer' }, b: { type: 'boolean' }, a: { type: 'array' }, o: { type: 'object' },
      limit: { type: 'integer', default: 10 }, skip: { type: 'integer' } } } };
    assert.deepEqual(initialParams(tool), { n: 0, b: false, a: [], o: {}, limit: 10 });
  });

  it('uses every property when none is required, and the parameters map without a schema', () => {
    assert.deepEqual(initialParams({ input_schema: { properties: { a: { type: 'string' } } } }), { a: '' });
    assert.deepEqual(initialParams({ parameters: { recipient_email: 'string', subject: 'string' } }),
      { recipient_email: '', subject: '' });
    assert.deepEqual(initialParams({}), {});
  });
});

describe('parseParams', () => {
  it('accepts an object, and empty text as {}', () => {
    assert.deepEqual(parseParams('{"query":"SELECT 1"}'), { params: { query: 'SELECT 1' } });
    assert.deepEqual(parseParams('  '), { params: {} });
  });

  it('refuses invalid JSON and non-objects', () => {
    assert.match(parseParams('{"query": ').error, /not valid JSON/);
    assert.match(parseParams('[1]').error, /JSON object/);
    assert.match(parseParams('null').error, /JSON object/);
  });
});

describe('result tables', () => {
  it('takes the union of keys in first-seen order', () => {
    const rows = [{ b: 1, a: 2 }, { c: 3, a: 4 }];
    assert.equal(isRowArray(rows), true);
    assert.deepEqual(columnsOf(rows), ['b', 'a', 'c']);
  });

  it('is not a table for scalars, mixed arrays or an empty array', () => {
    assert.equal(isRowArray([]), false);
    assert.equal(isRowArray([1, 2]), false);
    assert.equal(isRowArray([{ a: 1 }, [1]]), false);
    assert.equal(isRowArray({ a: 1 }), false);
  });

  it('writes nested values as JSON', () => {
    assert.equal(cellText({ x: [1, 'y'] }), '{"x":[1,"y"]}');
    assert.equal(cellText(null), 'null');
    assert.equal(cellText(undefined), '');
    assert.equal(cellText(false), 'false');
  });
});

describe('address bar', () => {
  it('reads the login fragment', () => {
    assert.deepEqual(parseLoginFragment('#key=a%2Bb&user=user_1'), { key: 'a+b', user: 'user_1' });
    assert.equal(parseLoginFragment('#section'), null);
    assert.equal(parseLoginFragment(''), null);
  });

  it('reads the OAuth return', () => {
    assert.deepEqual(parseOAuthReturn('?status=success&provider=gmail'), { status: 'success', provider: 'gmail' });
    assert.deepEqual(parseOAuthReturn('?status=failed&provider=slack'), { status: 'failed', provider: 'slack' });
    assert.equal(parseOAuthReturn('?status=maybe'), null);
  });

  it('only navigates to http(s) URLs', () => {
    assert.equal(safeHttpUrl('https://x.example/a?b=1'), 'https://x.example/a?b=1');
    assert.equal(safeHttpUrl('javascript:alert(1)'), null);
    assert.equal(safeHttpUrl('not a url'), null);
  });

  it('names providers', () => {
    assert.equal(displayName('gmail'), 'Gmail');
    assert.equal(displayName('postgres'), 'PostgreSQL');
    assert.equal(displayName('acme'), 'Acme');
    assert.equal(displayName('acme', { acme: 'ACME Corp' }), 'ACME Corp');
  });
});

describe('savedValue', () => {
  const saved = { db_id: 'db_1', name: 'Shop', host: 'h.example', port: 5433, database: 'c', username: 'u',
    ssl: true, allow_writes: false, status: 'connected' };
  it('fills the form from the saved database, never a secret', () => {
    const got = Object.fromEntries(pgFields.map((f) => [f.name, savedValue(saved, f)]));
    assert.deepEqual(got, { connection_name: 'Shop', host: 'h.example', port: '5433', database: 'c', username: 'u',
      password: '', ssl: true });
    assert.equal(savedValue(saved, { name: 'connection_string', type: 'password' }), '');
  });
  it('leaves a field the database lacks to its default, and a box unchecked', () => {
    assert.equal(savedValue({}, { name: 'port', type: 'number' }), undefined);
    assert.equal(savedValue({}, { name: 'allow_writes', type: 'checkbox' }), false);
  });
  it('a saved database edited through the form sends no empty password', () => {
    const { payload } = databasePayload('postgres', pgFields, (f) => savedValue(saved, f) ?? '');
    assert.equal('password' in payload, false);
    assert.equal(payload.name, 'Shop');
  });
});

describe('checkLines', () => {
  const fmt = (v) => `<${v}>`;
  it('says when a database was not tested yet', () => {
    assert.deepEqual(checkLines({ status: 'connected' }, fmt), ['Status: connected (not tested yet)']);
  });
  it('shows the time of the last test and, when it failed, its error', () => {
    assert.deepEqual(checkLines({ status: 'connected', last_checked_at: 't1' }, fmt), ['Status: connected (tested <t1>)']);
    assert.deepEqual(checkLines({ status: 'error', last_checked_at: 't2', last_error: 'Connection failed: refused' }, fmt),
      ['Status: error (tested <t2>)', 'Last error: Connection failed: refused']);
  });
});
