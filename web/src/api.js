// REST calls to this server's /v1, with the session's key. Errors are RFC 9457 problem
// documents; they surface as ApiError with the server's title and detail.

const KEY_NAME = "cryptopulse.key";

/** The key of this tab (session storage only: gone when the tab closes). */
export function storedKey() {
  return sessionStorage.getItem(KEY_NAME);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_NAME, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_NAME);
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** GET or send JSON to a same-origin path; returns the parsed body. */
export async function api(path, { method = "GET", body, key = storedKey() } = {}) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await response.text();
  const parsed = text ? safeJson(text) : null;
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Path segment escaping for instrument names like `coinbase:BTC-USD`. */
export function seg(value) {
  return encodeURIComponent(value);
}
