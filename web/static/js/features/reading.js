// Opening a shared study in the OHIF Viewer served at /ohif/ — the reading workstation.
// OHIF signs in with this tab's Yilian session: it reads the token from sessionStorage, so it
// must be opened with window.open (which copies sessionStorage to the new window) or
// location.assign, never a target=_blank link (noopener leaves the copy empty). No token ever
// goes into the URL.

import { locale } from "../i18n.js";
import { isEcgStudy } from "./ecg.js";

/** The OHIF mode for a study: microscopy for whole-slide images (modality SM), else the viewer. */
export function viewerMode(modalities) {
  const list = Array.isArray(modalities) ? modalities : String(modalities || "").split(/[\\,\s]+/);
  return list.includes("SM") ? "microscopy" : "viewer";
}

/** The OHIF address of a study, in the user's language where OHIF has it. */
export function viewerUrl({ studyUid, modalities }) {
  const q = new URLSearchParams({ StudyInstanceUIDs: studyUid, lng: locale() === "en" ? "en-US" : "zh" });
  return `/ohif/${viewerMode(modalities)}?${q}`;
}

/** Open the study in the reading window (one window, reused): OHIF, or for an ECG our ECG
 * page, which draws the waveform on the standard grid (OHIF has no waveform display). */
export function openInViewer(study) {
  const url = isEcgStudy(study.modalities) ? `/#/ecg/${study.studyUid}` : viewerUrl(study);
  const win = window.open(url, "yilian-reading");
  if (win) win.focus();
  return win;
}
