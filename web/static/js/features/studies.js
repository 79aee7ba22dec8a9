// The "Studies" panel of a consultation: the shared studies (preview here, read in OHIF),
// attaching a stored study with the study picker, and uploading DICOM files: each file is
// STOW-RS'd on its own (three at a time) with a progress bar, and refusals are told per file.

import { ApiError, api, probe } from "../api.js";
import { h, mount } from "../dom.js";
import { errorMessage, t } from "../i18n.js";
import { busy, errorSlot, toast } from "../ui/components.js";
import { openInViewer } from "./reading.js";
import { stowFile, studiesByUid, studyFacts } from "./dicomweb.js";
import { pickStudy, studySummary } from "./studypicker.js";

const PARALLEL = 3;
let dicomweb = null;

/** Whether this server answers DICOMweb (checked once per page load). */
export async function hasDicomweb() {
  if (dicomweb === null) dicomweb = await probe("/dicomweb/studies?limit=1");
  return dicomweb;
}

// STOW-RS failure reasons (PS3.18 Table 10.5.3-2, PS3.7 Annex C) -> message keys.
const REASONS = { 0xC000: "refused_not_dicom", 0x0111: "refused_duplicate", 0xA900: "refused_mismatch",
  0xC122: "refused_syntax", 0x0124: "refused_forbidden", 0x0110: "refused_processing" };
// Whole-request refusals by error code -> message keys.
const CODES = { payload_too_large: "refused_too_large", too_many_parts: "refused_too_large", forbidden: "refused_forbidden",
  unsupported_media_type: "refused_not_dicom", invalid_multipart: "refused_not_dicom", network_error: "refused_network",
  insufficient_storage: "refused_storage", unauthorized: "refused_session" };

/** Why a file was refused, in the user's language. */
export function refusalText(result) {
  if (result instanceof ApiError) {
    const key = CODES[result.code];
    return key ? t(`studies.${key}`) : errorMessage(result);
  }
  const key = REASONS[result.reason];
  return key ? t(`studies.${key}`) : t("studies.refused_other", { message: result.message || String(result.reason) });
}

const sizeText = (bytes) => (bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`);

// The upload of each consultation lives beyond one rendering of the page (the page re-renders
// when the other side changes something, and once the study is shared).
const uploads = new Map();

class Upload {
  constructor(consultation, user, files, onChange) {
    this.c = consultation;
    this.userId = user.id;
    this.onChange = onChange;
    this.state = "running";
    this.cancelled = false;
    this.studies = new Set();
    this.items = files.map((file) => {
      const bar = h("progress", { max: 100, value: 0, "aria-label": file.name });
      const status = h("span", { class: "upload-status small" }, t("studies.file_queued"));
      const row = h("li", { class: "upload-file", "data-testid": "upload-file", dataset: { state: "queued", name: file.name } },
        h("span", { class: "upload-name" }, file.webkitRelativePath || file.name, h("span", { class: "muted small" }, ` ${sizeText(file.size)}`)), bar, status);
      return { file, bar, status, row, loaded: 0, total: file.size + 200, controller: null };
    });
    this.bar = h("progress", { max: 100, value: 0, "data-testid": "upload-overall", "aria-label": t("studies.upload_overall") });
    this.summary = h("p", { class: "small upload-summary", role: "status" });
    this.errors = errorSlot();
    this.cancelBtn = h("button", { type: "button", class: "btn btn-danger-outline btn-sm", "data-testid": "upload-cancel", onclick: () => this.cancel() }, t("studies.upload_cancel"));
    this.dismissBtn = h("button", { type: "button", class: "btn btn-sm", hidden: true, onclick: () => this.dismiss() }, t("studies.upload_dismiss"));
    this.el = h("div", { class: "upload", "data-testid": "upload", dataset: { state: "running" } },
      h("div", { class: "upload-head" }, h("strong", {}, t("studies.upload_overall")), this.bar, this.cancelBtn, this.dismissBtn),
      this.summary, this.errors.el,
      h("ul", { class: "upload-files" }, this.items.map((it) => it.row)));
    this.update();
  }

  update() {
    const total = this.items.reduce((n, it) => n + it.total, 0);
    const loaded = this.items.reduce((n, it) => n + Math.min(it.loaded, it.total), 0);
    this.bar.value = total ? Math.round((loaded / total) * 100) : 0;
    const done = this.items.filter((it) => ["stored", "refused"].includes(it.row.dataset.state)).length;
    const refused = this.items.filter((it) => it.row.dataset.state === "refused").length;
    if (this.state === "running") this.summary.textContent = t("studies.upload_progress", { done, total: this.items.length, percent: this.bar.value });
    return { done, refused };
  }

  mark(it, state, text) {
    it.row.dataset.state = state;
    it.status.textContent = text;
    if (state === "stored" || state === "refused") { it.loaded = it.total; it.bar.value = 100; }
    // Refusals go to the top of the list, where they are seen without scrolling.
    if (state === "refused" && it.row.parentElement) it.row.parentElement.prepend(it.row);
    this.update();
  }

  async send(it) {
    it.controller = new AbortController();
    this.mark(it, "sending", t("studies.file_sending"));
    try {
      const result = await stowFile(it.file, { signal: it.controller.signal, onProgress: (loaded, total) => {
        it.total = total;
        it.loaded = loaded;
        it.bar.value = Math.round((loaded / total) * 100);
        this.update();
      } });
      if (result.ok) {
        if (result.studyUid) this.studies.add(result.studyUid);
        this.mark(it, "stored", t("studies.file_stored"));
      } else {
        this.mark(it, "refused", refusalText(result.failure || { reason: null, message: "" }));
      }
    } catch (err) {
      if (err.name === "AbortError") this.mark(it, "cancelled", t("studies.file_cancelled"));
      else this.mark(it, "refused", refusalText(err));
    } finally {
      it.controller = null;
    }
  }

  async run() {
    const queue = [...this.items];
    const worker = async () => {
      while (!this.cancelled && queue.length) await this.send(queue.shift());
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    const { refused } = this.update();
    const stored = this.items.filter((it) => it.row.dataset.state === "stored").length;
    this.cancelBtn.hidden = true;
    this.dismissBtn.hidden = false;
    if (this.cancelled) {
      for (const it of this.items) if (it.row.dataset.state === "queued") this.mark(it, "cancelled", t("studies.file_not_sent"));
      this.finish("cancelled", t("studies.upload_cancelled", { stored }));
      return;
    }
    if (!this.studies.size) {
      this.finish("failed", t("studies.upload_none_stored", { refused }));
      return;
    }
    try {
      let updated = this.c;
      for (const uid of this.studies) {
        if (!updated.study_uids.includes(uid)) updated = await api.post(`/api/consultations/${this.c.id}/studies`, { study_uid: uid });
      }
      const summary = refused ? t("studies.upload_done_some_refused", { stored, refused }) : t("studies.upload_done", { stored });
      this.finish("done", summary);
      toast(summary, refused ? "error" : "ok");
      this.onChange(updated);
    } catch (err) {
      this.finish("failed", t("studies.upload_not_shared"));
      this.errors.show(err);
    }
  }

  finish(state, text) {
    this.state = state;
    this.el.dataset.state = state;
    this.summary.textContent = text;
  }

  cancel() {
    if (this.state !== "running") return;
    this.cancelled = true;
    this.cancelBtn.disabled = true;
    for (const it of this.items) if (it.controller) it.controller.abort();
  }

  dismiss() {
    if (uploads.get(this.c.id) === this) uploads.delete(this.c.id);
    this.el.remove();
  }
}

function uploadForm(c, user, onChange, slot) {
  // The file inputs are hidden behind buttons labelled in the user's language (the browser's
  // own "Choose files" text follows the browser's language, not ours).
  const files = h("input", { type: "file", name: "dicom_files", multiple: true, class: "pv-file-input", accept: ".dcm,.dicom,application/dicom", "data-testid": "upload-files" });
  const folder = h("input", { type: "file", name: "dicom_folder", webkitdirectory: true, multiple: true, class: "pv-file-input", "data-testid": "upload-folder" });
  files.id = `up-files-${c.id}`;
  folder.id = `up-folder-${c.id}`;
  const chosenText = h("span", { class: "muted small", "aria-live": "polite" }, t("studies.none_chosen"));
  const count = () => {
    const n = files.files.length + folder.files.length;
    chosenText.textContent = n ? t("studies.chosen_count", { n }) : t("studies.none_chosen");
  };
  files.addEventListener("change", count);
  folder.addEventListener("change", count);
  const submit = h("button", { type: "submit", class: "btn btn-primary", "data-testid": "upload-start" }, t("studies.upload_start"));
  const hint = h("p", { class: "muted small" }, t("studies.upload_hint"));
  const form = h("form", { class: "upload-form" },
    files, h("label", { htmlFor: files.id, class: "btn" }, t("studies.upload_files")),
    folder, h("label", { htmlFor: folder.id, class: "btn" }, t("studies.upload_folder")),
    chosenText, submit, hint);
  form.addEventListener("reset", () => queueMicrotask(count));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const chosen = [...files.files, ...folder.files];
    if (!chosen.length) { hint.textContent = t("studies.upload_choose_first"); files.focus(); return; }
    const running = uploads.get(c.id);
    if (running && running.state === "running") return;
    if (running) running.dismiss();
    const up = new Upload(c, user, chosen, onChange);
    uploads.set(c.id, up);
    form.reset();
    mount(slot, up.el);
    up.run();
  });
  return form;
}

export async function studiesPanel(c, user, onChange) {
  const canShare = [c.requester_id, c.expert_id].includes(user.id)
    && !["declined", "cancelled", "expired", "no_show"].includes(c.status);
  const viewer = await hasDicomweb();
  const known = new Map();
  const rows = c.study_uids.map((uid) => {
    const about = h("span", { class: "study-about" });
    const ohif = h("button", { type: "button", class: "btn btn-sm btn-primary", "data-testid": "open-ohif", onclick: () => {
      const f = known.get(uid);
      if (!openInViewer({ studyUid: uid, modalities: f ? f.modalities : [] })) toast(t("viewer.popup_blocked"), "error");
    } }, t("studies.open_ohif"));
    const li = h("li", { dataset: { studyUid: uid } },
      h("span", { class: "study-text" }, about, h("code", { class: "uid" }, uid)),
      viewer ? h("span", { class: "study-actions" },
        h("a", { class: "btn btn-sm", "data-testid": "preview", href: `#/consultations/${c.id}/studies/${uid}` }, t("studies.preview")), ohif) : null);
    return { uid, about, li };
  });
  if (viewer && rows.length) {
    studiesByUid(c.study_uids).then((found) => {
      for (const r of rows) {
        const s = found.get(r.uid);
        if (!s) continue;
        const f = studyFacts(s);
        known.set(r.uid, f);
        r.about.textContent = [f.patient, studySummary(f)].filter(Boolean).join(" · ");
        r.li.dataset.modalities = f.modalities.join(",");
      }
    }, () => {});
  }
  const list = rows.length ? h("ul", { class: "study-list" }, rows.map((r) => r.li)) : h("p", { class: "muted" }, t("studies.none_yet"));
  let attach = null;
  let upload = null;
  if (canShare) {
    const errors = errorSlot();
    const pick = h("button", { type: "button", class: "btn", "data-testid": "attach-study" }, t("studies.attach"));
    pick.addEventListener("click", () => busy(pick, async () => {
      const chosen = await pickStudy({ exclude: c.study_uids });
      if (!chosen) return;
      const updated = await api.post(`/api/consultations/${c.id}/studies`, { study_uid: chosen.uid });
      toast(t("studies.shared_toast"));
      onChange(updated);
    }, errors));
    attach = h("div", { class: "study-attach" }, pick, errors.el);
    if (viewer) {
      const slot = h("div", { class: "upload-slot" });
      const running = uploads.get(c.id);
      if (running && running.userId === user.id) {
        running.c = c;
        running.onChange = onChange;
        slot.append(running.el);
      }
      upload = h("div", { class: "study-upload" }, h("h3", {}, t("studies.upload_title")), uploadForm(c, user, onChange, slot), slot);
    }
  }
  return h("section", { class: "panel", id: "studies-panel", "aria-labelledby": "studies-title" },
    h("h2", { id: "studies-title" }, t("studies.title")),
    list, attach, upload);
}
