// Login screen.

import { ApiError, api, session } from "../api.js";
import { field, h, mount } from "../dom.js";
import { has, t } from "../i18n.js";
import { errorSlot, languageSwitch } from "../ui/components.js";

export async function render({ root }) {
  const errors = errorSlot();
  const notice = sessionStorage.getItem("yilian.notice");
  const username = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, t("login.submit"));
  const form = h("form", { class: "login-form", "aria-describedby": "login-intro" },
    field(t("login.username"), username),
    field(t("login.password"), password),
    errors.el,
    submit);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    errors.clear();
    submit.disabled = true;
    try {
      const res = await api.post("/api/auth/login", { username: username.value.trim(), password: password.value }, { auth: false });
      sessionStorage.removeItem("yilian.notice");
      session.save(res.token, { ...res.user, must_change_password: res.must_change_password });
      window.dispatchEvent(new CustomEvent("yilian:login", { detail: res.user }));
    } catch (err) {
      errors.show(err instanceof ApiError ? err : new ApiError(0, "unknown", t("errors.unknown")));
      password.select();
    } finally {
      if (submit.isConnected) submit.disabled = false;
    }
  });
  const noticeKey = notice && `login.notice_${notice}`;
  mount(root, h("div", { class: "login-page" },
    h("section", { class: "login-card" },
      h("div", { class: "login-top" }, languageSwitch()),
      h("div", { class: "login-brand" },
        h("img", { src: "/static/img/logo.svg", alt: "", width: 48, height: 48 }),
        h("div", {}, h("h1", { tabindex: "-1" }, t("common.app_name")),
          h("p", { id: "login-intro", class: "muted" }, t("login.tagline")))),
      noticeKey && has(noticeKey) ? h("div", { class: "alert alert-info", role: "status" }, t(noticeKey)) : null,
      form),
    h("aside", { class: "login-aside" },
      h("h2", {}, t("login.aside_title")),
      h("ul", { class: "feature-list" },
        h("li", {}, t("login.feature_book")),
        h("li", {}, t("login.feature_queue")),
        h("li", {}, t("login.feature_trace"))))));
  username.focus();
}
