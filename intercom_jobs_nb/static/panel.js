// The JobsPanel's page: one anywidget front end, a plain ES module (no build step).
// The model (traits set by Python) says what to show; what the person does goes back as
// messages ({type: ...}) or, for plain values (region, ids, interval, CSV path), as traits.
// The token is never a trait: it travels in the Refresh message only, and the field is emptied.

const ROW_HEIGHT = 24; // px: every table row, so the scroll position says which rows are in sight
const MARGIN = 40; // rows asked beyond those in sight, each side
const MAX_WINDOW = 200; // rows the kernel sends at most per view (MAX_WINDOW in Python)
const MARKS = { failed: ["\u2716", "the job failed"], error: ["\u26a0", "the status could not be read"] };

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v);
  }
  for (const child of children) if (child) el.append(child);
  return el;
}

function labelled(cls, text, control) {
  return h("label", { class: `ij-field ${cls}` }, h("span", { class: "ij-label", text }), control);
}

function options(select, choices, value) {
  const key = JSON.stringify(choices);
  if (select.dataset.choices !== key) {
    select.replaceChildren(...choices.map(([label, v]) => h("option", { value: v, text: label })));
    select.dataset.choices = key;
  }
  select.value = value;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (_err) {
    // No clipboard API here (an insecure context, or no permission): the older way.
    const area = h("textarea", { class: "ij-copy-buffer" });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

function chartSvg(chart, tip) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    return el;
  };
  const W = 400, H = 220, top = 34, bottom = 28, left = 16;
  const bars = chart.bars || [];
  const most = Math.max(1, ...bars.map((b) => b.count));
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "ij-chart-svg" });
  const title = svg("text", { x: W / 2, y: 16, "text-anchor": "middle", class: "ij-chart-title" });
  title.textContent = chart.title || "";
  root.append(title);
  const step = (W - 2 * left) / Math.max(1, bars.length);
  bars.forEach((b, k) => {
    const height = ((H - top - bottom) * b.count) / most;
    const x = left + k * step + step * 0.2, y = H - bottom - height;
    const rect = svg("rect", { x, y, width: step * 0.6, height: Math.max(height, 0.5),
      fill: b.color, class: "ij-bar", "data-outcome": b.outcome, tabindex: 0 });
    const hover = svg("title", {});
    hover.textContent = `${b.outcome}: ${b.label} jobs (${b.share})`;
    rect.append(hover);
    const show = (ev) => {
      tip.textContent = `${b.outcome}: ${b.label} jobs (${b.share})`;
      tip.hidden = false;
      const box = root.getBoundingClientRect(), r = rect.getBoundingClientRect();
      tip.style.left = `${r.left - box.left + r.width / 2}px`;
      tip.style.top = `${r.top - box.top}px`;
      if (ev.type === "focus") rect.classList.add("ij-bar-focus");
    };
    const hide = () => { tip.hidden = true; rect.classList.remove("ij-bar-focus"); };
    rect.addEventListener("mouseenter", show);
    rect.addEventListener("focus", show);
    rect.addEventListener("mouseleave", hide);
    rect.addEventListener("blur", hide);
    const count = svg("text", { x: x + step * 0.3, y: y - 4, "text-anchor": "middle", class: "ij-bar-count" });
    count.textContent = b.label;
    const name = svg("text", { x: x + step * 0.3, y: H - 10, "text-anchor": "middle", class: "ij-bar-name" });
    name.textContent = b.outcome;
    root.append(rect, count, name);
  });
  return root;
}

function button(cls, text, title) {
  return h("button", { class: `ij-button ${cls}`, type: "button", title, text });
}

// -- the page's elements ---------------------------------------------------------------------

function inputsPart(ui) {
  ui.token = h("input", { type: "password", autocomplete: "off", spellcheck: "false" });
  ui.region = h("select");
  ui.ids = h("textarea", { rows: 4, placeholder: "one id a line (or separated by commas/spaces)" });
  ui.tokenNote = h("div", { class: "ij-note ij-token-note" });
  ui.file = h("input", { type: "file", accept: ".csv,.txt", class: "ij-file" });
  ui.file.hidden = true;
  ui.upload = button("ij-upload", "Upload ids", "a .csv or .txt of job ids");
  ui.uploadMsg = h("span", { class: "ij-msg ij-upload-msg" });
  ui.refresh = button("ij-primary ij-refresh", "Refresh", "fetch the jobs' status");
  ui.stop = button("ij-stop", "Stop", "stop the fetch: the rows so far are kept");
  ui.auto = button("ij-auto", "Auto-refresh", "poll the pending jobs until none is left");
  ui.interval = h("input", { type: "number", min: "0.5", max: "3600", step: "1" });
  ui.progress = h("progress", { class: "ij-progress" });
  ui.status = h("div", { class: "ij-status", "aria-live": "polite" });
  return [
    h("div", { class: "ij-line" }, labelled("ij-token", "Token", ui.token), labelled("ij-region", "Region", ui.region)),
    ui.tokenNote,
    labelled("ij-ids", "Job ids", ui.ids),
    h("div", { class: "ij-line" }, ui.upload, ui.file, ui.uploadMsg),
    h("div", { class: "ij-line" }, ui.refresh, ui.stop, ui.auto,
      labelled("ij-interval", "every (s)", ui.interval), ui.progress),
    ui.status,
  ];
}

function resultsPart(ui) {
  ui.summary = h("div", { class: "ij-summary" });
  ui.tip = h("div", { class: "ij-tip", role: "tooltip" });
  ui.tip.hidden = true;
  ui.chart = h("div", { class: "ij-chart" });
  ui.statusFilter = h("select");
  ui.codeFilter = h("select");
  ui.find = h("input", { type: "search", placeholder: "a job id", spellcheck: "false" });
  ui.findMsg = h("span", { class: "ij-msg ij-find-msg" });
  ui.colgroup = h("colgroup");
  ui.headRow = h("tr");
  ui.body = h("tbody");
  ui.table = h("table", { class: "ij-jobs" }, ui.colgroup, h("thead", {}, ui.headRow), ui.body);
  ui.box = h("div", { class: "ij-table", tabindex: "0" }, ui.table);
  ui.count = h("span", { class: "ij-count" });
  ui.copyCell = button("ij-copy-cell", "Copy cell", "copy the selected cell (click a cell first)");
  ui.copyRows = button("ij-copy-rows", "Copy visible rows", "copy the rows in sight, tab-separated, with the header");
  ui.copyMsg = h("span", { class: "ij-msg ij-copy-msg" });
  ui.exportPath = h("input", { type: "text", spellcheck: "false" });
  ui.exportButton = button("ij-export", "Export CSV", "write the rows the table shows (all of them) to the CSV file");
  ui.exportMsg = h("span", { class: "ij-msg ij-export-msg" });
  ui.results = h("div", { class: "ij-results" },
    h("div", { class: "ij-line ij-overview" }, ui.summary, h("div", { class: "ij-chart-box" }, ui.chart, ui.tip)),
    h("div", { class: "ij-line ij-controls" },
      labelled("ij-filter-status", "Status", ui.statusFilter),
      labelled("ij-filter-code", "Error code", ui.codeFilter),
      labelled("ij-find", "Find id", ui.find), ui.findMsg),
    ui.box,
    h("div", { class: "ij-line" }, ui.count, ui.copyCell, ui.copyRows, ui.copyMsg),
    h("div", { class: "ij-line" }, labelled("ij-export-path", "CSV file", ui.exportPath), ui.exportButton, ui.exportMsg));
  return ui.results;
}

// -- the table: a window of rows in a box as tall as every row -------------------------------

function drawHead(model, ui, send) {
  const columns = model.get("columns"), widths = model.get("widths");
  ui.colgroup.replaceChildren(...columns.map((_c, k) =>
    h("col", { style: `width:calc(${widths[k] || 10}ch + 16px)` })));
  ui.table.style.width = `calc(${widths.reduce((a, b) => a + b, 0)}ch + ${16 * columns.length}px)`;
  const by = model.get("sort_by"), asc = model.get("ascending");
  ui.headRow.replaceChildren(...columns.map((c, k) => {
    const sorted = c === by;
    const th = h("th", { "data-column": c, class: k === 0 ? "ij-pin" : "",
      title: `sort by ${c} (click again for the other order)`,
      "aria-sort": sorted ? (asc ? "ascending" : "descending") : "none" },
      h("span", { text: c }), h("span", { class: "ij-arrow", text: sorted ? (asc ? " \u25b2" : " \u25bc") : "" }));
    th.tabIndex = 0; // sortable from the keyboard too
    th.addEventListener("click", () => send({ type: "sort", column: c }));
    th.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); send({ type: "sort", column: c }); }
    });
    return th;
  }));
}

function cell(table, row, c, text, kind) {
  const widths = table.model.get("widths");
  const td = h("td", { class: c === 0 ? "ij-id ij-pin" : "" });
  if (c === 0 && MARKS[kind]) {
    const [mark, says] = MARKS[kind];
    td.append(h("span", { class: "ij-mark", title: says, "aria-label": says, text: mark }), " ");
  }
  td.append(text);
  if (text.length > (widths[c] || 10) - 2) td.title = text; // cut by an ellipsis: whole on hover
  const selected = table.selected;
  if (selected && selected.row === row && selected.col === c) td.classList.add("ij-selected");
  td.addEventListener("click", () => {
    table.selected = { row, col: c, text };
    for (const x of table.ui.body.querySelectorAll(".ij-selected")) x.classList.remove("ij-selected");
    td.classList.add("ij-selected");
    table.ui.copyCell.disabled = false;
  });
  return td;
}

function drawRows(table) {
  const { model, ui, win } = table;
  const total = model.get("total"), found = model.get("found");
  const span = String(model.get("columns").length || 1);
  const spacer = (n) => {
    const td = h("td", { colspan: span });
    td.style.height = `${n * ROW_HEIGHT}px`;
    td.hidden = n === 0;
    return h("tr", { class: "ij-spacer", "aria-hidden": "true" }, td);
  };
  const out = [spacer(win.start)];
  if (!total) out.push(h("tr", {}, h("td", { colspan: span, class: "ij-empty", text: "no jobs to show" })));
  win.rows.forEach((cells, k) => {
    const row = win.start + k, kind = win.outcomes[k];
    const tr = h("tr", { class: `ij-row ij-${kind}`, "data-row": String(row) });
    if (found && found.id === cells[0]) tr.classList.add("ij-found");
    cells.forEach((text, c) => tr.append(cell(table, row, c, text, kind)));
    out.push(tr);
  });
  out.push(spacer(Math.max(0, total - win.start - win.rows.length)));
  ui.body.replaceChildren(...out);
}

function inSight(table) {
  const box = table.ui.box;
  const first = Math.floor(box.scrollTop / ROW_HEIGHT);
  const n = Math.ceil(box.clientHeight / ROW_HEIGHT) + 1;
  return [first, Math.min(table.model.get("total"), first + n)];
}

function ask(table) {
  const { model, win } = table;
  const total = model.get("total");
  const [first, last] = inSight(table);
  const view = model.get("view_id");
  const have = win.view === view && win.start <= first && win.start + win.rows.length >= last;
  if (have || !total) return;
  const start = Math.max(0, first - MARGIN);
  const count = Math.min(MAX_WINDOW, last - first + 2 * MARGIN);
  const key = `${view}:${start}:${count}`;
  if (table.asked === key) return;
  table.asked = key;
  table.send({ type: "window", start, count });
}

function makeTable(model, ui, send) {
  const table = { model, ui, send, win: { start: 0, rows: [], outcomes: [], view: -1 }, asked: null, selected: null };
  let frame = 0;
  ui.box.addEventListener("scroll", () => {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; ask(table); });
  });
  table.onWindow = () => {
    const got = model.get("window");
    if (got && got.rows) table.win = got;
    table.asked = null;
    drawRows(table);
    ask(table);
  };
  table.onFound = () => {
    const found = model.get("found");
    if (found && found.row !== undefined) {
      ui.box.scrollTop = Math.max(0, found.row * ROW_HEIGHT - (ui.box.clientHeight - ROW_HEIGHT) / 2);
    }
    drawRows(table);
  };
  table.visibleRows = () => {
    const [first, last] = inSight(table);
    const lines = [model.get("columns").join("\t")];
    for (let row = first; row < last; row++) {
      const cells = table.win.rows[row - table.win.start];
      if (cells) lines.push(cells.join("\t"));
    }
    return lines;
  };
  return table;
}

function wireCopy(ui, table) {
  const copied = async (text, what) => {
    const ok = await copyText(text);
    ui.copyMsg.textContent = ok ? `Copied ${what}.` : "Could not copy: the browser refused.";
    ui.copyMsg.dataset.copied = ok ? text : "";
  };
  ui.copyRows.addEventListener("click", () => {
    const lines = table.visibleRows();
    copied(lines.join("\n"), `${(lines.length - 1).toLocaleString("en-US")} rows`);
  });
  ui.copyCell.disabled = true;
  ui.copyCell.addEventListener("click", () => { if (table.selected) copied(table.selected.text, "the cell"); });
  ui.box.addEventListener("keydown", (ev) => {
    const selection = window.getSelection();
    if ((ev.ctrlKey || ev.metaKey) && ev.key === "c" && table.selected && (!selection || selection.isCollapsed)) {
      ev.preventDefault();
      copied(table.selected.text, "the cell");
    }
  });
}

// -- the model, drawn ------------------------------------------------------------------------

function makeDraws(model, ui, table) {
  const html = (node, name) => () => { node.innerHTML = model.get(name); };
  const head = () => drawHead(model, ui, table.send);
  const draws = {
    status: html(ui.status, "status"),
    summary: html(ui.summary, "summary"),
    upload_note: html(ui.uploadMsg, "upload_note"),
    export_note: html(ui.exportMsg, "export_note"),
    find_note: html(ui.findMsg, "find_note"),
    token_note: () => { ui.tokenNote.textContent = model.get("token_note"); },
    token_placeholder: () => { ui.token.placeholder = model.get("token_placeholder"); },
    many: () => { ui.token.disabled = ui.ids.readOnly = model.get("many"); },
    busy: () => {
      const busy = model.get("busy");
      ui.refresh.disabled = ui.exportButton.disabled = ui.upload.disabled = busy;
      ui.stop.disabled = !(busy || model.get("auto"));
      ui.progress.style.visibility = busy ? "visible" : "hidden";
    },
    auto: () => {
      const on = model.get("auto");
      ui.auto.classList.toggle("mod-active", on);
      ui.auto.setAttribute("aria-pressed", String(on));
      draws.busy();
    },
    progress: () => { const [done, total] = model.get("progress"); ui.progress.max = total; ui.progress.value = Math.min(done, total); },
    interval: () => { if (document.activeElement !== ui.interval) ui.interval.value = model.get("interval"); },
    regions: () => {
      options(ui.region, model.get("regions"), model.get("region"));
      ui.region.disabled = model.get("regions").length < 2;
    },
    region: () => { ui.region.value = model.get("region"); },
    ids_text: () => { if (ui.ids.value !== model.get("ids_text")) ui.ids.value = model.get("ids_text"); },
    export_path: () => { if (document.activeElement !== ui.exportPath) ui.exportPath.value = model.get("export_path"); },
    has_results: () => { ui.results.hidden = !model.get("has_results"); },
    chart: () => { ui.chart.replaceChildren(chartSvg(model.get("chart"), ui.tip)); },
    columns: head,
    widths: head,
    sort_by: head,
    ascending: head,
    status_choices: () => options(ui.statusFilter, model.get("status_choices"), model.get("status_filter")),
    code_choices: () => options(ui.codeFilter, model.get("code_choices"), model.get("code_filter")),
    status_filter: () => { ui.statusFilter.value = model.get("status_filter"); },
    code_filter: () => { ui.codeFilter.value = model.get("code_filter"); },
    count: () => { ui.count.textContent = model.get("count"); },
    // A model may announce its keys one at a time (marimo does): the rows are drawn again when
    // any of what they depend on changes.
    window: table.onWindow,
    total: table.onWindow,
    found: table.onFound,
  };
  return draws;
}

// -- from the page to Python -----------------------------------------------------------------

function wireInputs(model, ui, send) {
  const setTrait = (name, value) => { model.set(name, value); model.save_changes(); };
  let typed = false;
  ui.token.addEventListener("input", () => {
    if (typed !== (ui.token.value !== "")) { typed = !typed; send({ type: "typing", typed }); }
  });
  const refresh = () => {
    const token = ui.token.value;
    ui.token.value = ""; // out of the page at once
    typed = false;
    send({ type: "refresh", token });
  };
  ui.refresh.addEventListener("click", refresh);
  ui.token.addEventListener("keydown", (ev) => { if (ev.key === "Enter") refresh(); });
  ui.stop.addEventListener("click", () => send({ type: "stop" }));
  ui.auto.addEventListener("click", () => send({ type: "auto", on: !model.get("auto") }));
  ui.region.addEventListener("change", () => setTrait("region", ui.region.value));
  ui.ids.addEventListener("change", () => setTrait("ids_text", ui.ids.value));
  ui.interval.addEventListener("change", () => {
    const v = Number(ui.interval.value);
    if (v >= 0.5) setTrait("interval", v);
  });
  ui.exportPath.addEventListener("change", () => setTrait("export_path", ui.exportPath.value));
  ui.exportButton.addEventListener("click", () => send({ type: "export" }));
  ui.statusFilter.addEventListener("change", () => send({ type: "filter", status: ui.statusFilter.value }));
  ui.codeFilter.addEventListener("change", () => send({ type: "filter", code: ui.codeFilter.value }));
  const find = () => send({ type: "find", text: ui.find.value });
  ui.find.addEventListener("change", find);
  ui.find.addEventListener("keydown", (ev) => { if (ev.key === "Enter") find(); });
  ui.upload.addEventListener("click", () => ui.file.click());
  ui.file.addEventListener("change", () => uploadFile(ui, send));
}

async function uploadFile(ui, send) {
  const chosen = ui.file.files && ui.file.files[0];
  if (!chosen) return;
  const bytes = new Uint8Array(await chosen.arrayBuffer());
  let text = "";
  for (let k = 0; k < bytes.length; k += 0x8000) text += String.fromCharCode(...bytes.subarray(k, k + 0x8000));
  send({ type: "upload", name: chosen.name, content: btoa(text) });
  ui.upload.textContent = "Upload ids (1)";
  ui.file.value = "";
}

function render({ model, el }) {
  const send = (msg) => model.send(msg);
  const ui = {};
  el.replaceChildren(h("div", { class: "ij-panel" }, ...inputsPart(ui), resultsPart(ui)));
  const table = makeTable(model, ui, send);
  wireCopy(ui, table);
  const handlers = Object.entries(makeDraws(model, ui, table)).map(([name, draw]) => {
    const handler = () => draw();
    model.on(`change:${name}`, handler);
    draw();
    return [name, handler];
  });
  wireInputs(model, ui, send);
  return () => {
    for (const [name, handler] of handlers) model.off(`change:${name}`, handler);
  };
}

export default { render };
