// "My account": who I am, changing my password, and my sessions (each device logged in, with
// the one I am using marked), which I can end one by one or all but this one.

import { api, request, session } from "../api.js";
import { h, mount } from "../dom.js";
import { fmtDateTime, fmtDateTimeYear, relative, term } from "../format.js";
import { t } from "../i18n.js";
import { store } from "../store.js";
import { busy, dl, errorBox, errorSlot, loading, pageHeader, toast } from "../ui/components.js";
import { confirmDialog } from "../ui/dialog.js";
import { passwordFields } from "./password.js";

function passwordPanel() {
  const errors = errorSlot();
  const f = passwordFields();
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, t("accounts.change_submit"));
  const form = h("form", { class: "form-grid", dataset: { form: "change-password" } }, f.fields,
    h("div", { class: "field-wide" }, errors.el, h("div", { class: "form-actions" }, submit)));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const problem = f.problem();
    if (problem) { errors.show(problem); return; }
    busy(submit, async () => {
      await api.post("/api/auth/password", { old_password: f.current.value, new_password: f.next.value });
      form.reset();
      toast(t("accounts.password_changed"));
      await drawSessions();
    }, errors);
  });
  return h("section", { class: "panel", "aria-labelledby": "acc-pw-title" },
    h("h2", { id: "acc-pw-title" }, t("accounts.change_title")),
    h("p", { class: "muted" }, t("accounts.change_intro")), form);
}

const sessionsBody = h("div", { "aria-live": "polite" });

async function drawSessions() {
  let rows;
  try {
    rows = await api.get("/api/auth/sessions");
  } catch (err) {
    mount(sessionsBody, errorBox(err));
    return;
  }
  const others = rows.filter((s) => !s.current);
  const endAll = h("button", { type: "button", class: "btn btn-danger-outline", dataset: { action: "end-others" }, disabled: !others.length },
    t("accounts.end_others"));
  endAll.addEventListener("click", () => confirmDialog({
    title: t("accounts.end_others"), message: t("accounts.end_others_confirm", { n: others.length }),
    submitLabel: t("accounts.end_others"), danger: true,
    onSubmit: async () => {
      const res = await request("DELETE", "/api/auth/sessions");
      toast(t("accounts.sessions_ended", { n: res.ended }));
      await drawSessions();
    },
  }));
  mount(sessionsBody,
    h("div", { class: "table-wrap" }, h("table", { class: "table sessions" },
      h("caption", { class: "sr-only" }, t("accounts.sessions_title")),
      h("thead", {}, h("tr", {}, [t("accounts.col_device"), t("accounts.col_address"), t("accounts.col_started"),
        t("accounts.col_last_seen"), ""].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows.map((s) => {
        const end = s.current ? h("span", { class: "badge status-accepted" }, t("accounts.this_device"))
          : h("button", { type: "button", class: "btn btn-sm", dataset: { action: "end-session" } }, t("accounts.end_session"));
        if (!s.current) {
          end.addEventListener("click", () => busy(end, async () => {
            await request("DELETE", `/api/auth/sessions/${s.id}`);
            toast(t("accounts.session_ended"));
            await drawSessions();
          }));
        }
        return h("tr", { dataset: { session: s.id, current: String(s.current) } },
          h("td", {}, s.browser || t("accounts.unknown_device")), h("td", {}, s.client_address || "—"),
          h("td", {}, fmtDateTime(s.created_at)), h("td", { title: fmtDateTimeYear(s.last_seen_at) }, s.last_seen_at ? relative(s.last_seen_at) : "—"),
          h("td", { class: "num" }, end));
      })))),
    h("div", { class: "form-actions" }, endAll));
}

export async function render({ root, isCurrent }) {
  mount(root, loading());
  let me;
  try {
    me = await api.get("/api/me");
  } catch (err) {
    if (isCurrent()) mount(root, pageHeader(t("accounts.my_account")), errorBox(err));
    return;
  }
  if (!isCurrent()) return;
  session.save(session.token, { ...session.user, ...me });
  mount(sessionsBody, loading());
  mount(root,
    pageHeader(t("accounts.my_account")),
    h("section", { class: "panel" },
      dl([[t("accounts.display_name"), me.display_name], [t("accounts.username"), me.username],
        [t("accounts.role"), term("role", me.role)], [t("accounts.institution"), store.institutionName(me.institution_id)],
        me.title ? [t("accounts.title"), me.title] : null])),
    passwordPanel(),
    h("section", { class: "panel", "aria-labelledby": "acc-sessions-title" },
      h("h2", { id: "acc-sessions-title" }, t("accounts.sessions_title")),
      h("p", { class: "muted" }, t("accounts.sessions_intro")), sessionsBody));
  await drawSessions();
}
