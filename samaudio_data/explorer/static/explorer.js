// The explorer widget's browser code: an ES module for anywidget (no build step).
// It lays out what the kernel sends in four synced traits: `shortcuts` (sent once: the keys the
// kernel handles and the help line), `view` (the row), `table` (one page of the queue table)
// and `media` (WAV and PNG bytes per lane). Actions go back as custom messages
// ({action: "decide", decision: "keep"}, ...). Playback, the playhead, click-to-seek and lane
// switching stay in the browser.
const h = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const LANES = ["original", "isolated", "residual"];

function blobUrl(buf, type) {
  if (!buf) return "";
  const bytes = buf instanceof DataView ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
    : buf instanceof ArrayBuffer ? new Uint8Array(buf) : buf;
  if (!bytes || !bytes.byteLength) return "";
  return URL.createObjectURL(new Blob([bytes], { type }));
}

function button(text, title, cls, onClick) {
  const b = h("button", "sa-btn " + (cls || ""), text);
  b.type = "button";
  b.title = title;
  b.addEventListener("click", (e) => { e.preventDefault(); onClick(); });
  return b;
}

function input(placeholder, width, onEnter) {
  const i = h("input", "sa-input");
  i.placeholder = placeholder;
  if (width) i.style.width = width;
  i.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); onEnter(); } });
  return i;
}

function select(options, onChange) {
  const s = h("select", "sa-select");
  const set = (opts) => {
    s.replaceChildren(...opts.map(([value, text]) => { const o = h("option", "", text); o.value = value; return o; }));
  };
  set(options);
  s.addEventListener("change", onChange);
  s.setOptions = set;
  return s;
}

function render({ model, el }) {
  const send = (action, extra) => model.send(Object.assign({ action }, extra || {}));
  const root = h("div", "sa-root");
  root.tabIndex = 0;
  // JupyterLab and Notebook 7 (Lumino) skip their shortcuts for keys pressed in here; the
  // keydown handler below also stops the keys from bubbling to the page
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  el.appendChild(root);

  // --- header -------------------------------------------------------------------------
  const top = h("div", "sa-top");
  const title = h("span", "sa-title");
  const badge = h("span", "sa-badge");
  const position = h("span", "sa-position");
  const keysState = h("span", "sa-keys", "click here to use keys");
  const spend = h("span", "sa-spend");
  const left = h("div", "sa-top-left");
  // several sounds per row (isolate({...})): which stem the lanes and signals show
  const stemBox = h("select", "sa-stem");
  stemBox.title = "the stem shown (each row has one per sound isolated)";
  stemBox.addEventListener("change", () => send("stem", { stem: stemBox.value }));
  left.append(title, badge, position, stemBox);
  top.append(left, keysState, spend);
  const info = h("div", "sa-info");
  const err = h("div", "sa-error");

  // --- lanes ----------------------------------------------------------------------------
  const lanesBox = h("div", "sa-lanes");
  const lanes = {};
  let active = "original";
  for (const [i, name] of LANES.entries()) {
    const lane = h("div", "sa-lane");
    lane.dataset.lane = name;
    const headBox = h("div", "sa-lhead");
    const label = h("div", "sa-label");
    const labelName = h("b", "", `${i + 1} ${name}`);
    const note = h("small", "sa-note");
    label.append(labelName, note);
    const audio = h("audio", "sa-player");
    audio.controls = true; audio.preload = "metadata"; audio.autoplay = false; audio.loop = false;
    headBox.append(label, audio);
    const plots = {};
    for (const kind of ["wave", "spec"]) {
      const plot = h("div", `sa-plot sa-${kind}`);
      plot.dataset.lane = name;
      const img = h("img", "sa-img");
      img.alt = `${name} ${kind === "wave" ? "waveform" : "spectrogram"}`;
      img.draggable = false;
      const axis = h("div", "sa-axis");
      const head = h("div", "sa-playhead");
      plot.append(img, axis, head);
      plot.addEventListener("click", (e) => {
        const r = plot.getBoundingClientRect();
        const frac = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
        seek(name, frac);
      });
      plots[kind] = { plot, img, axis, head };
    }
    lane.append(headBox, plots.wave.plot, plots.spec.plot);
    lane.addEventListener("mousedown", () => setActive(name));
    lanesBox.appendChild(lane);
    lanes[name] = { lane, note, audio, plots, url: "" };
    audio.addEventListener("play", () => { setActive(name); for (const o of LANES) if (o !== name) lanes[o].audio.pause(); tick(); });
    audio.addEventListener("timeupdate", () => drawHead(name));
    audio.addEventListener("seeked", () => drawHead(name));
    audio.addEventListener("loadedmetadata", () => drawHead(name));
  }

  function duration(name) {
    const a = lanes[name].audio;
    return isFinite(a.duration) && a.duration > 0 ? a.duration : (model.get("view").seconds || 0);
  }
  function drawHead(name) {
    const a = lanes[name].audio, d = duration(name);
    const frac = d > 0 ? Math.min(1, a.currentTime / d) : 0;
    for (const kind of ["wave", "spec"]) {
      const head = lanes[name].plots[kind].head;
      head.style.left = (frac * 100).toFixed(3) + "%";
      head.dataset.time = a.currentTime.toFixed(3);
      head.classList.toggle("sa-hidden", a.currentTime === 0 && a.paused);
    }
  }
  let ticking = false;
  function tick() {
    if (ticking) return;
    ticking = true;
    const step = () => {
      let playing = false;
      for (const n of LANES) { if (!lanes[n].audio.paused) { playing = true; drawHead(n); } }
      if (playing) requestAnimationFrame(step); else ticking = false;
    };
    requestAnimationFrame(step);
  }
  function seek(name, frac) {
    setActive(name);
    const a = lanes[name].audio, d = duration(name);
    if (d > 0) a.currentTime = frac * d;
    drawHead(name);
  }
  function setActive(name) {
    active = name;
    for (const n of LANES) lanes[n].lane.classList.toggle("sa-active", n === name);
  }
  function switchTo(name) {   // 1/2/3: hear another lane from the same moment
    const from = lanes[active].audio, to = lanes[name].audio;
    const playing = !from.paused;
    if (name !== active) { to.currentTime = from.currentTime; from.pause(); }
    setActive(name);
    if (playing) to.play().catch(() => {});
    drawHead(name);
  }
  function playPause() {
    const a = lanes[active].audio;
    if (a.paused) a.play().catch(() => {}); else a.pause();
  }

  // --- decisions ------------------------------------------------------------------------
  const actions = h("div", "sa-actions");
  const undoBtn = button("undo (z)", "undo the last decision", "", () => send("undo"));
  const rowBox = input("row", "6em", () => send("goto", { row: rowBox.value }));
  actions.append(
    button("◀ prev (j)", "previous row in the queue", "", () => send("prev")),
    button("keep (k)", "keep this row", "sa-keep", () => send("decide", { decision: "keep" })),
    button("discard (d)", "discard this row", "sa-discard", () => send("decide", { decision: "discard" })),
    button("flag (f)", "flag this row for a second look", "sa-flag", () => send("decide", { decision: "flag" })),
    button("clear (u)", "clear this row's decision", "", () => send("decide", { decision: "" })),
    button("next (l) ▶", "next row in the queue", "", () => send("next")),
    undoBtn, h("span", "sa-gap"), h("label", "sa-lbl", "go to row"), rowBox,
    button("go", "show this row (1-based; Enter works too)", "", () => send("goto", { row: rowBox.value })));
  const signals = h("div", "sa-signals");
  const message = h("div", "sa-message");

  // --- the queue table ------------------------------------------------------------------
  const queue = h("div", "sa-queue");
  const qhead = h("div", "sa-qhead");
  const counts = h("span", "sa-counts");
  qhead.append(h("b", "", "queue"), counts);
  const filters = h("div", "sa-filters");
  const search = input("search text columns", "14em", () => applyFilter());
  const fcol = select([["", "range: no column"]], () => {});
  const fmin = input("min", "5em", () => applyFilter());
  const fmax = input("max", "5em", () => applyFilter());
  const fdec = select([["", "any decision"], ["undecided", "undecided"], ["keep", "keep"], ["discard", "discard"], ["flag", "flag"]], () => applyFilter());
  const applyFilter = () => send("filter", { text: search.value, column: fcol.value, min: fmin.value, max: fmax.value, decision: fdec.value });
  const doubtBtn = button("doubtful first", "only the rows the quality triage flagged, most doubtful first (then a bulk decision applies to them)", "sa-doubtful", () => send("doubtful"));
  filters.append(search, fcol, fmin, fmax, fdec,
    button("filter", "apply the filter (Enter in a box works too)", "", applyFilter),
    button("clear filter", "show every row", "", () => send("filter", {})), doubtBtn);
  const bulkBar = h("div", "sa-bulk");
  const tableWrap = h("div", "sa-table-wrap");
  const table = h("table", "sa-table");
  const thead = h("thead"), tbody = h("tbody");
  table.append(thead, tbody);
  tableWrap.append(table);
  const pager = h("div", "sa-pager");
  const pageInfo = h("span", "sa-pageinfo");
  const pagePrev = button("◀ page", "previous page", "", () => send("page", { page: model.get("table").page - 1 }));
  const pageNext = button("page ▶", "next page", "", () => send("page", { page: model.get("table").page + 1 }));
  pager.append(pagePrev, pageInfo, pageNext);
  queue.append(qhead, filters, bulkBar, tableWrap, pager);

  // --- re-isolation ---------------------------------------------------------------------
  const reiso = h("div", "sa-reiso");
  const desc = input("what to isolate, e.g. man speaking", "18em", () => askPrice());
  const cand = input("candidates", "4em", () => askPrice());
  const askPrice = () => send("quote", { description: desc.value, candidates: cand.value });
  const priceBtn = button("price", "show what re-isolating this row costs (sends nothing)", "", askPrice);
  const confirmBtn = button("confirm", "spend it: re-isolate this row", "sa-primary",
    () => send("confirm", { description: desc.value, candidates: cand.value }));
  const quote = h("span", "sa-quote");
  reiso.append(h("label", "sa-lbl", "re-isolate"), desc, h("label", "sa-lbl", "candidates"), cand, priceBtn, confirmBtn, quote);
  const help = h("div", "sa-help");

  root.append(top, info, err, lanesBox, actions, message, signals, queue, reiso, help);

  // --- keys -------------------------------------------------------------------------------
  // the keys the kernel acts on and the help line come from Python once (the `shortcuts` trait)
  const keys = model.get("shortcuts") || {};
  const kernelKeys = new Set(keys.actions || []);
  help.replaceChildren(...(keys.help || []).map(([k, what]) => {
    const s = h("span", "sa-keyhelp"); s.append(h("kbd", "", k), document.createTextNode(" " + what)); return s;
  }));
  const focusState = () => {
    const on = root.contains(document.activeElement);
    root.classList.toggle("sa-focused", on);
    keysState.textContent = on ? "keys active" : "click here to use keys";
  };
  root.addEventListener("focusin", focusState);
  root.addEventListener("focusout", () => setTimeout(focusState, 0));
  root.addEventListener("mousedown", (e) => {
    const t = e.target;
    // keep the focus on the explorer itself (not on a button, where space or Enter would
    // press it again); boxes and players keep theirs
    if (!t.closest("input, select, textarea, audio")) { setTimeout(() => root.focus({ preventScroll: true }), 0); }
  });
  root.addEventListener("keydown", (e) => {
    e.stopPropagation();   // the notebook never sees a key pressed in the explorer
    const t = e.target;
    const typing = t.matches && t.matches("input, select, textarea");
    if (typing) {
      if (e.key === "Escape") { t.blur(); root.focus({ preventScroll: true }); }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s") e.preventDefault();  // no "save page"
      return;
    }
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (kernelKeys.has(key)) { e.preventDefault(); send("key", { key }); return; }
    if (key === " ") { e.preventDefault(); playPause(); return; }
    if (["1", "2", "3"].includes(key)) { e.preventDefault(); switchTo(LANES[+key - 1]); return; }
    if (key === "ArrowUp" || key === "ArrowDown") {
      e.preventDefault();
      const i = LANES.indexOf(active) + (key === "ArrowUp" ? -1 : 1);
      switchTo(LANES[(i + 3) % 3]);
    }
  });
  for (const evt of ["keyup", "keypress"]) root.addEventListener(evt, (e) => e.stopPropagation());

  // --- drawing what the kernel sends ------------------------------------------------------
  function axes(v) {
    for (const n of LANES) {
      for (const kind of ["wave", "spec"]) {
        const axis = lanes[n].plots[kind].axis;
        const marks = (v.time_ticks || []).map(([frac, label]) => {
          const m = h("span", "sa-tick", label);
          m.style.left = (frac * 100) + "%";
          if (frac > 0.97) m.classList.add("sa-tick-end");
          return m;
        });
        if (kind === "spec") {
          const f = v.freq_ticks || [];
          f.forEach(([frac, label], i) => {
            const m = h("span", "sa-ftick", label + (i === f.length - 1 ? " Hz" : ""));
            m.style.bottom = (frac * 100) + "%";
            marks.push(m);
          });
        }
        axis.replaceChildren(...marks);
      }
    }
  }

  function drawView() {
    const v = model.get("view") || {};
    title.textContent = v.title || "";
    badge.textContent = v.decision || "undecided";
    badge.className = "sa-badge sa-d-" + (v.decision || "none");
    position.textContent = v.position || "";
    spend.textContent = v.spend || "";
    info.textContent = v.info || "";
    const stems = v.stems || [];
    stemBox.style.display = stems.length > 1 ? "" : "none";
    if (stemBox.options.length !== stems.length || [...stemBox.options].some((o, i) => o.value !== stems[i])) {
      stemBox.replaceChildren(...stems.map((s) => { const o = h("option", "", s); o.value = s; return o; }));
    }
    stemBox.value = v.stem || "";
    err.textContent = v.error ? "error: " + v.error : "";
    for (const lane of v.lanes || []) {
      lanes[lane.name].note.textContent = lane.note || "";
      lanes[lane.name].lane.classList.toggle("sa-empty", !!lane.empty);
    }
    axes(v);
    if (document.activeElement !== rowBox) rowBox.value = v.number || "";
    message.textContent = v.message || "";
    message.classList.toggle("sa-bad", !!v.message_error);
    undoBtn.disabled = !v.undo;
    undoBtn.title = v.undo ? "undo " + v.undo : "nothing to undo";
    signals.replaceChildren(...(v.signals || []).map((s) => {
      const c = h("div", "sa-sig");
      c.append(h("small", "", s.name), h("span", "sa-sigval", s.value));
      if (s.was) c.append(h("small", "sa-was", "was " + s.was));
      c.title = s.column;
      return c;
    }));
    counts.textContent = v.counts_text || "";
    bulkBar.replaceChildren();
    if (v.bulk && v.bulk.decision) {
      const msg = h("span", "sa-confirm-text", `${v.bulk.decision} all ${v.bulk.count} rows of the current filter?`);
      bulkBar.append(msg,
        button(`yes, ${v.bulk.decision} ${v.bulk.count} rows`, "apply to every row in the queue", "sa-primary sa-bulk-yes", () => send("bulk_confirm")),
        button("cancel", "do nothing", "", () => send("bulk_cancel")));
    } else {
      const total = v.queue_length || 0;
      bulkBar.append(h("span", "sa-lbl", `all ${total} rows in the queue:`));
      for (const d of ["keep", "discard", "flag"]) {
        bulkBar.append(button(`${d} all ${total}`, `${d} every row of the current filter (asks first)`, "sa-bulk-" + d, () => send("bulk", { decision: d })));
      }
    }
    const q = v.quote || {};
    quote.textContent = q.text || "";
    confirmBtn.disabled = !q.ready;
    confirmBtn.textContent = q.ready ? q.label : "confirm";
    if (document.activeElement !== desc && v.description !== undefined) desc.value = v.description;
    if (document.activeElement !== cand && v.candidates !== undefined) cand.value = v.candidates;
    reiso.classList.toggle("sa-hidden", !v.can_reisolate);
    doubtBtn.classList.toggle("sa-hidden", !v.can_doubt);
  }

  // a header may break after "_" or "." ("target_" / "db"), so that it is never wider than
  // its numbers need
  function breakable(text) {
    const out = [];
    for (const part of text.split(/(?<=[_.])/)) {
      if (out.length) out.push(document.createElement("wbr"));
      out.push(document.createTextNode(part));
    }
    return out;
  }

  // narrow the text columns (cut with an ellipsis; the full text is the cell's title) until
  // the table fits its box; only then, at the narrowest, does the box scroll sideways
  function fitTable() {
    if (!tableWrap.clientWidth) return;
    for (const w of [24, 18, 14, 11, 8, 6, 4]) {
      table.style.setProperty("--sa-text-width", w + "ch");
      if (table.scrollWidth <= tableWrap.clientWidth + 1) return;
    }
  }
  const fitter = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => fitTable());
  if (fitter) fitter.observe(tableWrap);

  function drawTable() {
    const t = model.get("table") || {};
    const cols = t.columns || [];
    const sort = t.sort || {};
    const hr = h("tr");
    const th0 = h("th", "sa-num", "#");
    th0.title = "row (1-based); click to sort by row";
    th0.addEventListener("click", () => send("sort", { column: "" }));
    hr.append(th0, h("th", "", "decision"));
    for (const c of cols) {
      const arrow = sort.column === c.name ? (sort.ascending ? " ▲" : " ▼") : "";
      const th = h("th", c.kind === "text" ? "" : "sa-num");
      th.append(...breakable(c.short + arrow));
      th.title = `${c.name}: click to sort`;
      th.addEventListener("click", () => send("sort", { column: c.name, ascending: sort.column === c.name ? !sort.ascending : true }));
      hr.append(th);
    }
    thead.replaceChildren(hr);
    tbody.replaceChildren(...(t.rows || []).map((r) => {
      const tr = h("tr", r.current ? "sa-current" : "");
      tr.dataset.row = r.label;
      const dec = h("td", "sa-d-" + (r.decision || "none"), r.decision || "");
      tr.append(h("td", "sa-num", r.label), dec);
      r.cells.forEach((text, i) => {
        const td = h("td", cols[i] && cols[i].kind === "text" ? "sa-text" : "sa-num", text);
        td.title = text;
        tr.append(td);
      });
      tr.addEventListener("click", () => send("open", { row: r.row }));
      return tr;
    }));
    fitTable();
    pageInfo.textContent = `page ${(t.page || 0) + 1} of ${t.pages || 1} · ${t.total || 0} of ${t.n || 0} rows`;
    pagePrev.disabled = !(t.page > 0);
    pageNext.disabled = !((t.page || 0) + 1 < (t.pages || 1));
    const f = t.filter || {};
    fcol.setOptions([["", "range: no column"]].concat((t.numeric || []).map((c) => [c.name, c.short])));
    if (document.activeElement !== fcol) fcol.value = f.column || "";
    if (document.activeElement !== fmin) fmin.value = f.min || "";
    if (document.activeElement !== fmax) fmax.value = f.max || "";
    if (document.activeElement !== search) search.value = f.text || "";
    search.classList.toggle("sa-hidden", !t.has_text);
    fdec.value = f.decision || "";
  }

  function drawMedia() {
    const m = model.get("media") || {};
    for (const n of LANES) {
      const lane = lanes[n], parts = m[n] || {};
      lane.audio.pause();
      for (const u of lane.urls || []) URL.revokeObjectURL(u);
      const wav = blobUrl(parts.wav, "audio/wav");
      const wave = blobUrl(parts.wave, "image/png");
      const spec = blobUrl(parts.spec, "image/png");
      lane.urls = [wav, wave, spec].filter(Boolean);
      if (wav) lane.audio.src = wav; else lane.audio.removeAttribute("src");
      lane.plots.wave.img.src = wave;
      lane.plots.spec.img.src = spec;
      drawHead(n);
    }
  }

  model.on("change:view", drawView);
  model.on("change:table", drawTable);
  model.on("change:media", drawMedia);
  drawMedia(); drawView(); drawTable(); setActive("original"); focusState();
  return () => {
    if (fitter) fitter.disconnect();
    for (const n of LANES) for (const u of lanes[n].urls || []) URL.revokeObjectURL(u);
  };
}

export default { render };
