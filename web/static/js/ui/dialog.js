// Modal dialogs on the native <dialog> element (focus trapping and Esc come with it).

import { field, h, newId } from "../dom.js";
import { t } from "../i18n.js";
import { errorSlot } from "./components.js";

/**
 * Open a modal form. `body` is a node or array of nodes; `onSubmit()` may throw an ApiError,
 * shown in the dialog; resolves with onSubmit's result, or null when cancelled.
 */
export function formDialog({ title, body, submitLabel, cancelLabel, danger = false, onSubmit }) {
  return new Promise((resolve) => {
    const errors = errorSlot();
    const titleId = newId("dlg");
    const submit = h("button", { type: "submit", class: ["btn", danger ? "btn-danger" : "btn-primary"] }, submitLabel || t("common.confirm"));
    const cancel = h("button", { type: "button", class: "btn", value: "cancel" }, cancelLabel || t("common.cancel"));
    const form = h("form", { method: "dialog", class: "dialog-form" },
      h("h2", { id: titleId }, title),
      body, errors.el,
      h("div", { class: "dialog-actions" }, cancel, submit));
    const dlg = h("dialog", { class: "dialog", "aria-labelledby": titleId }, form);
    let result = null;
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      dlg.remove();
      resolve(result);
    };
    cancel.addEventListener("click", () => dlg.close());
    dlg.addEventListener("close", finish);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      errors.clear();
      try {
        result = await onSubmit();
        dlg.close();
      } catch (err) {
        errors.show(err);
      } finally {
        submit.disabled = false;
      }
    });
    document.body.append(dlg);
    dlg.showModal();
    const first = form.querySelector("textarea, input, select");
    (first || submit).focus();
  });
}

/** Ask for a reason (decline / cancel); resolves to onSubmit's result or null. */
export function reasonDialog({ title, label, submitLabel, cancelLabel, onSubmit }) {
  const text = h("textarea", { rows: 4, required: true, maxlength: 4000, name: "reason" });
  return formDialog({
    title, submitLabel, cancelLabel, danger: true,
    body: field(label, text, { wide: true }),
    onSubmit: () => onSubmit(text.value.trim()),
  });
}

export function confirmDialog({ title, message, submitLabel, danger = false, onSubmit }) {
  return formDialog({ title, submitLabel, danger, body: h("p", {}, message), onSubmit });
}
