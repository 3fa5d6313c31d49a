// A facilitator's expired sign-in, renewed with the key this device saved when it signed in.

import { api } from "./api";
import { store, type LabAccess } from "./store";

/** Tries the stored facilitator key for a fresh token; the renewed access, or undefined. */
export async function renewFacilitator(access: LabAccess): Promise<LabAccess | undefined> {
  if (!access.facilitatorKey) return undefined;
  try {
    const res = await api.facilitate(access.labId, access.facilitatorKey, access.name || undefined, store.deviceKey());
    return store.saveAccess(res, { facilitatorKey: access.facilitatorKey });
  } catch {
    return undefined;
  }
}
