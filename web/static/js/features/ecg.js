// TEMPORARY local stub (not committed): replaced by the ecg branch's module.
export async function renderEcg() {}
