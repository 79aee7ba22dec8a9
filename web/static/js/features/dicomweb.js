// A small DICOMweb client for the viewer: QIDO/metadata as DICOM JSON, rendered images as blobs
// (the bearer token goes in a header, so images are fetched and shown through object URLs).

import { ApiError, session } from "../api.js";

export const PREFIX = "/dicomweb";

/** The first value of a DICOM JSON attribute. */
export function tag(obj, t) {
  const a = obj && obj[t];
  if (!a || !a.Value || !a.Value.length) return undefined;
  const v = a.Value[0];
  return v && typeof v === "object" && "Alphabetic" in v ? v.Alphabetic : v;
}

async function fetchOk(path, accept, signal) {
  let res;
  try {
    res = await fetch(path, { headers: { Authorization: `Bearer ${session.token}`, Accept: accept }, signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "Cannot reach the image server. 无法连接影像服务。");
  }
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    const e = (body && body.error) || {};
    throw new ApiError(res.status, e.code || "http_error", e.message || `The image server answered ${res.status}`, e.details);
  }
  return res;
}

export async function dicomJson(path, signal) {
  const res = await fetchOk(path, "application/dicom+json", signal);
  if (res.status === 204) return [];
  return res.json();
}

export async function imageUrl(path, signal) {
  const res = await fetchOk(path, "image/jpeg", signal);
  return URL.createObjectURL(await res.blob());
}

export const seriesOf = (study) => dicomJson(`${PREFIX}/studies/${study}/series`);
export const seriesMetadata = (study, series) => dicomJson(`${PREFIX}/studies/${study}/series/${series}/metadata`);

export function renderedPath(study, series, sop, frame, { window, viewport } = {}) {
  const base = `${PREFIX}/studies/${study}/series/${series}/instances/${sop}`;
  const q = new URLSearchParams();
  if (window) q.set("window", `${window.center},${window.width}`);
  if (viewport) q.set("viewport", `${viewport[0]},${viewport[1]}`);
  const qs = q.toString();
  return `${frame ? `${base}/frames/${frame}` : base}/rendered${qs ? `?${qs}` : ""}`;
}

export const seriesThumbnailPath = (study, series) => `${PREFIX}/studies/${study}/series/${series}/thumbnail`;

/** VL Whole Slide Microscopy Image Storage: tiled pyramid levels, shown as a tile mosaic. */
export const WSI_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6";
