// Reference data shared by the screens: institutions, alliances, experts and known patients.

import { api, session } from "./api.js";
import { keys, locale, t } from "./i18n.js";

const PATIENTS_KEY = "yilian.patients";

export const store = {
  institutions: new Map(),
  alliances: [],
  experts: [],
  expertsById: new Map(),
  loaded: false,

  async load() {
    const [institutions, alliances, experts] = await Promise.all([
      api.get("/api/institutions"), api.get("/api/alliances"), api.get("/api/experts"),
    ]);
    this.institutions = new Map(institutions.map((i) => [i.id, i]));
    this.alliances = alliances;
    this.setExperts(experts);
    this.loaded = true;
  },

  reset() {
    this.institutions = new Map();
    this.alliances = [];
    this.setExperts([]);
    this.loaded = false;
  },

  setExperts(experts) {
    this.experts = experts;
    this.expertsById = new Map(experts.map((e) => [e.id, e]));
  },

  /** The institution's name as this language's readers know it: its Chinese (local) name in
   * the Chinese screen, its English name in the English one. */
  institutionName(id) {
    const i = this.institutions.get(id);
    if (!i) return t("common.institution_number", { id });
    return locale() === "zh-CN" && i.local_name ? i.local_name : i.name;
  },

  /** Institutions sharing an alliance with mine (mine included). */
  partnerIds() {
    const mine = session.user && session.user.institution_id;
    const ids = new Set([mine]);
    for (const a of this.alliances) if (a.member_ids.includes(mine)) a.member_ids.forEach((m) => ids.add(m));
    return ids;
  },

  myAlliances() {
    const mine = session.user && session.user.institution_id;
    return this.alliances.filter((a) => a.member_ids.includes(mine));
  },

  /** The specialties an administrator may give a department, alliance or expert: those the
   * language tables name and any already in use (a new install has none in use yet). */
  assignableSpecialties() {
    return [...new Set([...keys("terms", "specialty_"), ...this.specialties()])].sort();
  },

  /** Every specialty any institution or expert offers. */
  specialties() {
    const all = new Set();
    for (const i of this.institutions.values()) for (const d of i.departments || []) if (d.specialty) all.add(d.specialty);
    for (const e of this.experts) e.specialties.forEach((s) => all.add(s));
    return [...all].sort();
  },

  /** Name for a user id seen in a consultation (the server names its requester, expert and
   * the actors of its history; experts of the alliance are known too). */
  personName(id, consultation) {
    const me = session.user;
    if (me && id === me.id) return t("common.you", { name: me.display_name });
    if (!id) return t("common.system");
    const expert = this.expertsById.get(id);
    if (expert) return expert.display_name;
    if (consultation) {
      if (id === consultation.requester_id && consultation.requester_name) {
        return t("common.person_at", { name: consultation.requester_name, institution: this.institutionName(consultation.requester_institution_id) });
      }
      if (id === consultation.expert_id && consultation.expert_name) return consultation.expert_name;
      const event = (consultation.history || []).find((e) => e.actor_id === id && e.actor_name);
      if (event) return event.actor_name;
    }
    return t("common.user_number", { id });
  },

  // Patients: the server registers patients per institution and lists them; the client also
  // remembers the ones registered in this session, so a retry offers them instead of re-registering.
  knownPatients() {
    try { return JSON.parse(sessionStorage.getItem(PATIENTS_KEY) || "[]"); } catch { return []; }
  },

  rememberPatients(patients) {
    const byId = new Map(this.knownPatients().map((p) => [p.id, p]));
    for (const p of patients) byId.set(p.id, { id: p.id, name: p.name, sex: p.sex, birth_date: p.birth_date });
    const list = [...byId.values()].sort((a, b) => a.name.localeCompare(b.name));
    sessionStorage.setItem(PATIENTS_KEY, JSON.stringify(list));
    return list;
  },

  /** Patients registered at my institution (newest first, up to 200), plus those seen here. */
  async loadPatients() {
    return this.rememberPatients(await api.get("/api/patients?limit=200"));
  },
};

export const isClinical = (user) => ["village_doctor", "township_doctor", "specialist"].includes(user && user.role);
export const isSpecialist = (user) => user && user.role === "specialist";
export const isManager = (user) => user && ["coordinator", "admin"].includes(user.role);
