// A small DICOMweb client for our pages: QIDO searches and metadata as DICOM JSON, rendered
// images as blobs (the bearer token goes in a header, never in a URL), and STOW-RS uploads of
// single files with upload progress (XMLHttpRequest: fetch has no upload progress).

import { ApiError, session } from "../api.js";
import { t } from "../i18n.js";

export const PREFIX = "/dicomweb";

/** VL Whole Slide Microscopy Image Storage: read in OHIF's microscopy mode. */
export const WSI_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6";

/** The first value of a DICOM JSON attribute (a person name as its alphabetic form). */
export function tag(obj, t0) {
  const a = obj && obj[t0];
  if (!a || !a.Value || !a.Value.length) return undefined;
  const v = a.Value[0];
  return v && typeof v === "object" && "Alphabetic" in v ? v.Alphabetic : v;
}

/** Every value of a DICOM JSON attribute. */
export function tags(obj, t0) {
  const a = obj && obj[t0];
  return a && Array.isArray(a.Value) ? a.Value : [];
}

/** A number attribute, or undefined. */
export function num(obj, t0) {
  const v = tag(obj, t0);
  if (v === undefined || v === null || v === "") return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** "Chen^Guilan" -> "Chen Guilan". */
export const personName = (v) => (v ? String(v).replace(/\^+/g, " ").trim() : "");

/** "20261130" -> "2026-11-30". */
export const dicomDate = (v) => (v && /^[0-9]{8}$/.test(v) ? `${v.slice(0, 4)}-${v.slice(4, 6)}-${v.slice(6, 8)}` : "");

async function errorOf(res) {
  const body = await res.json().catch(() => null);
  const e = (body && body.error) || {};
  return new ApiError(res.status, e.code || "http_error", e.message || t("viewer.server_answered", { status: res.status }), e.details);
}

/** GET a DICOMweb resource with the session's token; rejects with ApiError unless it is 2xx. */
export async function fetchOk(path, accept, signal) {
  let res;
  try {
    res = await fetch(path, { headers: { Authorization: `Bearer ${session.token}`, Accept: accept }, signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", t("viewer.unreachable"));
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

export async function dicomJson(path, signal) {
  const res = await fetchOk(path, "application/dicom+json", signal);
  if (res.status === 204) return [];
  return res.json();
}

/** A rendered image as a Blob. */
export async function imageBlob(path, signal) {
  const res = await fetchOk(path, "image/jpeg", signal);
  return res.blob();
}

/** A rendered image as an object URL (the caller revokes it). */
export async function imageUrl(path, signal) {
  return URL.createObjectURL(await imageBlob(path, signal));
}

const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
};

/** QIDO-RS study search (the server answers newest first). */
export const searchStudies = (params, signal) => dicomJson(`${PREFIX}/studies${query(params)}`, signal);
export const seriesOf = (study) => dicomJson(`${PREFIX}/studies/${study}/series`);
export const seriesMetadata = (study, series) => dicomJson(`${PREFIX}/studies/${study}/series/${series}/metadata`);

/** The QIDO records of some studies, by Study Instance UID (one request). */
export async function studiesByUid(uids) {
  if (!uids.length) return new Map();
  const found = await searchStudies({ StudyInstanceUID: uids.join(","), limit: uids.length });
  return new Map(found.map((s) => [tag(s, "0020000D"), s]));
}

/** The facts a list shows about a study, from its QIDO record. */
export function studyFacts(s) {
  return {
    uid: tag(s, "0020000D"),
    patient: personName(tag(s, "00100010")),
    patientId: tag(s, "00100020") || "",
    date: dicomDate(tag(s, "00080020")),
    modalities: tags(s, "00080061").filter(Boolean),
    description: tag(s, "00081030") || "",
    series: num(s, "00201206"),
    instances: num(s, "00201208"),
  };
}

const instancePath = (study, series, sop) => `${PREFIX}/studies/${study}/series/${series}/instances/${sop}`;

/** PS3.18 rendered resource of an instance or frame; `window` {center, width} is rendered by
 * the server (the window= query parameter), `viewport` [w, h] bounds the image. */
export function renderedPath(study, series, sop, frame, { window, viewport } = {}) {
  const base = instancePath(study, series, sop);
  const q = new URLSearchParams();
  if (window) q.set("window", `${Math.round(window.center)},${Math.max(1, Math.round(window.width))}`);
  if (viewport) q.set("viewport", `${viewport[0]},${viewport[1]}`);
  const qs = q.toString();
  return `${frame ? `${base}/frames/${frame}` : base}/rendered${qs ? `?${qs}` : ""}`;
}

export const seriesThumbnailPath = (study, series) => `${PREFIX}/studies/${study}/series/${series}/thumbnail`;

/**
 * STOW-RS one file (its own request, so each file gets its own progress and answer).
 * `onProgress(loaded, total)` follows the upload; `signal` aborts it. Resolves to
 * {ok, studyUid, failure: {reason, message} | null, status}; rejects with ApiError when the server
 * refuses the request itself (413, 403, 415...) or the network fails, and with an AbortError.
 */
export function stowFile(file, { onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const boundary = `yilian-${crypto.randomUUID()}`;
    const body = new Blob([`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, file, `\r\n--${boundary}--\r\n`]);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${PREFIX}/studies`);
    xhr.setRequestHeader("Authorization", `Bearer ${session.token}`);
    xhr.setRequestHeader("Accept", "application/dicom+json");
    xhr.setRequestHeader("Content-Type", `multipart/related; type="application/dicom"; boundary=${boundary}`);
    xhr.responseType = "text";
    const abort = () => xhr.abort();
    if (signal) {
      if (signal.aborted) { reject(new DOMException("aborted", "AbortError")); return; }
      signal.addEventListener("abort", abort, { once: true });
    }
    const done = () => signal && signal.removeEventListener("abort", abort);
    xhr.upload.onprogress = (ev) => { if (onProgress) onProgress(ev.loaded, ev.lengthComputable ? ev.total : body.size); };
    xhr.onabort = () => { done(); reject(new DOMException("aborted", "AbortError")); };
    xhr.onerror = () => { done(); reject(new ApiError(0, "network_error", t("viewer.unreachable"))); };
    xhr.onload = () => {
      done();
      let doc = null;
      try { doc = JSON.parse(xhr.responseText); } catch { doc = null; }
      if (doc && doc.error) { reject(new ApiError(xhr.status, doc.error.code, doc.error.message, doc.error.details)); return; }
      if (!doc || (xhr.status !== 200 && xhr.status !== 202 && xhr.status !== 409)) {
        reject(new ApiError(xhr.status, xhr.status === 413 ? "payload_too_large" : "http_error", t("viewer.server_answered", { status: xhr.status })));
        return;
      }
      const stored = tags(doc, "00081199");
      const refused = tags(doc, "00081198");
      const url = stored.length ? tag(stored[0], "00081190") || "" : "";
      const m = url.match(/\/studies\/([0-9.]+)/);
      const failure = refused.length ? { reason: num(refused[0], "00081197"), message: tag(refused[0], "00000902") || "" } : null;
      if (onProgress) onProgress(body.size, body.size);
      resolve({ ok: stored.length > 0 && !failure, studyUid: m ? m[1] : null, failure, status: xhr.status });
    };
    xhr.send(body);
  });
}
