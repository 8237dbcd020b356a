// The pages' one way to call the relay's JSON API: same-origin, with the session cookie.

// Sends `body` (if any) as JSON; resolves to the response and its JSON body (null for 204 or
// a body that is not JSON). Rejects only when the relay cannot be reached.
export async function api(method, path, body) {
  const init = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const data = resp.status === 204 ? null : await resp.json().catch(() => null);
  return { resp, data };
}

// The error a failed answer carries (`{"error": "…"}`), else its status line.
export function errorText(resp, data) {
  return (data && data.error) || `${resp.status} ${resp.statusText}`;
}
