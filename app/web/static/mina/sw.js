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
