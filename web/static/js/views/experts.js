// Find an expert: filter by specialty and institution; each card shows the next free slots.

import { api } from "../api.js";
import { field, h, mount, select } from "../dom.js";
import { LEVEL, fmtDateTime, fmtTime, specialtyLabel } from "../format.js";
import { isClinical, isManager, store } from "../store.js";
import { emptyState, errorBox, loading, pageHeader } from "../ui/components.js";

export function expertCard(e, { user, compact = false, actions = true } = {}) {
  const canBook = isClinical(user) && e.id !== user.id;
  const inst = store.institutions.get(e.institution_id);
  const level = inst && LEVEL[inst.level];
  return h("article", { class: "card expert-card", dataset: { expertId: e.id }, "aria-labelledby": `expert-${e.id}` },
    h("header", { class: "expert-head" },
      h("div", { class: "avatar", "aria-hidden": "true" }, initials(e.display_name)),
      h("div", {},
        h("h2", { id: `expert-${e.id}`, class: "expert-name" }, e.display_name),
        h("p", { class: "muted" }, [e.title, e.department].filter(Boolean).join(" · ")))),
    h("p", { class: "expert-inst" }, e.institution_name,
      inst && inst.local_name ? h("span", { class: "zh" }, ` ${inst.local_name}`) : null),
    h("div", { class: "tags" },
      e.specialties.map((s) => h("span", { class: "tag" }, specialtyLabel(s))),
      level ? h("span", { class: "tag tag-level" }, `${level[0]} ${level[1]}`) : null,
      e.in_my_alliance ? h("span", { class: "tag tag-alliance" }, "In my alliance 本医联体") : null),
    compact ? null : h("div", { class: "next-slots" },
      h("h3", {}, "Next free slots ", h("span", { class: "zh" }, "最近可约")),
      e.next_free_slots.length
        ? h("ul", { class: "slot-chips" }, e.next_free_slots.map((s) => h("li", {},
          canBook
            ? h("a", { class: "slot-chip", href: `#/request?expert=${e.id}&slot=${s.id}`,
              "aria-label": `Book ${fmtDateTime(s.start)} with ${e.display_name}` }, `${fmtDateTime(s.start)}–${fmtTime(s.end)}`)
            : h("span", { class: "slot-chip static" }, `${fmtDateTime(s.start)}–${fmtTime(s.end)}`))))
        : h("p", { class: "muted" }, "No free slots in the coming weeks. 近期无可约时段")),
    actions && h("footer", { class: "card-actions" },
      h("a", { class: "btn", href: `#/experts/${e.id}` }, "All slots 全部时段"),
      canBook ? h("a", { class: "btn btn-primary", href: `#/request?expert=${e.id}` }, "Request consultation 申请会诊") : null,
      isManager(user) ? h("a", { class: "btn", href: `#/availability/${e.id}` }, "Edit availability 编辑出诊") : null));
}

function initials(name) {
  const zh = name.match(/[\u4e00-\u9fff]/);
  if (zh) return zh[0];
  return name.replace(/^(Dr|Prof|Mr|Ms|Mrs)\.?\s+/i, "").slice(0, 1).toUpperCase();
}

export async function render({ root, query, user }) {
  const specialties = store.specialties();
  const institutions = [...store.institutions.values()]
    .filter((i) => store.experts.some((e) => e.institution_id === i.id));
  const partners = store.partnerIds();
  const specialty = select({ name: "specialty" }, [["", "Any specialty 全部专科"], ...specialties.map((s) => [s, specialtyLabel(s)])], query.specialty || "");
  const institution = select({ name: "institution" }, [["", "Any institution 全部机构"],
    ...institutions.map((i) => ({ value: i.id, label: i.name, group: partners.has(i.id) ? "My alliance 本医联体" : "Other alliances 其他" }))],
  query.institution || "");
  const search = h("input", { type: "search", name: "q", placeholder: "Name or department", value: query.q || "" });
  const results = h("div", { class: "results" });

  const apply = () => {
    const q = new URLSearchParams();
    if (specialty.value) q.set("specialty", specialty.value);
    if (institution.value) q.set("institution", institution.value);
    if (search.value.trim()) q.set("q", search.value.trim());
    const hash = `#/experts${q.toString() ? `?${q}` : ""}`;
    if (window.location.hash !== hash) history.replaceState(null, "", hash);
    load();
  };
  specialty.addEventListener("change", apply);
  institution.addEventListener("change", apply);
  let timer;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(apply, 250); });

  let seq = 0;
  async function load() {
    const mine = ++seq;
    mount(results, loading("Finding experts… 正在查找专家"));
    try {
      const list = await api.get("/api/experts", { specialty: specialty.value, institution_id: institution.value });
      if (mine !== seq) return;
      if (!specialty.value && !institution.value) store.setExperts(list);
      const needle = search.value.trim().toLowerCase();
      const shown = needle ? list.filter((e) => `${e.display_name} ${e.department || ""} ${e.institution_name}`.toLowerCase().includes(needle)) : list;
      mount(results,
        h("p", { class: "muted result-count", role: "status" }, `${shown.length} expert${shown.length === 1 ? "" : "s"} · alliance members first`),
        shown.length ? h("div", { class: "card-grid" }, shown.map((e) => expertCard(e, { user })))
          : emptyState("No expert matches these filters.", "没有符合条件的专家",
            h("button", { type: "button", class: "btn", onclick: () => { specialty.value = ""; institution.value = ""; search.value = ""; apply(); } }, "Clear filters 清除筛选")));
    } catch (err) {
      if (mine === seq) mount(results, errorBox(err));
    }
  }

  mount(root,
    pageHeader(isClinical(user) ? "Find an expert" : "Experts", isClinical(user) ? "找专家" : "专家名录",
      isClinical(user) ? h("a", { class: "btn", href: "#/request" }, "Send to a specialty queue 专科队列申请") : null),
    h("form", { class: "filters", role: "search", "aria-label": "Filter experts", onsubmit: (ev) => { ev.preventDefault(); apply(); } },
      field("Specialty 专科", specialty), field("Institution 医疗机构", institution), field("Search 搜索", search)),
    results);
  await load();
}
