// A small client of the service's public REST API. Every call sends the API
// key in the X-API-Key header (never in a URL) and turns the service's error
// envelope {"success": false, "error": "...", "code": "..."} into an ApiError.

const TIMEOUT_MS = 65_000; // a little over the service's synchronous job timeout

export class ApiError extends Error {
  /**
   * @param {string} message the service's `error` sentence, or a description of the failure
   * @param {{status?: number, code?: string, jobId?: string}} [info]
   */
  constructor(message, { status = 0, code = '', jobId = '' } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.jobId = jobId;
  }
}

/**
 * @param {{getKey: () => string, onUnauthorized?: (err: ApiError) => void}} opts
 */
export function createClient({ getKey, onUnauthorized }) {
  async function request(method, path, { query, body } = {}) {
    const key = getKey();
    if (!key) {
      const err = new ApiError('You are signed out: enter the API key again.', { status: 401, code: 'unauthorized' });
      onUnauthorized?.(err);
      throw err;
    }
    const url = new URL(path, window.location.origin);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
    }
    const headers = { 'X-API-Key': key, Accept: 'application/json' };
    const init = {
      method,
      headers,
      cache: 'no-store',
      credentials: 'same-origin',
      referrerPolicy: 'no-referrer',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }

    let res;
    try {
      res = await fetch(url, init);
    } catch (e) {
      const why = e?.name === 'TimeoutError'
        ? `the service did not answer within ${TIMEOUT_MS / 1000} s`
        : 'the service could not be reached (network error)';
      throw new ApiError(`${method} ${url.pathname} failed: ${why}.`, { code: 'network_error' });
    }

    let text = '';
    try {
      text = await res.text();
    } catch {
      throw new ApiError(`${method} ${url.pathname}: the response was cut off (HTTP ${res.status}).`,
        { status: res.status, code: 'network_error' });
    }
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }

    const failed = !res.ok || (data && typeof data === 'object' && data.success === false);
    if (failed) {
      const message = (data && typeof data.error === 'string' && data.error)
        || `${method} ${url.pathname} failed with HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}.`;
      const err = new ApiError(message, {
        status: res.status,
        code: (data && typeof data.code === 'string') ? data.code : '',
        jobId: (data && typeof data.job_id === 'string') ? data.job_id : '',
      });
      if (res.status === 401) onUnauthorized?.(err);
      throw err;
    }
    if (data === null || typeof data !== 'object') {
      throw new ApiError(`${method} ${url.pathname}: the service sent a response that is not a JSON object (HTTP ${res.status}).`,
        { status: res.status, code: 'bad_response' });
    }
    return data;
  }

  return {
    // Databases
    databaseTypes: () => request('GET', '/api/databases/types'),
    databaseSchema: (dbType) => request('GET', '/api/databases/schema', { query: { db_type: dbType } }),
    testDatabase: (payload) => request('POST', '/api/databases/test', { body: payload }),
    connectDatabase: (payload) => request('POST', '/api/databases/connect', { body: payload }),
    databases: (userId) => request('GET', '/api/databases', { query: { user_id: userId } }),
    disconnectDatabase: (userId, dbId) => request('POST', '/api/databases/disconnect', { body: { user_id: userId, db_id: dbId } }),
    updateDatabase: (userId, dbId, patch) =>
      request('PATCH', `/api/databases/${encodeURIComponent(dbId)}`, { body: { ...patch, user_id: userId } }),
    retestDatabase: (userId, dbId) =>
      request('POST', `/api/databases/${encodeURIComponent(dbId)}/test`, { body: { user_id: userId } }),
    // Integrations (OAuth)
    integrations: () => request('GET', '/api/integrations'),
    connectIntegration: (userId, provider, redirectUrl) =>
      request('POST', '/api/integrations/connect', { body: { user_id: userId, provider, redirect_url: redirectUrl } }),
    connectedIntegrations: (userId) => request('GET', '/api/integrations/connected', { query: { user_id: userId } }),
    disconnectIntegration: (userId, integrationId) =>
      request('POST', '/api/integrations/disconnect', { body: { user_id: userId, integration_id: integrationId } }),
    // Tools
    tools: (userId) => request('GET', '/api/tools', { query: { user_id: userId } }),
    execute: (userId, action, params) => request('POST', '/api/tools/execute', { body: { user_id: userId, action, params } }),
  };
}
