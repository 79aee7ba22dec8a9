// The forced "choose your password" screen: a new or reset account sets its own password
// before anything else (every other route answers 403 password_change_required until then).

import { ApiError, api, session } from "../api.js";
import { field, h, mount } from "../dom.js";
import { t } from "../i18n.js";
import { errorSlot, languageSwitch } from "../ui/components.js";

export const MIN_LENGTH = 10;

/** The three password fields and a check of what the browser can check before sending. */
export function passwordFields({ currentLabel } = {}) {
  const current = h("input", { name: "old_password", type: "password", autocomplete: "current-password", required: true });
  const next = h("input", { name: "new_password", type: "password", autocomplete: "new-password", required: true, minlength: MIN_LENGTH });
  const again = h("input", { name: "new_password_again", type: "password", autocomplete: "new-password", required: true });
  return {
    current, next, again,
    fields: [
      field(currentLabel || t("accounts.current_password"), current),
      field(t("accounts.new_password"), next, { hint: t("accounts.password_rules", { n: MIN_LENGTH }) }),
      field(t("accounts.new_password_again"), again),
    ],
    /** An ApiError made here (shown like the server's) when the form cannot be right. */
    problem() {
      if (next.value.length < MIN_LENGTH) return new ApiError(0, "password_too_short", t("errors.password_too_short"));
      if (next.value !== again.value) return new ApiError(0, "passwords_differ", t("accounts.passwords_differ"));
      return null;
    },
  };
}

export async function render({ root, navigate }) {
  const errors = errorSlot();
  const f = passwordFields({ currentLabel: t("accounts.temporary_password") });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, t("accounts.choose_submit"));
  const form = h("form", { class: "login-form", dataset: { form: "choose-password" } }, f.fields, errors.el, submit);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    errors.clear();
    const problem = f.problem();
    if (problem) { errors.show(problem); return; }
    submit.disabled = true;
    try {
      const user = await api.post("/api/auth/password", { old_password: f.current.value, new_password: f.next.value });
      session.save(session.token, { ...user, must_change_password: false });
      window.dispatchEvent(new CustomEvent("yilian:login", { detail: user }));
    } catch (err) {
      errors.show(err);
    } finally {
      if (submit.isConnected) submit.disabled = false;
    }
  });
  const leave = h("button", { type: "button", class: "btn btn-ghost", onclick: async () => {
    try { await api.post("/api/auth/logout"); } catch { /* the session ends either way */ }
    session.clear();
    navigate("#/login");
  } }, t("nav.logout"));
  const user = session.user || {};
  mount(root, h("div", { class: "login-page login-single" },
    h("section", { class: "login-card" },
      h("div", { class: "login-top" }, languageSwitch(), leave),
      h("div", { class: "login-brand" },
        h("img", { src: "/static/img/logo.svg", alt: "", width: 48, height: 48 }),
        h("div", {}, h("h1", { tabindex: "-1" }, t("accounts.choose_title")),
          h("p", { class: "muted" }, t("accounts.choose_intro", { name: user.display_name || user.username || "" })))),
      form)));
  f.current.focus();
}
