// The modalities allowed to send images by DICOM C-STORE: calling AE title, the institution it
// sends for, and the addresses it may call from. The SCP applies changes at the next association.

import { api, request } from "../api.js";
import { field, h, mount, select } from "../dom.js";
import { t } from "../i18n.js";
import { store } from "../store.js";
import { busy, emptyState, pageHeader, toast } from "../ui/components.js";
import { confirmDialog, formDialog } from "../ui/dialog.js";
import { instLabel } from "./admin-institutions.js";
import { keeps } from "./admin-perms.js";

function where(m) {
  if (m.anywhere) return t("directory.mod_anywhere");
  if (!m.networks.length) return t("directory.mod_this_host");
  return m.networks.join(", ");
}

function modalityDialog(perms, existing) {
  const title = h("input", { name: "ae_title", required: true, maxlength: 16, value: existing ? existing.ae_title : "", disabled: Boolean(existing), autocapitalize: "characters", spellcheck: "false" });
  const kept = [...store.institutions.values()].filter((i) => keeps(perms, i.id)).sort((a, b) => instLabel(a).localeCompare(instLabel(b)));
  const inst = select({ name: "institution_id", required: true }, [["", t("directory.mod_choose_institution")], ...kept.map((i) => [i.id, instLabel(i)])], existing ? existing.institution_id : "");
  const addresses = h("textarea", { name: "addresses", rows: 3, spellcheck: "false", value: existing ? (existing.anywhere ? "any" : existing.networks.join("\n")) : "" });
  const description = h("input", { name: "description", maxlength: 200, value: existing ? existing.description : "" });
  return formDialog({
    title: existing ? t("directory.mod_edit_title", { ae: existing.ae_title }) : t("directory.mod_new_title"),
    submitLabel: existing ? t("directory.save") : t("directory.mod_create"),
    body: h("div", { class: "form-grid" },
      field(t("directory.mod_ae_title"), title, { hint: t("directory.mod_ae_hint") }),
      field(t("directory.mod_institution"), inst),
      field(t("directory.mod_addresses"), addresses, { wide: true, hint: t("directory.mod_addresses_hint") }),
      field(t("directory.mod_description"), description, { wide: true })),
    onSubmit: () => {
      const body = { institution_id: Number(inst.value) || 0, description: description.value.trim(),
        addresses: addresses.value.split(/[\s,]+/).map((a) => a.trim()).filter(Boolean) };
      return existing ? request("PATCH", `/api/modalities/${existing.id}`, { body }) : api.post("/api/modalities", { ae_title: title.value.trim(), ...body });
    },
  });
}

export async function render({ root, perms }) {
  const body = h("div", {});
  const draw = async () => {
    const rows = await api.get("/api/modalities");
    const done = async (msg) => { toast(msg); await draw(); };
    mount(body, rows.length ? h("div", { class: "table-wrap" }, h("table", { class: "table admin-table" },
      h("thead", {}, h("tr", {}, ["mod_ae_title", "mod_institution", "mod_from", "mod_description"].map((k) => h("th", { scope: "col" }, t(`directory.${k}`))),
        h("th", { scope: "col" }, h("span", { class: "sr-only" }, t("directory.actions"))))),
      h("tbody", {}, rows.map((m) => h("tr", { dataset: { modality: m.id } },
        h("td", { dataset: { label: t("directory.mod_ae_title") } }, h("code", {}, m.ae_title)),
        h("td", { dataset: { label: t("directory.mod_institution") } }, instLabel(store.institutions.get(m.institution_id))),
        h("td", { dataset: { label: t("directory.mod_from") } }, where(m)),
        h("td", { dataset: { label: t("directory.mod_description") } }, m.description || "—"),
        h("td", { class: "actions" },
          h("button", { type: "button", class: "btn btn-sm btn-ghost", onclick: (ev) => busy(ev.currentTarget, async () => {
            if (await modalityDialog(perms, m)) await done(t("directory.mod_saved"));
          }) }, t("directory.edit")),
          h("button", { type: "button", class: "btn btn-sm btn-ghost", onclick: (ev) => busy(ev.currentTarget, async () => {
            const ok = await confirmDialog({ title: t("directory.mod_remove_title"), danger: true, submitLabel: t("directory.remove"),
              message: t("directory.mod_remove_message", { ae: m.ae_title }),
              onSubmit: async () => { await request("DELETE", `/api/modalities/${m.id}`); return true; } });
            if (ok) await done(t("directory.mod_removed"));
          }) }, t("directory.remove"))))))))
      : emptyState(t("directory.mod_none")));
  };
  const create = h("button", { type: "button", class: "btn btn-primary", id: "new-modality", onclick: (ev) => busy(ev.currentTarget, async () => {
    if (await modalityDialog(perms, null)) { toast(t("directory.mod_created")); await draw(); }
  }) }, t("directory.mod_new"));
  mount(root, pageHeader(t("directory.mod_title"), create), h("p", { class: "muted small" }, t("directory.mod_intro")), body);
  await draw();
}
