// Find an expert: filter by specialty and institution; each card shows the next free slots.

import { api } from "../api.js";
import { field, h, mount, select } from "../dom.js";
import { fmtDateTime, fmtTime, specialtyLabel, term } from "../format.js";
import { locale, t } from "../i18n.js";
import { isClinical, isManager, store } from "../store.js";
import { emptyState, errorBox, loading, pageHeader } from "../ui/components.js";

/** An institution's name in the current language: its Chinese name in Chinese where it has one. */
export function institutionLabel(inst, fallback = "") {
  if (!inst) return fallback;
  return locale() === "zh-CN" && inst.local_name ? inst.local_name : inst.name;
}

/** "{n} expert" / "{n} experts": the table's _one / _other forms. */
export function counted(key, n) {
  return t(`${key}_${n === 1 ? "one" : "other"}`, { n });
}

export function expertCard(e, { user, compact = false, actions = true } = {}) {
  const canBook = isClinical(user) && e.id !== user.id;
  const inst = store.institutions.get(e.institution_id);
  const slotText = (s) => `${fmtDateTime(s.start)}–${fmtTime(s.end)}`;
  return h("article", { class: "card expert-card", dataset: { expertId: e.id }, "aria-labelledby": `expert-${e.id}` },
    h("header", { class: "expert-head" },
      h("div", { class: "avatar", "aria-hidden": "true" }, initials(e.display_name)),
      h("div", {},
        h("h2", { id: `expert-${e.id}`, class: "expert-name" }, e.display_name),
        h("p", { class: "muted" }, [e.title, e.department].filter(Boolean).join(" · ")))),
    h("p", { class: "expert-inst" }, institutionLabel(inst, e.institution_name)),
    h("div", { class: "tags" },
      e.specialties.map((s) => h("span", { class: "tag" }, specialtyLabel(s))),
      inst && inst.level ? h("span", { class: "tag tag-level" }, term("level", inst.level)) : null,
      e.in_my_alliance ? h("span", { class: "tag tag-alliance" }, t("experts.in_my_alliance")) : null),
    compact ? null : h("div", { class: "next-slots" },
      h("h3", {}, t("experts.next_free")),
      e.next_free_slots.length
        ? h("ul", { class: "slot-chips" }, e.next_free_slots.map((s) => h("li", {},
          canBook
            ? h("a", { class: "slot-chip", href: `#/request?expert=${e.id}&slot=${s.id}`, dataset: { slotId: s.id },
              "aria-label": t("experts.book_with", { time: fmtDateTime(s.start), name: e.display_name }) }, slotText(s))
            : h("span", { class: "slot-chip static" }, slotText(s)))))
        : h("p", { class: "muted" }, t("experts.no_free"))),
    actions && h("footer", { class: "card-actions" },
      compact ? null : h("a", { class: "btn", href: `#/experts/${e.id}`, dataset: { action: "slots" } }, t("experts.all_slots")),
      canBook ? h("a", { class: "btn btn-primary", href: `#/request?expert=${e.id}`, dataset: { action: "request" } }, t("experts.request")) : null,
      isManager(user) ? h("a", { class: "btn", href: `#/availability/${e.id}`, dataset: { action: "availability" } }, t("experts.edit_availability")) : null));
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
  const specialty = select({ name: "specialty" }, [["", t("experts.any_specialty")], ...specialties.map((s) => [s, specialtyLabel(s)])], query.specialty || "");
  const institution = select({ name: "institution" }, [["", t("experts.any_institution")],
    ...institutions.map((i) => ({ value: i.id, label: institutionLabel(i), group: partners.has(i.id) ? t("experts.group_my_alliance") : t("experts.group_other") }))],
  query.institution || "");
  const search = h("input", { type: "search", name: "q", placeholder: t("experts.search_placeholder"), value: query.q || "" });
  const results = h("div", { class: "results" });

  let timer;
  const apply = () => {
    clearTimeout(timer);
    // A search typed just before leaving the screen must not rewrite the next screen's address.
    if (!results.isConnected) return;
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
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(apply, 250); });

  let seq = 0;
  async function load() {
    const mine = ++seq;
    mount(results, loading(t("experts.finding")));
    try {
      const list = await api.get("/api/experts", { specialty: specialty.value, institution_id: institution.value });
      if (mine !== seq) return;
      if (!specialty.value && !institution.value) store.setExperts(list);
      const needle = search.value.trim().toLowerCase();
      const haystack = (e) => `${e.display_name} ${e.department || ""} ${e.institution_name} ${institutionLabel(store.institutions.get(e.institution_id))}`;
      const shown = needle ? list.filter((e) => haystack(e).toLowerCase().includes(needle)) : list;
      mount(results,
        h("p", { class: "muted result-count", role: "status" }, counted("experts.count", shown.length)),
        shown.length ? h("div", { class: "card-grid" }, shown.map((e) => expertCard(e, { user })))
          : emptyState(t("experts.none_match"), null,
            h("button", { type: "button", class: "btn", onclick: () => { specialty.value = ""; institution.value = ""; search.value = ""; apply(); } }, t("experts.clear_filters"))));
    } catch (err) {
      if (mine === seq) mount(results, errorBox(err));
    }
  }

  mount(root,
    pageHeader(isClinical(user) ? t("experts.title_find") : t("experts.title_directory"), null,
      isClinical(user) ? h("a", { class: "btn", href: "#/request" }, t("experts.queue_request")) : null),
    h("form", { class: "filters", role: "search", "aria-label": t("experts.filter_label"), onsubmit: (ev) => { ev.preventDefault(); apply(); } },
      field(t("experts.specialty"), specialty), field(t("experts.institution"), institution), field(t("experts.search"), search)),
    results);
  await load();
}
