// The consultation report: view the current and earlier versions; the expert writes a draft,
// signs it with the password re-entered (the version is then frozen), and corrects a signed
// report with a new version. The printed report is a layout of its own (.print-report, shown
// only by print.css): institutions, patient, question, the report, the signer and a signature
// area, with a draft watermark while unsigned.

import { ApiError, api, session } from "../api.js";
import { field, h, mount } from "../dom.js";
import { TZ_OFFSET, fmtDateTimeYear, fmtDateYear, patientLine, term } from "../format.js";
import { errorMessage, has, t } from "../i18n.js";
import { store } from "../store.js";
import { busy, errorSlot, loading, toast } from "../ui/components.js";
import { formDialog } from "../ui/dialog.js";

const SECTIONS = ["findings", "impression", "recommendations"];

/** An error as a message in the current language, with this feature's own texts first. */
export function reportError(err) {
  const code = err && err.code;
  if (code && has(`report.error_${code}`)) return t(`report.error_${code}`, (err && err.details) || {});
  return errorMessage(err);
}

// The dialogs and slots show an error's message: give them the localised one, same code.
const localised = (err) => (err instanceof ApiError ? new ApiError(err.status, err.code, reportError(err), err.details) : err);

function institutionName(id) {
  if (!id) return "—";
  return store.institutionName(id);
}

function signerLine(v) {
  return [v.signer_name, v.signer_title].filter(Boolean).join(" · ");
}

function versionMeta(v, c) {
  if (!v.signed) return t("report.meta_draft", { version: v.version, author: store.personName(v.author_id, c) });
  return t("report.meta_signed", {
    version: v.version, signer: v.signer_name || store.personName(v.signed_by_id, c), at: fmtDateTimeYear(v.signed_at),
  });
}

function versionView(v) {
  return h("div", { class: "report-version" },
    SECTIONS.map((key) => h("section", { class: "report-section" },
      h("h4", {}, t(`report.section_${key}`)),
      h("p", { class: ["prewrap", !v[key] && "muted"], dataset: { field: key } }, v[key] || "—"))));
}

function signatureBadges(v) {
  if (!v.signed) return null;
  return h("span", { class: "report-signer small" },
    signerLine(v), v.signer_institution ? ` · ${v.signer_institution}` : "",
    v.signed_with_password ? h("span", { class: "esign", title: t("report.esign_verified_hint") }, " · ✓ ", t("report.esign_verified")) : null);
}

/** Renders the report panel into `el`; `onChange()` is called when the report state changes. */
export async function renderReport(el, c, { canWrite, onChange }) {
  mount(el, loading(t("report.loading")));
  let report = null;
  if (c.report_status !== "none") {
    try {
      report = await api.get(`/api/consultations/${c.id}/report`);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw localised(err);
    }
  }
  // Only the expert sees an unsigned draft: the server gives everyone else signed versions only.
  const visible = report ? report.versions : [];
  const current = visible.length ? visible[visible.length - 1] : null;
  const earlier = visible.slice(0, -1).reverse();
  const drafting = !canWrite && c.report_status === "draft";
  const parts = [];

  if (current) {
    parts.push(h("div", { class: ["report-current", current.signed ? "signed" : "draft"], dataset: { version: current.version } },
      h("div", { class: "report-meta" },
        h("span", { class: `badge ${current.signed ? "status-completed" : "status-requested"}` }, t(current.signed ? "report.badge_signed" : "report.badge_draft")),
        h("span", {}, versionMeta(current, c)),
        current.corrects_version ? h("span", { class: "muted" }, t("report.corrects", { version: current.corrects_version })) : null,
        h("button", { type: "button", class: "btn btn-sm no-print report-print-btn", onclick: () => window.print() },
          t(current.signed ? "report.print" : "report.print_draft"))),
      signatureBadges(current),
      versionView(current)));
    parts.push(printLayout(c, current));
  } else if (!canWrite) {
    parts.push(h("p", { class: "muted" }, t(drafting ? "report.drafting" : "report.none_yet")));
  }
  if (current && drafting) parts.push(h("p", { class: "muted small" }, t("report.drafting_correction")));

  if (canWrite) {
    const editing = !current || !current.signed;
    const editor = reportEditor(c, current, async () => onChange());
    if (editing) parts.push(editor);
    else {
      editor.hidden = true;
      const correct = h("button", { type: "button", class: "btn", onclick: () => {
        editor.hidden = false;
        correct.hidden = true;
        editor.querySelector("textarea").focus();
      } }, t("report.write_correction"));
      parts.push(h("div", { class: "report-correct" },
        h("p", { class: "muted small" }, t("report.frozen_hint")), correct), editor);
    }
  }

  if (earlier.length) {
    parts.push(h("div", { class: "report-history" },
      h("h4", {}, t("report.earlier_versions")),
      earlier.map((v) => h("details", { class: "version", dataset: { version: v.version } },
        h("summary", {}, versionMeta(v, c)), signatureBadges(v), versionView(v)))));
  }
  mount(el, parts);
}

function reportEditor(c, current, onChange) {
  const errors = errorSlot();
  const draft = current && !current.signed;
  const correcting = current && current.signed;
  const inputs = Object.fromEntries(SECTIONS.map((key) => [key, h("textarea", {
    name: key, rows: key === "impression" ? 3 : 5, maxlength: key === "impression" ? 4000 : 20000,
    required: key === "impression", value: current ? current[key] : "",
  })]));
  const status = h("p", { class: "muted small", role: "status" },
    draft ? t("report.draft_saved_at", { at: fmtDateTimeYear(current.created_at) }) : correcting ? t("report.correcting_hint") : "");
  const body = () => Object.fromEntries(SECTIONS.map((key) => [key, inputs[key].value.trim()]));
  const requireImpression = (b) => {
    if (!b.impression) throw new ApiError(0, "validation_error", t("report.impression_required"));
  };
  const save = async () => {
    const b = body();
    requireImpression(b);
    try {
      return await api.post(`/api/consultations/${c.id}/report`, b);
    } catch (err) {
      throw localised(err);
    }
  };
  const saveBtn = h("button", { type: "button", class: "btn", onclick: () => busy(saveBtn, async () => {
    await save();
    toast(t("report.draft_saved"));
    await onChange();
  }, errors) }, t("report.save_draft"));
  const signBtn = h("button", { type: "button", class: "btn btn-primary", onclick: () => busy(signBtn, async () => {
    const b = body();
    requireImpression(b);
    // The version this signature freezes: the draft's, or the next one for a correction.
    const version = !current ? 1 : current.signed ? current.version + 1 : current.version;
    let saved = false;
    const signed = await signDialog(c, version, b.impression, async () => { await save(); saved = true; });
    if (signed) toast(t("report.signed_toast", { version: signed.current.version }));
    // Signed, or saved as a draft on the way to a signature that did not happen: show it.
    if (signed || saved) await onChange();
  }, errors) }, t("report.sign"));
  return h("form", { class: "report-editor", "aria-label": t("report.editor_label"), onsubmit: (e) => e.preventDefault(),
    // Unsaved text: the page must not be redrawn under the expert's hands.
    oninput: (e) => { e.currentTarget.dataset.dirty = "true"; } },
    SECTIONS.map((key) => field(`${t(`report.section_${key}`)}${key === "impression" ? " *" : ""}`, inputs[key], { wide: true })),
    status, errors.el,
    h("div", { class: "form-actions" }, saveBtn, signBtn));
}

/** Show what will be signed and ask for the password again; resolves to the signed report or null. */
function signDialog(c, version, impression, save) {
  const password = h("input", { type: "password", name: "password", required: true, maxlength: 256, autocomplete: "current-password" });
  const me = session.user;
  const summary = h("dl", { class: "facts sign-summary" },
    h("dt", {}, t("report.sign_version")), h("dd", { dataset: { field: "version" } }, t("report.version_n", { version })),
    version > 1 ? [h("dt", {}, t("report.sign_corrects")), h("dd", {}, t("report.version_n", { version: version - 1 }))] : null,
    h("dt", {}, t("report.section_impression")), h("dd", { class: "prewrap", dataset: { field: "impression" } }, impression),
    h("dt", {}, t("report.sign_as")), h("dd", {}, me ? me.display_name : "—"));
  return formDialog({
    title: t("report.sign_title"),
    submitLabel: t("report.sign_submit"),
    body: [
      summary,
      h("p", { class: "small" }, t("report.sign_warning")),
      field(t("report.password"), password, { wide: true, hint: t("report.password_hint") }),
    ],
    onSubmit: async () => {
      if (!password.value) throw new ApiError(0, "validation_error", t("report.password_required"));
      await save();
      try {
        return await api.post(`/api/consultations/${c.id}/report/sign`, { password: password.value });
      } catch (err) {
        password.value = "";
        password.focus();
        throw localised(err);
      }
    },
  });
}

function row(label, value, key) {
  return h("div", { class: "pr-field", dataset: key ? { print: key } : {} },
    h("span", { class: "pr-label" }, label), h("span", { class: "pr-value" }, value || "—"));
}

/** The printed report: hidden on screen; print.css shows it alone on A4. */
function printLayout(c, v) {
  const p = c.patient || {};
  const expert = c.expert_id ? store.expertsById.get(c.expert_id) : null;
  const consulting = v.signer_institution
    || institutionName(expert ? expert.institution_id : c.target_institution_id);
  const kindTitle = has(`report.print_title_${c.kind}`) ? t(`report.print_title_${c.kind}`) : t("report.print_title");
  return h("article", { class: ["print-report", v.signed ? "is-signed" : "is-draft"], dataset: { version: v.version } },
    v.signed ? null : h("div", { class: "pr-watermark" }, t("report.watermark_draft")),
    h("header", { class: "pr-header" },
      h("p", { class: "pr-institutions" },
        h("span", { dataset: { print: "requesting" } }, institutionName(c.requester_institution_id)),
        h("span", { class: "pr-arrow" }, " → "),
        h("span", { dataset: { print: "consulting" } }, consulting)),
      h("h1", {}, kindTitle),
      h("p", { class: "pr-number" }, t("report.print_number", { id: c.id }), " · ", t("report.version_n", { version: v.version }),
        v.corrects_version ? ` · ${t("report.corrects", { version: v.corrects_version })}` : "")),
    h("section", { class: "pr-block pr-case" },
      h("div", { class: "pr-grid" },
        row(t("report.print_patient"), patientLine(p), "patient"),
        row(t("report.print_birth_date"), p.birth_date ? fmtDateYear(`${p.birth_date}T12:00:00${TZ_OFFSET}`) : "—"),
        row(t("report.print_kind"), `${term("kind", c.kind)} · ${term("urgency", c.urgency)}`),
        row(t("report.print_requested_at"), fmtDateTimeYear(c.created_at)),
        row(t("report.print_requesting"), institutionName(c.requester_institution_id), "requesting-institution"),
        row(t("report.print_requester"), c.requester_name),
        row(t("report.print_consulting"), consulting, "consulting-institution"),
        row(t("report.print_expert"), v.signer_name || c.expert_name))),
    h("section", { class: "pr-block" },
      h("h2", {}, t("report.print_question")),
      h("p", { class: "prewrap" }, c.question)),
    SECTIONS.map((key) => h("section", { class: "pr-block", dataset: { print: key } },
      h("h2", {}, t(`report.section_${key}`)),
      h("p", { class: "prewrap" }, v[key] || "—"))),
    h("section", { class: "pr-block pr-sign" },
      h("div", { class: "pr-grid" },
        row(t("report.print_signer"), v.signed ? signerLine(v) : "—", "signer"),
        row(t("report.print_signer_institution"), v.signed ? v.signer_institution : "—", "signer-institution"),
        row(t("report.print_signed_at"), v.signed ? fmtDateTimeYear(v.signed_at) : t("report.print_not_signed"), "signed-at"),
        row(t("report.print_version"), v.corrects_version
          ? t("report.version_correcting", { version: v.version, corrects: v.corrects_version })
          : t("report.version_n", { version: v.version }), "version")),
      h("div", { class: "pr-signature" },
        h("div", { class: "pr-line" }, h("span", {}, t("report.print_signature")), h("span", { class: "pr-blank" })),
        h("div", { class: "pr-line" }, h("span", {}, t("report.print_date")), h("span", { class: "pr-blank" })),
        v.signed && v.signed_with_password ? h("p", { class: "pr-esign", dataset: { print: "esign" } }, t("report.print_esign_verified")) : null)),
    h("footer", { class: "pr-footer" },
      t("report.print_footer", { at: fmtDateTimeYear(new Date()) })));
}
