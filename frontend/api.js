// The one way the web app talks to the REST API: a fetch wrapper that adds the bearer token and turns every
// failure (network, HTTP status, malformed body) into an ApiError whose message is words a person can act on.

export const API_BASE = '/api/v1';
const TOKEN_KEY = 'marslabel.token';

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(message, { status = 0, detail = null, body = null } = {}) {
    super(message);
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

function detailText(body, fallback) {
  if (body == null) return fallback;
  if (typeof body === 'string') return body.trim() || fallback;
  const { detail } = body;
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).join('.')}: ${d.msg}`).join('; ');
  return fallback;
}

/** Words for an HTTP failure: what happened, and what to do about it where that is clear. */
export function describeFailure(status, detail, what) {
  const doing = what ? `${what}: ` : '';
  switch (status) {
    case 401:
      return `${doing}your token was not accepted (${detail}). Sign in again with a valid token.`;
    case 403:
      // A role's refusal ("project role client may not …") or this server's ("server-side imports are disabled").
      return `${doing}not allowed: ${detail}.`;
    case 404:
      return `${doing}not found (${detail}).`;
    case 409:
      return `${doing}conflict: ${detail}`;
    case 413:
      return `${doing}too large: ${detail}`;
    case 400:
    case 422:
      return `${doing}the server refused the request: ${detail}`;
    case 501:
      return `${doing}not available on this server: ${detail}`;
    default:
      if (status >= 500) return `${doing}the server failed (HTTP ${status}): ${detail}. Try again; if it persists, tell an admin.`;
      return `${doing}HTTP ${status}: ${detail}`;
  }
}

/**
 * Call the API. `path` is below /api/v1 (or absolute when it starts with /api). Options: method, json (a body
 * sent as JSON), form (FormData), query (object), raw (resolve with the Response, not its JSON), what (words for
 * the action, put in front of any error), signal, accept (extra statuses not to treat as errors).
 */
export async function api(path, { method, json, form, query, raw = false, what, signal, accept = [] } = {}) {
  let url = path.startsWith('/api') ? path : `${API_BASE}${path}`;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== null) params.set(key, value);
    const text = params.toString();
    if (text) url += `${url.includes('?') ? '&' : '?'}${text}`;
  }
  const headers = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  let response;
  try {
    response = await fetch(url, { method: method || (body ? 'POST' : 'GET'), headers, body, signal });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(`${what ? `${what}: ` : ''}cannot reach the server (${error.message}). Check your connection and try again.`);
  }
  if (!response.ok && !accept.includes(response.status)) {
    const text = await response.text().catch(() => '');
    let parsed = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    const detail = detailText(parsed, response.statusText || 'no details');
    throw new ApiError(describeFailure(response.status, detail, what), { status: response.status, detail, body: parsed });
  }
  if (raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') || '';
  if (!type.includes('json')) return response;
  try {
    return await response.json();
  } catch (error) {
    throw new ApiError(`${what ? `${what}: ` : ''}the server sent a malformed answer (${error.message}).`, { status: response.status });
  }
}

/** An object URL for an authenticated binary (image file, thumbnail); the caller revokes it. */
export async function blobUrl(path, { what, query } = {}) {
  const response = await api(path, { raw: true, what, query });
  return URL.createObjectURL(await response.blob());
}

const TERMINAL = new Set(['done', 'failed', 'cancelled']);

/**
 * Follow a job as server-sent events (GET /jobs/{id}/events). An EventSource cannot send the Authorization
 * header, so the SSE body is read with fetch() streaming and parsed here. Calls onJob(job) for every `job`
 * event; resolves with the last job once it is terminal. If the stream breaks before that, it reconnects
 * (after `retryMs`), so a proxy that cuts long answers does not lose the progress.
 */
export async function followJob(jobId, onJob, { signal, retryMs = 1000 } = {}) {
  let last = null;
  for (let attempt = 0; ; attempt += 1) {
    const response = await api(`/jobs/${jobId}/events`, { raw: true, signal, what: `following job ${jobId}` });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let event = { type: 'message', data: [] };
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (signal && signal.aborted) throw error;
        break; // the stream broke: reconnect below
      }
      if (chunk.done) break;
      buffer += chunk.value;
      let newline;
      while ((newline = buffer.search(/\r?\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer[newline] === '\r' ? 2 : 1));
        if (line === '') {
          if (event.data.length) {
            const data = JSON.parse(event.data.join('\n'));
            if (event.type === 'job') {
              last = data;
              onJob(data);
            } else if (event.type === 'error') {
              throw new ApiError(`job ${jobId}: ${data.detail}`);
            }
          }
          event = { type: 'message', data: [] };
        } else if (line.startsWith('event:')) {
          event.type = line.slice(6).trim();
        } else if (line.startsWith('data:')) {
          event.data.push(line.slice(5).replace(/^ /, ''));
        }
      }
    }
    if (last && TERMINAL.has(last.status)) return last;
    if (signal && signal.aborted) throw new DOMException('aborted', 'AbortError');
    await new Promise((resolve) => setTimeout(resolve, retryMs));
  }
}

export function isTerminal(job) {
  return TERMINAL.has(job.status);
}
