// Login screen.

import { ApiError, api, session } from "../api.js";
import { field, h, mount } from "../dom.js";
import { errorSlot } from "../ui/components.js";

export async function render({ root }) {
  const errors = errorSlot();
  const notice = sessionStorage.getItem("yilian.notice");
  sessionStorage.removeItem("yilian.notice");
  const username = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "Log in 登录");
  const form = h("form", { class: "login-form", "aria-describedby": "login-intro" },
    field("Username 用户名", username),
    field("Password 密码", password),
    errors.el,
    submit);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    errors.clear();
    submit.disabled = true;
    try {
      const res = await api.post("/api/auth/login", { username: username.value.trim(), password: password.value }, { auth: false });
      session.save(res.token, res.user);
      window.dispatchEvent(new CustomEvent("yilian:login", { detail: res.user }));
    } catch (err) {
      errors.show(err instanceof ApiError ? err : new ApiError(0, "error", String(err)));
      password.select();
    } finally {
      if (submit.isConnected) submit.disabled = false;
    }
  });
  mount(root, h("div", { class: "login-page" },
    h("section", { class: "login-card" },
      h("div", { class: "login-brand" },
        h("img", { src: "/static/img/logo.svg", alt: "", width: 48, height: 48 }),
        h("div", {}, h("h1", { tabindex: "-1" }, "Yilian ", h("span", { class: "zh" }, "医联")),
          h("p", { id: "login-intro", class: "muted" }, "Remote consultation for medical alliances · 医联体远程会诊平台"))),
      notice ? h("div", { class: "alert alert-info", role: "status" }, notice) : null,
      form),
    h("aside", { class: "login-aside" },
      h("h2", {}, "One alliance, one record of care"),
      h("ul", { class: "feature-list" },
        h("li", {}, "Book an upper-level expert's free slot for a patient at your clinic ", h("span", { class: "zh" }, "预约上级专家")),
        h("li", {}, "Specialists work a queue sorted by urgency and sign reports ", h("span", { class: "zh" }, "专家接诊与签署报告")),
        h("li", {}, "Every step is recorded with who and when ", h("span", { class: "zh" }, "全程留痕"))))));
  username.focus();
}
