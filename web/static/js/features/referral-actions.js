// The workflow buttons of a referral: exactly the actions the server lists for this user now
// (`actions`), so the page never offers what the server would refuse. Reject and cancel ask for
// a reason; "arrive" is the receiving team's "patient at the door".

import { api } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { busy, toast } from "../ui/components.js";
import { confirmDialog, reasonDialog } from "../ui/dialog.js";

const ORDER = ["accept", "arrive", "depart", "complete", "reject", "cancel"];
const STYLE = { accept: "btn-primary btn-go", arrive: "btn-primary btn-go", depart: "btn-primary", complete: "btn-primary",
  reject: "btn-danger-outline", cancel: "btn-danger-outline" };

async function post(r, action, body) {
  const res = await api.post(`/api/referrals/${r.id}/${action}`, body);
  toast(t(`referrals.done_${action}`, { id: r.id }));
  return res;
}

function ask(r, action) {
  if (action === "reject" || action === "cancel") {
    return reasonDialog({
      title: t(`referrals.${action}_title`, { id: r.id }),
      label: t(`referrals.${action}_reason`),
      submitLabel: t(`referrals.action_${action}`),
      cancelLabel: t("referrals.keep"),
      onSubmit: (reason) => post(r, action, { reason }),
    });
  }
  if (action === "complete") {
    return confirmDialog({ title: t("referrals.complete_title", { id: r.id }), message: t("referrals.complete_message"),
      submitLabel: t("referrals.action_complete"), onSubmit: () => post(r, action) });
  }
  // Accept, depart and arrive are taken at once: on a green channel every second counts, and
  // a wrong time is corrected on the milestone panel.
  return post(r, action);
}

/** The actions panel, or null when this user can do nothing now; `onDone(referral)` redraws. */
export function actionsPanel(r, onDone) {
  const actions = ORDER.filter((a) => (r.actions || []).includes(a));
  if (!actions.length) return null;
  const buttons = actions.map((action) => h("button", {
    type: "button", class: ["btn", STYLE[action], r.green_channel && ["accept", "arrive"].includes(action) && "btn-lg"],
    dataset: { action },
    onclick: (ev) => busy(ev.currentTarget, async () => {
      const res = await ask(r, action);
      if (res) onDone(res);
    }),
  }, t(`referrals.action_${action}`)));
  return h("section", { class: "panel actions-panel ref-actions", "aria-labelledby": "ref-actions-title" },
    h("h2", { id: "ref-actions-title" }, t("referrals.actions")),
    h("div", { class: "action-buttons" }, buttons));
}
