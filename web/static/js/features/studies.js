// The "Studies" panel: DICOM studies shared with the consultation, and sharing another one.
// When the server offers DICOMweb (/dicomweb), each study links to the image viewer.

import { ApiError, api, probe, session } from "../api.js";
import { field, h } from "../dom.js";
import { dicomJson, tag } from "./dicomweb.js";
import { busy, errorSlot, toast } from "../ui/components.js";

const UID_RE = /^[0-9]+(\.[0-9]+)*$/;
let dicomweb = null;

/** Whether this server answers DICOMweb (checked once per page load). */
export async function hasDicomweb() {
  if (dicomweb === null) dicomweb = await probe("/dicomweb/studies?limit=1");
  return dicomweb;
}

/** Store DICOM files by STOW-RS; returns the study UIDs stored and the per-file failures. */
export async function stowFiles(files) {
  const boundary = `yilian-${crypto.randomUUID()}`;
  const parts = [];
  for (const f of files) {
    parts.push(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, f, "\r\n");
  }
  parts.push(`--${boundary}--\r\n`);
  let res;
  try {
    res = await fetch("/dicomweb/studies", {
      method: "POST",
      headers: { Authorization: `Bearer ${session.token}`, Accept: "application/dicom+json",
        "Content-Type": `multipart/related; type="application/dicom"; boundary=${boundary}` },
      body: new Blob(parts),
    });
  } catch {
    throw new ApiError(0, "network_error", "The upload did not reach the server. 上传失败。");
  }
  const doc = await res.json().catch(() => null);
  if (doc && doc.error) throw new ApiError(res.status, doc.error.code, doc.error.message, doc.error.details);
  if (!doc) throw new ApiError(res.status, "http_error", `The image server answered ${res.status}`);
  const stored = new Set();
  for (const item of (doc["00081199"] && doc["00081199"].Value) || []) {
    const url = tag(item, "00081190") || "";
    const m = url.match(/\/studies\/([0-9.]+)/);
    if (m) stored.add(m[1]);
  }
  const failed = ((doc["00081198"] && doc["00081198"].Value) || []).map((item) => tag(item, "00000902") || "refused");
  return { studies: [...stored], failed };
}

function uploadForm(c, onChange) {
  const errors = errorSlot();
  const input = h("input", { type: "file", name: "dicom_files", multiple: true, accept: ".dcm,.dicom,application/dicom", required: true });
  const submit = h("button", { type: "submit", class: "btn" }, "Upload and share 上传并共享");
  const status = h("p", { class: "muted small", role: "status" });
  const form = h("form", { class: "inline-form" }, field("DICOM files from this computer 本地影像文件", input), submit, status, errors.el);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!input.files.length) { input.reportValidity(); return; }
    busy(submit, async () => {
      const files = [...input.files];
      status.textContent = `Uploading ${files.length} file${files.length === 1 ? "" : "s"}… 正在上传`;
      const { studies, failed } = await stowFiles(files);
      status.textContent = "";
      if (!studies.length) throw new ApiError(409, "stow_failed", `No file was stored: ${failed.join("; ") || "refused"}`);
      let updated = c;
      for (const uid of studies) {
        if (!updated.study_uids.includes(uid)) updated = await api.post(`/api/consultations/${c.id}/studies`, { study_uid: uid });
      }
      toast(failed.length ? `Shared ${studies.length} study; ${failed.length} file(s) refused: ${failed.join("; ")}` : "Images uploaded and shared. 影像已上传并共享", failed.length ? "error" : "ok");
      onChange(updated);
    }, errors);
  });
  return form;
}

/** "CT · Chest · 12 images · 2026-11-20" from the study's QIDO-RS record. */
async function describeStudy(uid) {
  const found = await dicomJson(`/dicomweb/studies?StudyInstanceUID=${encodeURIComponent(uid)}`);
  const s = found[0];
  if (!s) return "";
  const modalities = (s["00080061"] && s["00080061"].Value) || [];
  const date = tag(s, "00080020");
  const count = tag(s, "00201208");
  return [modalities.join("/"), tag(s, "00081030"), count ? `${count} image${count === 1 ? "" : "s"}` : null,
    date ? `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}` : null].filter(Boolean).join(" · ");
}

export async function studiesPanel(c, user, onChange) {
  const canShare = [c.requester_id, c.expert_id].includes(user.id)
    && !["declined", "cancelled", "expired", "no_show"].includes(c.status);
  const viewer = await hasDicomweb();
  const list = c.study_uids.length
    ? h("ul", { class: "study-list" }, c.study_uids.map((uid) => {
      const about = h("span", { class: "study-about" });
      if (viewer) describeStudy(uid).then((text) => { about.textContent = text; }, () => {});
      return h("li", { dataset: { studyUid: uid } },
        h("span", { class: "study-text" }, about, h("code", { class: "uid" }, uid)),
        viewer ? h("a", { class: "btn btn-sm", href: `#/consultations/${c.id}/studies/${uid}` }, "Open viewer 阅片") : null);
    }))
    : h("p", { class: "muted" }, "No studies shared yet. 暂无共享影像");
  let form = null;
  if (canShare) {
    const errors = errorSlot();
    const input = h("input", { name: "study_uid", required: true, pattern: "[0-9]+(\\.[0-9]+)*", maxlength: 64, spellcheck: "false", placeholder: "1.2.840.…" });
    const submit = h("button", { type: "submit", class: "btn" }, "Share study 共享");
    form = h("form", { class: "inline-form" }, field("Or share a stored study by its Study Instance UID 按检查UID共享", input), submit, errors.el);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (!UID_RE.test(input.value.trim())) { input.reportValidity(); return; }
      busy(submit, async () => {
        const updated = await api.post(`/api/consultations/${c.id}/studies`, { study_uid: input.value.trim() });
        toast("Study shared. 影像已共享");
        onChange(updated);
      }, errors);
    });
  }
  const upload = canShare && viewer ? uploadForm(c, onChange) : null;
  return h("section", { class: "panel", id: "studies-panel", "aria-labelledby": "studies-title" },
    h("h2", { id: "studies-title" }, "Studies ", h("span", { class: "zh" }, "影像与切片")),
    list, upload, form);
}
