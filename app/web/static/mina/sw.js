// Min egenvård's service worker: the pages open without a network from what was last seen.
// Served as /mina/sw.js (scope /mina). Pages are fetched from the network first and a copy is
// kept; without a network the copy is shown. Nothing is sent from here: values written down
// offline wait in IndexedDB (app.js) and go through /mina/sync when the network returns.
const CACHE = "mina-v1";
const SHELL = [
  "/static/web.css",
  "/static/mina/app.js",
  "/static/htmx/htmx.min.js",
  "/static/mina/manifest.webmanifest",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname.startsWith("/mina")) {
    event.respondWith(
      fetch(request)
        .then((response) => {
          if (response.ok && !response.redirected) {
            const copy = response.clone();
            caches.open(CACHE).then((cache) => cache.put(request, copy));
          }
          return response;
        })
        .catch(() => caches.match(request).then((hit) => hit || caches.match("/mina"))),
    );
  } else if (url.pathname.startsWith("/static/")) {
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request)));
  }
});

// At logout the pages' copies go: the next person on this device sees none of them.
self.addEventListener("message", (event) => {
  if (event.data === "logout") event.waitUntil(caches.delete(CACHE));
});

// Push: the server decides what a notification says (DESIGN §4.5): the payload's title is the
// neutral "Nytt råd från din vård" unless the person chose to see the advice's title on the
// lock screen, and never a value; so the worker shows the title as it is. The advice's id is
// the tag, so a push sent again replaces the notification instead of adding one.
self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (error) {
    data = {};
  }
  const title = typeof data.title === "string" && data.title ? data.title : "Min egenvård";
  const tag = data.advice_id || data.message_id || data.reminder_id || data.flag_id || "";
  event.waitUntil(
    self.registration.showNotification(title, {
      tag: tag || undefined,
      icon: "/static/mina/icon-192.png",
      data: { url: pageOf(data) },
    }),
  );
});

// Where a click leads: the payload's url when it is one of these pages; the other urls name
// the app's screens (/patients/…), so the pages open the overview of whom the push is about.
const pageOf = (data) => {
  if (typeof data.url === "string" && /^\/mina(\/|\?|$)/.test(data.url)) return data.url;
  return data.patient_id ? `/mina?for=${encodeURIComponent(data.patient_id)}` : "/mina";
};

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL((event.notification.data && event.notification.data.url) || "/mina", self.location.origin);
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const open = windows.find((w) => w.url === url.href);
      return open ? open.focus() : self.clients.openWindow(url.href);
    }),
  );
});
