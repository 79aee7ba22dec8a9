// The ECG page (#/ecg/<study>): a study's 12-lead ECG on the standard sheet, opened from the
// consultation and referral pages and wherever openInViewer meets an ECG study.

import { h, mount } from "../dom.js";
import { t } from "../i18n.js";
import { renderEcg } from "../features/ecg.js";
import { searchStudies, studyFacts } from "../features/dicomweb.js";
import { loading } from "../ui/components.js";

export async function render({ root, params, onCleanup, isCurrent }) {
  const study = params.uid;
  mount(root, loading(t("ecg.loading")));
  const controller = new AbortController();
  onCleanup(() => controller.abort());
  const [record] = await searchStudies({ StudyInstanceUID: study, limit: 1 }, controller.signal);
  if (!isCurrent()) return;
  const facts = record ? studyFacts(record) : null;
  const back = h("button", { type: "button", class: "btn", onclick: () => (history.length > 1 ? history.back() : window.close()) }, t("ecg.back"));
  const body = h("div", { class: "ecg-page", "data-testid": "ecg-view" });
  mount(root,
    h("div", { class: "page-header" }, h("h1", { tabindex: "-1" }, t("ecg.title")), h("div", { class: "page-actions" }, back)),
    facts ? h("p", { class: "muted" }, [facts.patient, facts.patientId].filter(Boolean).join(" · "), " · ", h("code", { class: "uid" }, study)) : null,
    record ? body : h("div", { class: "empty" }, h("p", {}, t("ecg.not_found"))));
  if (!record) return;
  const ecg = await renderEcg(body, { studyUid: study, signal: controller.signal });
  onCleanup(ecg.destroy);
}
