// The pages' one way to call the relay's JSON API: same-origin, with the session cookie.
import { hasText, t } from './i18n.js';

// Sends `body` (if any) as JSON; resolves to the response and its JSON body (null for 204 or
// a body that is not JSON). Rejects only when the relay cannot be reached, or, with `within`
// (ms), when no answer came in that time (a request a flaky network swallowed).
export async function api(method, path, body, { within } = {}) {
  const init = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const controller = within ? new AbortController() : null;
  const timer = controller ? setTimeout(() => controller.abort(), within) : null;
  if (controller) init.signal = controller.signal;
  try {
    const resp = await fetch(path, init);
    const data = resp.status === 204 ? null : await resp.json().catch(() => null);
    return { resp, data };
  } finally {
    clearTimeout(timer);
  }
}

// What a failed answer means, in the page's language: the relay names each error with a
// code (`{"error": "…", "code": "…"}`) that has words of its own here; an English page may
// show the relay's own (English) message for a code it has no words for, never a Japanese one.
export function errorText(lang, resp, data) {
  const code = data && data.code;
  if (code && hasText(lang, `error.${code}`)) return t(lang, `error.${code}`);
  if (lang === 'en' && data && data.error) return data.error;
  return t(lang, 'error.generic', { status: resp.status });
}
