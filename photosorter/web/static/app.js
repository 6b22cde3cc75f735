// Photosorter's page: review queue, library, photo, map, health. Plain DOM, no build step.
// Every URL is relative: <base href> is Home Assistant's ingress prefix (or "/").
"use strict";

const TOKEN = document.querySelector('meta[name="csrf-token"]').content;
const CATEGORIES = JSON.parse(document.body.dataset.categories);
const NAMES = CATEGORIES.map((c) => c.name);
const KEYS = "1234567890-=";
const FOLDERS = [...NAMES, "_unsure", "_failed", "_duplicates"];
const PALETTE = ["#4fa3ff", "#ff6b6b", "#5fd38d", "#f6c344", "#c77dff", "#ff9f43", "#2ec4b6", "#e56b9f",
                 "#a3d95b", "#ffd6a5", "#8d99ae", "#6c757d", "#ffffff"];
const main = document.getElementById("main");
let view = { name: "", cleanup: () => {} };
// The review queue's first page comes in the HTML (a data block, not a script): the first paint waits for
// no request of its own. Used once, by the first screen if it is the queue; later pages are fetched.
let firstQueue = JSON.parse(document.getElementById("first-queue")?.textContent || "null");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value); // CSSOM: allowed by the page's CSP
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function flash(message, error = false) {
  const box = document.getElementById("flash");
  box.textContent = message;
  box.className = error ? "error" : "";
}

async function api(path, payload) {
  const options = payload === undefined ? {} : {
    method: "POST", body: JSON.stringify(payload),
    headers: { "Content-Type": "application/json", "X-CSRF-Token": TOKEN },
  };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) {
    const error = new Error(data.error || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

const pct = (value) => `${Math.round(value * 100)}%`;
const thumb = (id) => el("img", { src: `thumb/${id}`, alt: `photo ${id}`, loading: "lazy", decoding: "async" });

function categoryButtons(onPick, withKeys) {
  return CATEGORIES.map((c, i) => el("button", { dataset: { category: c.name }, onclick: () => onPick(c.name) },
    withKeys && i < KEYS.length ? el("kbd", {}, KEYS[i]) : null, c.title));
}

// Review queue ------------------------------------------------------------------------------------------
function reviewView() {
  const state = { items: [], selected: 0, total: 0, history: [], done: new Set() };
  const grid = el("div", { class: "grid", id: "queue" });
  const count = el("span", { class: "muted" });
  main.replaceChildren(
    el("div", { class: "bar" }, el("button", { class: "primary", onclick: () => accept(state.items[state.selected]) }, el("kbd", {}, "↵"), "Accept guess"),
      el("button", { onclick: () => undo() }, el("kbd", {}, "u"), "Undo"), count),
    el("div", { class: "bar", id: "categories" }, categoryButtons((name) => relabel(name, state.items[state.selected]), true)),
    grid);

  function render() {
    count.textContent = `${state.total} photos want a label · ←/→ choose · number relabels · Enter accepts`;
    grid.replaceChildren(...state.items.map((p, i) => el("div", {
      class: "card" + (i === state.selected ? " selected" : ""), dataset: { id: p.id },
      onclick: () => { state.selected = i; render(); }, ondblclick: () => { location.hash = `#/photo/${p.id}`; },
    }, thumb(p.id), el("div", { class: "caption" }, el("span", {}, p.category), el("span", { class: "muted" }, pct(p.score)),
      p.unsure ? el("span", { class: "badge" }, "unsure") : null))));
    if (!state.items.length) grid.replaceChildren(el("p", { class: "muted" }, "Nothing waits for a label. Well done."));
  }

  async function refill() {
    const data = firstQueue || await api("api/queue");  // the server's first-page size
    firstQueue = null;
    const shown = new Set(state.items.map((p) => p.id));
    state.items.push(...data.items.filter((p) => !shown.has(p.id) && !state.done.has(p.id)));
    state.total = data.total;
    state.selected = Math.min(state.selected, Math.max(0, state.items.length - 1));
    render();
    if (!document.body.dataset.queuePainted) {
      document.body.dataset.queuePainted = String(performance.now());
      performance.mark("queue-painted");
    }
  }

  // Keys are acted on one after another, each on the photo selected when its turn comes: typing ahead
  // of the server never loses a key nor labels a photo twice.
  let chain = Promise.resolve();
  const enqueue = (work) => { chain = chain.then(work).catch((error) => flash(error.message, true)); return chain; };

  // A click names its photo when it happens (a double click is one label); a key acts on the photo
  // selected when its turn comes (keys typed ahead label the next photos).
  const act = (category, clicked) => enqueue(async () => {
    const photo = clicked || state.items[state.selected];
    if (!photo || state.done.has(photo.id)) return;
    try {
      const done = await api("api/label", { id: photo.id, category: category || photo.category, version: photo.version });
      state.history.push({ action: done.action, id: photo.id });
      state.done.add(photo.id);
      state.items = state.items.filter((p) => p.id !== photo.id);
      flash(`photo ${photo.id}: ${done.label} (in ${done.folder})`);
      render();
      refill().catch((error) => flash(error.message, true));
    } catch (error) {
      flash(error.message, true);
      if (error.status === 409 || error.status === 404) { state.items = []; await refill(); }
    }
  });
  const accept = (clicked) => act(null, clicked);
  const relabel = (name, clicked) => act(name, clicked);

  const undo = () => enqueue(async () => {
    const last = state.history.pop();
    if (!last) { flash("nothing to undo"); return; }
    const photo = await api("api/undo", { action: last.action });
    state.done.delete(last.id);
    flash(`photo ${photo.id} is back in ${photo.folder}`);
    state.items = [];
    await refill();
  });

  function onKey(event) {
    if (event.target.tagName === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) return;
    const index = KEYS.indexOf(event.key);
    if (index >= 0 && index < NAMES.length) relabel(NAMES[index]);
    else if (event.key === "Enter" || event.key === "a") accept();
    else if (event.key === "u") undo();
    else if (event.key === "ArrowRight" || event.key === "j") { state.selected = Math.min(state.selected + 1, state.items.length - 1); render(); }
    else if (event.key === "ArrowLeft" || event.key === "k") { state.selected = Math.max(state.selected - 1, 0); render(); }
    else if (event.key === "o" && state.items[state.selected]) location.hash = `#/photo/${state.items[state.selected].id}`;
    else return;
    event.preventDefault();
  }
  document.addEventListener("keydown", onKey);
  refill().catch((error) => flash(error.message, true));
  return () => document.removeEventListener("keydown", onKey);
}

// Library -----------------------------------------------------------------------------------------------
function libraryView(folder, page) {
  folder = FOLDERS.includes(folder) ? folder : NAMES[0];
  page = Number(page) || 0;
  const grid = el("div", { class: "grid" });
  const pager = el("div", { class: "bar" });
  main.replaceChildren(el("div", { class: "bar" }, FOLDERS.map((f) => el("button", {
    class: f === folder ? "primary" : "", onclick: () => { location.hash = `#/library/${f}/0`; } }, f))), grid, pager);
  api(`api/library?folder=${encodeURIComponent(folder)}&page=${page}`).then((data) => {
    grid.replaceChildren(...data.items.map((p) => el("a", { class: "card", href: `#/photo/${p.id}`, dataset: { id: p.id } },
      thumb(p.id), el("div", { class: "caption" }, el("span", {}, p.category || p.folder), el("span", { class: "muted" }, pct(p.score))))));
    if (!data.items.length) grid.replaceChildren(el("p", { class: "muted" }, "No photos here."));
    pager.replaceChildren(
      el("button", { onclick: () => { location.hash = `#/library/${folder}/${Math.max(0, page - 1)}`; } }, "← Newer"),
      el("span", { class: "muted" }, `page ${data.page + 1} of ${data.pages} · ${data.total} photos`),
      el("button", { onclick: () => { location.hash = `#/library/${folder}/${Math.min(data.pages - 1, page + 1)}`; } }, "Older →"));
  }).catch((error) => flash(error.message, true));
  return () => {};
}

// Photo -------------------------------------------------------------------------------------------------
function photoView(id) {
  async function load() {
    const p = await api(`api/photo/${id}`);
    const frame = el("div", { class: "frame" }, el("img", { src: `image/${id}`, alt: p.name, id: "large" }));
    for (const face of p.faces) {
      const [x, y, w, h] = face.box;
      frame.append(el("div", { class: "face" + (face.me ? " me" : ""), dataset: { face: face.number },
        style: { left: pct(x), top: pct(y), width: pct(w), height: pct(h) } }, el("span", {}, `${face.number}${face.me ? " · me" : ""}`)));
    }
    const relabel = async (name) => {
      try { await api("api/label", { id: p.id, category: name, version: p.version }); flash(`labelled ${name}`); load(); }
      catch (error) { flash(error.message, true); if (error.status === 409) load(); }
    };
    const faces = p.faces.map((face) => el("div", { class: "bar" }, `Face ${face.number}: `,
      face.me ? el("span", { class: "ok" }, `me (${face.me_score})`) : el("span", { class: "muted" }, `not me (${face.me_score})`),
      face.reference ? el("button", { dataset: { removeReference: face.reference }, onclick: async () => {
        try { await api("api/me/remove", { reference: face.reference }); flash("reference face removed"); load(); }
        catch (error) { flash(error.message, true); } } }, "Remove reference face")
        : el("button", { dataset: { meFace: face.number }, onclick: async () => {
          try { await api("api/me", { id: p.id, face: face.number }); flash(`face ${face.number} is you now`); load(); }
          catch (error) { flash(error.message, true); } } }, "This is me")));
    main.replaceChildren(el("div", { class: "photo" }, el("div", {}, frame), el("div", { class: "side" },
      el("section", {}, el("h3", {}, p.name), el("p", {}, `In ${p.folder}`, p.label ? ` · labelled ${p.label}` : " · not labelled")),
      el("section", {}, el("h3", {}, "Best categories"), el("table", {}, p.top.map((t) => el("tr", {}, el("td", {}, t.category), el("td", { class: "num" }, pct(t.probability)))))),
      el("section", {}, el("h3", {}, "Label as"), el("div", { class: "bar", id: "photo-categories" }, categoryButtons(relabel, false))),
      el("section", {}, el("h3", {}, "Faces"), faces.length ? faces : el("p", { class: "muted" }, "No faces found.")),
      el("section", {}, el("h3", {}, "Nearest labelled photos"), el("div", { class: "neighbours" }, p.neighbours.map((n) =>
        el("a", { href: `#/photo/${n.id}`, title: `${n.category} (${n.similarity})` }, thumb(n.id))))))));
  }
  load().catch((error) => { flash(error.message, true); main.replaceChildren(el("p", { class: "bad" }, error.message)); });
  return () => {};
}

// Map ---------------------------------------------------------------------------------------------------
function mapView() {
  delete document.body.dataset.mapDrawn;
  const canvas = el("canvas", { id: "map-canvas" });
  const tip = el("div", { id: "tip" }, el("img", { alt: "" }));
  const selection = el("div", { class: "bar", id: "selection" });
  const legend = el("div", { class: "legend" });
  main.replaceChildren(el("p", { class: "muted" }, "Hover a point to see it, click to open it, drag a box to label many."),
    legend, selection, el("div", { id: "map" }, canvas, tip));
  let data = null; let box = null; let drag = null;
  const MARGIN = 16;  // canvas pixels around the points, room to start a box outside all of them
  const xy = (i) => [MARGIN + data.x[i] * (canvas.width - 2 * MARGIN), MARGIN + (1 - data.y[i]) * (canvas.height - 2 * MARGIN)];

  function draw() {
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    for (let i = 0; i < data.ids.length; i++) {
      const [x, y] = xy(i);
      ctx.fillStyle = PALETTE[data.folder[i] % PALETTE.length];
      if (data.labelled[i]) { ctx.fillRect(x - 3, y - 3, 6, 6); ctx.strokeStyle = "#fff"; ctx.strokeRect(x - 3, y - 3, 6, 6); }
      else ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
    }
    if (box) { ctx.strokeStyle = "#fff"; ctx.setLineDash([4, 3]); ctx.strokeRect(box.x, box.y, box.w, box.h); ctx.setLineDash([]); }
  }
  function nearest(mx, my) {
    let best = -1; let bestD = 64;
    for (let i = 0; i < data.ids.length; i++) {
      const [x, y] = xy(i); const d = (x - mx) ** 2 + (y - my) ** 2;
      if (d < bestD) { bestD = d; best = i; }
    }
    return best;
  }
  const local = (event) => { const r = canvas.getBoundingClientRect(); return [(event.clientX - r.left) * canvas.width / r.width, (event.clientY - r.top) * canvas.height / r.height]; };
  canvas.addEventListener("mousedown", (event) => { drag = local(event); box = null; });
  canvas.addEventListener("mousemove", (event) => {
    if (!data) return;
    const [mx, my] = local(event);
    if (drag && Math.abs(mx - drag[0]) + Math.abs(my - drag[1]) > 6) {
      box = { x: Math.min(drag[0], mx), y: Math.min(drag[1], my), w: Math.abs(mx - drag[0]), h: Math.abs(my - drag[1]) };
      draw(); return;
    }
    const i = nearest(mx, my);
    tip.style.display = i < 0 ? "none" : "block";
    if (i >= 0) {
      const src = `thumb/${data.ids[i]}`;
      if (tip.firstChild.getAttribute("src") !== src) tip.firstChild.setAttribute("src", src);
      tip.style.left = `${event.offsetX + 12}px`; tip.style.top = `${event.offsetY + 12}px`;
      tip.dataset.id = data.ids[i];
    }
  });
  const onUp = (event) => {  // on the window: a box may end outside the canvas
    if (!data || !drag) return;
    const [mx, my] = local(event);
    if (Math.abs(mx - drag[0]) + Math.abs(my - drag[1]) > 6) {
      box = { x: Math.min(drag[0], mx), y: Math.min(drag[1], my), w: Math.abs(mx - drag[0]), h: Math.abs(my - drag[1]) };
      draw();
    }
    if (box) {
      const chosen = data.ids.filter((_, i) => { const [x, y] = xy(i); return x >= box.x && x <= box.x + box.w && y >= box.y && y <= box.y + box.h; });
      selection.replaceChildren(el("span", {}, `${chosen.length} photos selected: label as`), ...categoryButtons(async (name) => {
        flash(`labelling ${chosen.length} photos ${name}…`);
        try { const done = await api("api/label-many", { ids: chosen, category: name }); flash(`labelled ${done.labelled} photos ${name}`); box = null; selection.replaceChildren(); load(); }
        catch (error) { flash(error.message, true); }
      }, false));
    } else {
      const i = nearest(mx, my);
      if (i >= 0) location.hash = `#/photo/${data.ids[i]}`;
    }
    drag = null;
  };
  window.addEventListener("mouseup", onUp);
  async function load() {
    const started = performance.now();
    data = await api("api/map");
    canvas.width = canvas.clientWidth * devicePixelRatio; canvas.height = canvas.clientHeight * devicePixelRatio;
    legend.replaceChildren(...data.folders.map((f, i) => el("span", {}, el("i", { style: { background: PALETTE[i % PALETTE.length] } }), f)),
      el("span", { class: "muted" }, `${data.ids.length} photos · squares are labelled`));
    draw();
    document.body.dataset.mapDrawn = String(performance.now() - started);
  }
  load().catch((error) => flash(error.message, true));
  return () => window.removeEventListener("mouseup", onUp);
}

// Health ------------------------------------------------------------------------------------------------
function healthView() {
  api("api/health").then((h) => {
    const rows = (pairs) => el("table", {}, pairs.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { class: "num" }, v))));
    const icloud = h.daemon && h.icloud ? el("section", { id: "icloud" }, el("h3", {}, "iCloud"),
      h.icloud.ok ? el("p", { class: "ok" }, "Signed in") : h.icloud.reachable === false ? el("p", { class: "bad" }, h.icloud.message)
        : el("div", {}, el("p", { class: "bad" }, h.icloud.message || "login needed"),
        el("form", { class: "bar", onsubmit: async (event) => {
          event.preventDefault();
          const code = event.target.elements.code.value;
          try { const r = await api("api/icloud/code", { code }); flash(r.ok ? "iCloud login done" : r.message, !r.ok); healthView(); }
          catch (error) { flash(error.message, true); }
        } }, el("input", { type: "text", name: "code", inputmode: "numeric", autocomplete: "one-time-code", placeholder: "6-digit code", maxlength: "6" }),
        el("button", { type: "submit" }, "Send code"))),
      el("p", { class: "muted" }, `Last sync: ${h.last_sync || "never"}`)) : null;
    const changed = h.corrections.labels ? pct(h.corrections.changed / h.corrections.labels) : "–";
    main.replaceChildren(el("div", { class: "panels" },
      icloud,
      el("section", { id: "problems" }, el("h3", {}, "Problems"), h.problems.length ? el("ul", {}, h.problems.map((p) => el("li", { class: "bad" }, p))) : el("p", { class: "ok" }, "None"),
        h.drift ? el("p", { class: "bad" }, `Drift: ${h.drift}`) : el("p", { class: "muted" }, "No drift found")),
      el("section", { id: "references" }, el("h3", {}, "Your face"), h.references.length ? el("div", { class: "neighbours" },
        h.references.map((r) => el("div", {}, el("a", { href: `#/photo/${r.photo}`, title: `face ${r.face}` }, thumb(r.photo)),
          el("button", { dataset: { removeReference: r.id }, onclick: async () => {
            try { await api("api/me/remove", { reference: r.id }); flash("reference face removed"); healthView(); }
            catch (error) { flash(error.message, true); } } }, "Remove"))))
        : el("p", { class: "muted" }, "No reference faces yet: open a photo of you and click “This is me” on your face.")),
      el("section", {}, el("h3", {}, "Corrections"), el("p", {}, `${h.corrections.changed} of the last ${h.corrections.labels} labels changed the guess (${changed})`)),
      el("section", {}, el("h3", {}, "Photos per folder"), rows(FOLDERS.map((f) => [f, h.counts[f] || 0]))),
      el("section", {}, el("h3", {}, "Labels"), rows(NAMES.map((n) => [n, h.labels[n] || 0]))),
      el("section", {}, el("h3", {}, "Evaluation runs"), h.runs.length ? el("table", {}, el("tr", {}, el("th", {}, "date"), el("th", {}, "model"), el("th", {}, "blend")),
        h.runs.map((r) => el("tr", {}, el("td", {}, (r.date || "").slice(0, 16)), el("td", {}, r.model), el("td", { class: "num" }, pct(r.blend || 0)))))
        : el("p", { class: "muted" }, "No evaluation runs yet."))));
  }).catch((error) => flash(error.message, true));
  return () => {};
}

// Router ------------------------------------------------------------------------------------------------
function route() {
  view.cleanup();
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const name = parts[0] || "review";
  for (const link of document.querySelectorAll("[data-nav]")) link.classList.toggle("active", link.dataset.nav === name);
  const views = { review: reviewView, library: () => libraryView(parts[1], parts[2]), photo: () => photoView(Number(parts[1])),
                  map: mapView, health: healthView };
  view = { name, cleanup: (views[name] || reviewView)() || (() => {}) };
  firstQueue = null;  // stale once the person has moved on
}
window.addEventListener("hashchange", route);
route();
