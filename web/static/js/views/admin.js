// The Administration area (admins and coordinators): institutions, alliances, modalities and,
// for administrators, the import of a whole alliance. Each section is its own module.

import { ApiError } from "../api.js";
import { h, mount } from "../dom.js";
import { t } from "../i18n.js";
import { errorBox, loading } from "../ui/components.js";
import { permissions } from "./admin-perms.js";
import * as institutions from "./admin-institutions.js";
import * as alliances from "./admin-alliances.js";
import * as modalities from "./admin-modalities.js";
import * as importer from "./admin-import.js";

const SECTIONS = [
  ["institutions", institutions, () => true],
  ["alliances", alliances, () => true],
  ["modalities", modalities, (p) => p.modalities],
  ["import", importer, (p) => p.import_directory],
];

export async function render(ctx) {
  const { root, params } = ctx;
  mount(root, loading());
  const perms = await permissions();
  if (!perms.administration) {
    mount(root, errorBox(new ApiError(403, "forbidden", t("directory.not_allowed"))));
    return;
  }
  const offered = SECTIONS.filter(([, , allowed]) => allowed(perms));
  const [key, section] = offered.find(([name]) => name === params.section) || offered[0];
  const tabs = h("nav", { class: "admin-tabs", "aria-label": t("directory.sections") },
    offered.map(([name]) => h("a", { href: `#/admin/${name}`, class: name === key ? "active" : null,
      "aria-current": name === key ? "page" : null, dataset: { section: name } }, t(`directory.tab_${name}`))));
  const body = h("div", { class: "admin-body" }, loading());
  mount(root, tabs, body);
  await section.render({ ...ctx, root: body, perms });
}
