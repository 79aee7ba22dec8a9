// What the signed-in user may administer (GET /api/me/permissions), fetched once per session:
// the screens offer exactly this, so nobody learns at save time that a change is refused.

import { api, session } from "../api.js";

let cached = null;
let cachedFor = null;

/** The caller's permissions (cached for this session's token). */
export async function permissions() {
  if (cached && cachedFor === session.token) return cached;
  const perms = await api.get("/api/me/permissions");
  cached = perms;
  cachedFor = session.token;
  return perms;
}

/** Forget them (after a change that moves what the caller keeps, e.g. alliance members). */
export function forgetPermissions() {
  cached = null;
}

/** Whether the caller keeps this institution (its details, departments, modalities, experts'
 * availability and on-call rosters). */
export function keeps(perms, institutionId) {
  return Boolean(perms && (perms.all_institutions || perms.institution_ids.includes(Number(institutionId))));
}
