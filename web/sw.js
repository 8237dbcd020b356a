// The service worker: shows an alert the relay pushed (Web Push) as a notification, with the
// snapshot where the platform shows pictures, and opens the event when it is tapped. It does
// nothing else: no caching, no fetch handler.
self.addEventListener('push', (event) => {
  let alert = {};
  try {
    alert = event.data ? event.data.json() : {};
  } catch {
    // Shown as a bare alert: something moved, look at the cameras.
  }
  event.waitUntil(self.registration.showNotification(alert.title || 'eyeward', {
    body: alert.body || '',
    tag: alert.tag,
    renotify: Boolean(alert.tag),
    image: alert.image || undefined,
    icon: '/icon.svg',
    data: { url: alert.url || '/' },
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  // Only this relay's own pages open from a notification.
  const asked = new URL((event.notification.data && event.notification.data.url) || '/', self.location.origin);
  const target = asked.origin === self.location.origin ? asked.href : `${self.location.origin}/`;
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const ours = open.find((w) => new URL(w.url).origin === self.location.origin);
    if (ours) {
      await ours.focus();
      return ours.navigate(target);
    }
    return self.clients.openWindow(target);
  })());
});
