// The consultation's shared studies beside the video in the consultation room: each opens in
// the OHIF reading window (features/reading.js), so the call keeps running in this tab. The
// modalities come from QIDO-RS: a whole-slide study (SM) opens in OHIF's microscopy mode.

import { h } from "../dom.js";
import { fmtDateYear, TZ_OFFSET } from "../format.js";
import { t } from "../i18n.js";
import { toast } from "../ui/components.js";
import { dicomJson, studyFacts } from "./dicomweb.js";
import { openInViewer, viewerMode } from "./reading.js";

/** The QIDO-RS study record of a shared study: {modalities, description, images, date}. */
async function describeStudy(uid) {
  const found = await dicomJson(`/dicomweb/studies?StudyInstanceUID=${encodeURIComponent(uid)}`);
  const s = found[0];
  if (!s) throw new Error(`study ${uid} not found`);
  const f = studyFacts(s);
  return { modalities: f.modalities, description: f.description, images: f.instances,
    date: f.date ? `${f.date}T12:00:00${TZ_OFFSET}` : null };
}

function studyItem(uid) {
  const study = { studyUid: uid, modalities: [] };
  const about = h("span", { class: "study-about" }, t("call.study_loading"));
  const meta = h("span", { class: "muted small" });
  const open = h("button", {
    type: "button", class: "btn btn-sm btn-primary", disabled: true, "aria-busy": "true", dataset: { studyUid: uid },
    onclick: () => {
      if (!openInViewer(study)) toast(t("call.popup_blocked"), "error");
    },
  }, t("call.open_ohif"));
  const ready = (label) => {
    open.disabled = false;
    open.removeAttribute("aria-busy");
    open.dataset.mode = viewerMode(study.modalities);
    open.textContent = open.dataset.mode === "microscopy" ? t("call.open_slide") : t("call.open_ohif");
    open.setAttribute("aria-label", t("call.open_ohif_aria", { about: label }));
  };
  describeStudy(uid).then((d) => {
    study.modalities = d.modalities;
    const label = [d.modalities.join("/"), d.description].filter(Boolean).join(" · ") || uid;
    about.textContent = label;
    meta.textContent = [d.images ? t("call.study_images", { n: d.images }) : null, d.date ? fmtDateYear(d.date) : null].filter(Boolean).join(" · ");
    ready(label);
  }, () => {
    // Unknown to QIDO (or no DICOMweb here): still offer the viewer, which says what it finds.
    about.textContent = t("call.study_unknown");
    uidEl.hidden = false;
    ready(uid);
  });
  // The UID means nothing to a clinician: shown only when the study cannot be described.
  const uidEl = h("code", { class: "uid", hidden: true }, uid);
  return h("li", { dataset: { studyUid: uid }, title: uid },
    h("span", { class: "study-text" }, about, meta, uidEl), open);
}

/** The "Shared studies" panel of the consultation room. */
export function callStudies(c) {
  const uids = c.study_uids || [];
  return h("section", { class: "panel call-studies", id: "call-studies", "aria-labelledby": "call-studies-title" },
    h("h2", { id: "call-studies-title" }, t("call.studies")),
    uids.length ? h("ul", { class: "study-list" }, uids.map(studyItem)) : h("p", { class: "muted" }, t("call.studies_none")),
    uids.length ? h("p", { class: "muted small" }, t("call.reading_window")) : null);
}
