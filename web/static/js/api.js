// The JSON API client: bearer token from sessionStorage, errors as ApiError with the server's
// code (shown in the user's language by i18n.errorMessage) and message.

import { has, t } from "./i18n.js";

const TOKEN_KEY = "yilian.token";
const USER_KEY = "yilian.user";

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }

  /** Field-level problems from a validation error, as readable lines in the current language:
   * the field's name from errors.field_<name>, the problem from errors.type_<pydantic type>. */
  get fieldErrors() {
    const errs = Array.isArray(this.details.errors) ? this.details.errors : [];
    return errs.map((e) => {
      const loc = (e.loc || []).map(String).filter((p) => p !== "body" && p !== "query");
      const name = loc.filter((p) => !/^[0-9]+$/.test(p)).pop();
      const field = name && has(`errors.field_${name}`) ? t(`errors.field_${name}`) : (loc.join(".") || t("errors.field_request"));
      const problem = e.type && has(`errors.type_${e.type}`) ? t(`errors.type_${e.type}`) : e.msg;
      return t("errors.field_line", { field, problem });
    });
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
    throw new ApiError(0, "network_error", t("errors.network_error"));
  }
  if (res.status === 204) return null;
  const isJson = (res.headers.get("Content-Type") || "").includes("application/json");
  const data = isJson ? await res.json().catch(() => null) : await res.text();
  if (!res.ok) {
    const e = (data && data.error) || {};
    const error = new ApiError(res.status, e.code || "http_error",
      e.message || t("errors.http_status", { status: res.status }), e.details);
    error.fromServer = true; // its message is the server's wording; errors.<code> is the user's
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
