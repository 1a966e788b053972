// Min egenvård in the browser: the service worker, and values written down without a network.
//
// Online, the entry form is posted as usual (the server answers with advice or errors).
// Offline, the value is kept in IndexedDB under its client_id and sent with the sync envelope
// to /mina/sync (session cookie + X-CSRF-Token) when the network returns. The server stores
// each client_id once, so a send whose answer was lost is simply sent again: nothing is lost
// and nothing is stored twice. Each queued value belongs to the person who wrote it down.
(() => {
  "use strict";
  const DB = "mina";
  const STORE = "queue";
  const SOURCE = { id: "mina-manual", kind: "manual", name: "Min egenvård" };

  const csrf = () => {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"] || "";
    } catch (error) {
      return "";
    }
  };
  const me = () => document.body.dataset.user || "";

  const openDb = () => new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "client_id" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });

  const inStore = async (mode, work) => {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = work(tx.objectStore(STORE));
      tx.oncomplete = () => { db.close(); resolve(request ? request.result : undefined); };
      tx.onerror = () => { db.close(); reject(tx.error); };
    });
  };
  const queued = async () => (await inStore("readonly", (s) => s.getAll())).filter((i) => i.user === me());
  const keep = (item) => inStore("readwrite", (s) => s.put(item));
  const forget = (ids) => inStore("readwrite", (s) => { ids.forEach((id) => s.delete(id)); return null; });

  const status = (text) => {
    const box = document.getElementById("queue-status");
    if (!box) return;
    box.textContent = text;
    box.hidden = !text;
  };
  const showQueue = async () => {
    const box = document.getElementById("queue-status");
    if (!box) return;
    const waiting = (await queued()).length;
    box.dataset.waiting = String(waiting);
    status(waiting ? box.dataset.waitingText.replace("{n}", waiting) : "");
  };

  const number = (raw) => {
    const text = String(raw || "").trim().replace(",", ".").replace(/\s/g, "");
    return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : null;
  };

  const readingOf = (form) => {
    const type = form.elements.type.value;
    const components = form.dataset.components.split(",");
    const values = {};
    for (const component of components) {
      const value = number(form.elements[`${type}-${component}`].value);
      if (value === null) return null;
      values[component] = value;
    }
    const time = form.elements.time.value;
    if (!time) return null;
    return {
      client_id: form.elements.client_id.value,
      type,
      time: `${time.length === 16 ? `${time}:00` : time}${form.dataset.offset}`,
      unit: form.dataset.unit,
      value: components.length === 1 && components[0] === "value" ? values.value : values,
    };
  };

  let sending = false;
  const send = async () => {
    if (sending || !navigator.onLine) return;
    sending = true;
    try {
      const items = await queued();
      const byPath = new Map();
      items.forEach((item) => byPath.set(item.sync, [...(byPath.get(item.sync) || []), item]));
      let sent = 0;
      for (const [path, batch] of byPath) {
        const response = await fetch(path, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
          body: JSON.stringify({ source: SOURCE, readings: batch.map((i) => i.reading) }),
        });
        if (!response.ok) continue; // kept: sent again later
        const answer = await response.json();
        const answered = answer.results.map((r) => r.client_id).filter(Boolean);
        await forget(answered);
        sent += answered.length;
      }
      await showQueue();
      const box = document.getElementById("queue-status");
      if (sent && box && box.dataset.waiting === "0") status(box.dataset.sentText);
    } catch (error) {
      // No network after all, or the answer was lost: the values stay and go next time.
    } finally {
      sending = false;
    }
  };

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (form.getAttribute("action") === "/logout" && navigator.serviceWorker && navigator.serviceWorker.controller) {
      navigator.serviceWorker.controller.postMessage("logout");
      return;
    }
    if (!form.classList.contains("entry-form") || navigator.onLine) return;
    event.preventDefault();
    const reading = readingOf(form);
    if (!reading) {
      status(form.dataset.invalidText);
      return;
    }
    const waiting = await queued();
    if (waiting.some((i) => i.client_id === reading.client_id)) reading.client_id = crypto.randomUUID();
    await keep({ client_id: reading.client_id, user: me(), sync: form.dataset.sync, reading });
    form.elements.client_id.value = crypto.randomUUID(); // the next value is another one
    form.querySelectorAll("input.input-large[inputmode=decimal]").forEach((input) => { input.value = ""; });
    await showQueue();
  });

  window.addEventListener("online", send);
  window.addEventListener("load", () => {
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register("/mina/sw.js", { scope: "/mina" }).catch(() => {});
    }
    showQueue().then(send);
  });
})();

// Push: "Slå på aviseringar" on the settings page asks the browser for permission, subscribes
// through the service worker with the service's VAPID key (the page's data-vapid-key) and
// posts the subscription to /mina/push/subscriptions (session cookie + X-CSRF-Token). What a
// notification shows is the server's decision (the person's lock-screen setting).
(() => {
  "use strict";
  const PUSH_ID = "mina-push-id";
  const controls = () => document.getElementById("push-controls");
  const csrf = () => {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"] || "";
    } catch (error) {
      return "";
    }
  };
  const say = (key) => {
    const box = controls();
    const status = document.getElementById("push-status");
    if (!box || !status) return;
    status.textContent = box.dataset[key] || "";
    status.hidden = !status.textContent;
    status.dataset.state = key;
  };
  const keyBytes = (text) => {
    const base64 = (text + "=".repeat((4 - (text.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  };

  // The subscription's JSON to the server; its id is kept to turn push off again.
  const postSubscription = async (json) => {
    const box = controls();
    const patients = box && box.dataset.patients ? box.dataset.patients.split(",").filter(Boolean) : [];
    const response = await fetch("/mina/push/subscriptions", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify({
        endpoint: json.endpoint,
        keys: json.keys,
        expirationTime: json.expirationTime === undefined ? null : json.expirationTime,
        patient_ids: patients,
      }),
    });
    if (!response.ok) throw new Error(`the server refused the subscription (${response.status})`);
    const answer = await response.json();
    localStorage.setItem(PUSH_ID, answer.id);
    return answer.id;
  };

  const turnOn = async () => {
    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
      say("unsupportedText");
      return;
    }
    const permission = await Notification.requestPermission();
    if (permission !== "granted") {
      say("deniedText");
      return;
    }
    try {
      await navigator.serviceWorker.register("/mina/sw.js", { scope: "/mina" });
      const registration = await navigator.serviceWorker.ready;
      const subscription = (await registration.pushManager.getSubscription())
        || (await registration.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: keyBytes(controls().dataset.vapidKey),
        }));
      await postSubscription(subscription.toJSON());
      say("doneText");
    } catch (error) {
      say("failedText");
    }
  };

  const turnOff = async () => {
    const id = localStorage.getItem(PUSH_ID);
    try {
      if (id) {
        await fetch(`/mina/push/subscriptions/${encodeURIComponent(id)}`, {
          method: "DELETE",
          credentials: "same-origin",
          headers: { "X-CSRF-Token": csrf() },
        });
        localStorage.removeItem(PUSH_ID);
      }
      if ("serviceWorker" in navigator) {
        const registration = await navigator.serviceWorker.getRegistration("/mina");
        const subscription = registration && (await registration.pushManager.getSubscription());
        if (subscription) await subscription.unsubscribe();
      }
      say("stoppedText");
    } catch (error) {
      say("failedText");
    }
  };

  window.minaPush = { postSubscription, turnOn, turnOff };
  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target.closest("button") : null;
    if (!target) return;
    if (target.id === "push-on") turnOn();
    if (target.id === "push-off") turnOff();
  });
})();
