// The node's operator API as the picture uses it: every call goes to the node that served the page.

export class ApiError extends Error {
  constructor(url, status, detail) {
    super(`${url}: ${status} ${detail}`);
    this.status = status;
  }
}

/** The session ended (expired, logged out elsewhere): back to the login form. */
function toLogin() {
  window.location.assign("/login");
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (response.status === 401) toLogin();
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch {
      // not JSON: keep the status text
    }
    throw new ApiError(url, response.status, detail);
  }
  return response.json();
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    for (const item of Array.isArray(value) ? value : [value]) search.append(name, String(item));
  }
  return search.toString();
}

export const api = {
  status: () => getJson("/api/cop/status"),
  /** Each configured live feed and its state (GET /api/feeds). */
  feeds: () => getJson("/api/feeds"),
  catalogue: () => getJson("/api/cop/catalogue"),
  zones: () => getJson("/api/cop/zones"),
  basemap: () => getJson("/assets/basemap.json"),
  detail: (id, version) => getJson(`/api/cop/observation?${query({ id, version })}`),
  sorties: (start, end, utcOffset) =>
    getJson(`/api/cop/sorties?${query({ start, end, utc_offset: utcOffset })}`),
  /** The reciprocity ledger (GET /api/ledger); null when this node does not keep one,
   * { denied } when the operator's role may not see it. */
  ledger: (days) =>
    getJson(`/api/ledger?${query({ days })}`).catch((error) => {
      if (error.status === 404) return null;
      if (error.status === 403) return { denied: error.message };
      throw error;
    }),
  whoami: () => getJson("/api/whoami"),
  /** Messages sent and received, newest first (GET /api/messages). */
  messages: () => getJson("/api/messages?limit=500"),
  /** Search-and-rescue and disaster incidents kept here, the newest version of each. */
  incidents: () => getJson("/api/incidents"),
  /** End the browser session (its CSRF token in the header), then show the login form. */
  async logout(csrf) {
    await fetch("/api/logout", { method: "POST", headers: { "X-CSRF-Token": csrf } });
    toLogin();
  },
  audit: () => getJson("/api/cop/audit"),
  events: (start, end) =>
    getJson(`/api/events?${query({ start, end, limit: 10000 })}`).then((page) => page.items),

  /** Every current observation overlapping [start, end), page by page. */
  async observations(start, end, onPage) {
    let cursor = null;
    const all = [];
    do {
      const page = await getJson(
        `/api/observations?${query({ start, end, limit: 10000, cursor })}`,
      );
      all.push(...page.items);
      if (onPage) onPage(all.length);
      cursor = page.next_cursor;
    } while (cursor);
    return all;
  },

  /** Whether this node fuses (GET /api/fused answers), asked over an empty second. */
  async hasFusion() {
    try {
      const response = await fetch(
        `/api/fused?${query({ start: "1970-01-01T00:00:00Z", end: "1970-01-01T00:00:01Z" })}`,
        { headers: { Accept: "application/json" } },
      );
      return response.ok;
    } catch {
      return false;
    }
  },

  /** The fused picture of a period (GET /api/fused): sorties seen by two or more parties are
   * drawn as such; every item ties the radar plots of one track together. */
  async fused(start, end, signal) {
    const response = await fetch(`/api/fused?${query({ start, end })}`, {
      headers: { Accept: "application/json" },
      signal,
    });
    if (!response.ok) {
      let detail = response.statusText;
      try {
        detail = (await response.json()).detail ?? detail;
      } catch {
        // not JSON
      }
      throw new ApiError("/api/fused", response.status, detail);
    }
    const body = await response.json();
    if (Array.isArray(body)) return body;
    if (body && Array.isArray(body.items)) return body.items;
    return null;
  },
};
