// The JSON API client: bearer token from sessionStorage, errors as ApiError with the server's message.

const TOKEN_KEY = "yilian.token";
const USER_KEY = "yilian.user";

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }

  /** Field-level problems from a validation error, as readable lines. */
  get fieldErrors() {
    const errs = Array.isArray(this.details.errors) ? this.details.errors : [];
    return errs.map((e) => `${(e.loc || []).filter((p) => p !== "body").join(".") || "request"}: ${e.msg}`);
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  get user() {
    const raw = sessionStorage.getItem(USER_KEY);
    try { return raw ? JSON.parse(raw) : null; } catch { return null; }
  },
  save(token, user) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(USER_KEY, JSON.stringify(user));
  },
  clear() {
    for (const key of Object.keys(sessionStorage)) {
      if (key.startsWith("yilian.")) sessionStorage.removeItem(key);
    }
  },
};

function buildUrl(path, query) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  return url;
}

/** Call the API; resolves to the JSON body (null for 204), rejects with ApiError. */
export async function request(method, path, { body, query, auth = true, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth && session.token) headers.Authorization = `Bearer ${session.token}`;
  let res;
  try {
    res = await fetch(buildUrl(path, query), {
      method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "Cannot reach the Yilian server. Check the network connection and try again. 无法连接服务器。");
  }
  if (res.status === 204) return null;
  const isJson = (res.headers.get("Content-Type") || "").includes("application/json");
  const data = isJson ? await res.json().catch(() => null) : await res.text();
  if (!res.ok) {
    const e = (data && data.error) || {};
    const error = new ApiError(res.status, e.code || "http_error",
      e.message || `The server answered ${res.status} ${res.statusText}`, e.details);
    if (res.status === 401 && auth) window.dispatchEvent(new CustomEvent("yilian:unauthorized", { detail: error }));
    throw error;
  }
  return data;
}

export const api = {
  get: (path, query, opts) => request("GET", path, { query, ...opts }),
  post: (path, body, opts) => request("POST", path, { body: body === undefined ? {} : body, ...opts }),
  put: (path, body, opts) => request("PUT", path, { body, ...opts }),
};

/** Whether an optional subsystem's route answers (a 404 means it is not installed here). */
export async function probe(path) {
  try {
    const res = await fetch(path, { headers: { Authorization: `Bearer ${session.token}`, Accept: "application/json" } });
    return res.status !== 404 && res.status !== 405 && res.status < 500;
  } catch {
    return false;
  }
}
