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

function render({ model, el }) {
  const send = (msg) => model.send(msg);
  const setTrait = (name, value) => { model.set(name, value); model.save_changes(); };

  // -- inputs ---------------------------------------------------------------------------------
  const token = h("input", { type: "password", autocomplete: "off", spellcheck: "false" });
  const region = h("select");
  const ids = h("textarea", { rows: 4, placeholder: "one id a line (or separated by commas/spaces)" });
  const tokenNote = h("div", { class: "ij-note ij-token-note" });
  const file = h("input", { type: "file", accept: ".csv,.txt", class: "ij-file" });
  file.hidden = true;
  const upload = h("button", { class: "ij-button ij-upload", type: "button", title: "a .csv or .txt of job ids", text: "Upload ids" });
  const uploadMsg = h("span", { class: "ij-msg ij-upload-msg" });
  // -- actions --------------------------------------------------------------------------------
  const refresh = h("button", { class: "ij-button ij-primary ij-refresh", type: "button", title: "fetch the jobs' status", text: "Refresh" });
  const stop = h("button", { class: "ij-button ij-stop", type: "button", title: "stop the fetch: the rows so far are kept", text: "Stop" });
  const auto = h("button", { class: "ij-button ij-auto", type: "button", title: "poll the pending jobs until none is left", text: "Auto-refresh" });
  const interval = h("input", { type: "number", min: "0.5", max: "3600", step: "1" });
  const progress = h("progress", { class: "ij-progress" });
  const status = h("div", { class: "ij-status", "aria-live": "polite" });
  // -- results --------------------------------------------------------------------------------
  const summary = h("div", { class: "ij-summary" });
  const tip = h("div", { class: "ij-tip", role: "tooltip" });
  tip.hidden = true;
  const chart = h("div", { class: "ij-chart" });
  const statusFilter = h("select");
  const codeFilter = h("select");
  const find = h("input", { type: "search", placeholder: "a job id", spellcheck: "false" });
  const findMsg = h("span", { class: "ij-msg ij-find-msg" });
  const colgroup = h("colgroup");
  const headRow = h("tr");
  const body = h("tbody");
  const table = h("table", { class: "ij-jobs" }, colgroup, h("thead", {}, headRow), body);
  const box = h("div", { class: "ij-table", tabindex: "0" }, table);
  const count = h("span", { class: "ij-count" });
  const copyCell = h("button", { class: "ij-button ij-copy-cell", type: "button", title: "copy the selected cell (click a cell first)", text: "Copy cell" });
  const copyRows = h("button", { class: "ij-button ij-copy-rows", type: "button", title: "copy the rows in sight, tab-separated, with the header", text: "Copy visible rows" });
  const copyMsg = h("span", { class: "ij-msg ij-copy-msg" });
  const exportPath = h("input", { type: "text", spellcheck: "false" });
  const exportButton = h("button", { class: "ij-button ij-export", type: "button", title: "write the rows the table shows (all of them) to the CSV file", text: "Export CSV" });
  const exportMsg = h("span", { class: "ij-msg ij-export-msg" });
  const results = h("div", { class: "ij-results" },
    h("div", { class: "ij-line ij-overview" }, summary, h("div", { class: "ij-chart-box" }, chart, tip)),
    h("div", { class: "ij-line ij-controls" },
      labelled("ij-filter-status", "Status", statusFilter),
      labelled("ij-filter-code", "Error code", codeFilter),
      labelled("ij-find", "Find id", find), findMsg),
    box,
    h("div", { class: "ij-line" }, count, copyCell, copyRows, copyMsg),
    h("div", { class: "ij-line" }, labelled("ij-export-path", "CSV file", exportPath), exportButton, exportMsg));
  const panel = h("div", { class: "ij-panel" },
    h("div", { class: "ij-line" }, labelled("ij-token", "Token", token), labelled("ij-region", "Region", region)),
    tokenNote,
    labelled("ij-ids", "Job ids", ids),
    h("div", { class: "ij-line" }, upload, file, uploadMsg),
    h("div", { class: "ij-line" }, refresh, stop, auto, labelled("ij-interval", "every (s)", interval), progress),
    status,
    results);
  el.replaceChildren(panel);

  // -- the table: a window of rows in a box as tall as every row ------------------------------
  let win = { start: 0, rows: [], outcomes: [], view: -1 };
  let asked = null; // the window last asked for, not yet come
  let selected = null; // {row, col} of the clicked cell

  const inSight = () => {
    const first = Math.floor(box.scrollTop / ROW_HEIGHT);
    const n = Math.ceil(box.clientHeight / ROW_HEIGHT) + 1;
    return [first, Math.min(model.get("total"), first + n)];
  };

  function drawHead() {
    const columns = model.get("columns"), widths = model.get("widths");
    colgroup.replaceChildren(...columns.map((_c, k) =>
      h("col", { style: `width:calc(${widths[k] || 10}ch + 16px)` })));
    table.style.width = `calc(${widths.reduce((a, b) => a + b, 0)}ch + ${16 * columns.length}px)`;
    const by = model.get("sort_by"), asc = model.get("ascending");
    headRow.replaceChildren(...columns.map((c, k) => {
      const sorted = c === by;
      const th = h("th", { "data-column": c, class: k === 0 ? "ij-pin" : "", title: `sort by ${c} (click again for the other order)`,
        "aria-sort": sorted ? (asc ? "ascending" : "descending") : "none" },
        h("span", { text: c }), h("span", { class: "ij-arrow", text: sorted ? (asc ? " \u25b2" : " \u25bc") : "" }));
      th.addEventListener("click", () => send({ type: "sort", column: c }));
      return th;
    }));
  }

  function drawRows() {
    const total = model.get("total"), widths = model.get("widths");
    const found = model.get("found");
    const rows = win.rows;
    const span = String(model.get("columns").length || 1);
    const spacer = (n) => {
      const td = h("td", { colspan: span });
      td.style.height = `${n * ROW_HEIGHT}px`;
      td.hidden = n === 0;
      return h("tr", { class: "ij-spacer", "aria-hidden": "true" }, td);
    };
    const out = [spacer(win.start)];
    if (!total) {
      out.push(h("tr", {}, h("td", { colspan: String(model.get("columns").length || 1), class: "ij-empty", text: "no jobs to show" })));
    }
    rows.forEach((cells, k) => {
      const row = win.start + k, kind = win.outcomes[k];
      const tr = h("tr", { class: `ij-row ij-${kind}`, "data-row": String(row) });
      if (found && found.id === cells[0]) tr.classList.add("ij-found");
      cells.forEach((text, c) => {
        const td = h("td", { class: c === 0 ? "ij-id ij-pin" : "" });
        if (c === 0 && MARKS[kind]) {
          td.append(h("span", { class: "ij-mark", title: MARKS[kind][1], "aria-label": MARKS[kind][1], text: MARKS[kind][0] }), " ");
        }
        td.append(text);
        if (text.length > (widths[c] || 10) - 2) td.title = text; // cut by an ellipsis: whole on hover
        if (selected && selected.row === row && selected.col === c) td.classList.add("ij-selected");
        td.addEventListener("click", () => {
          selected = { row, col: c, text };
          for (const x of body.querySelectorAll(".ij-selected")) x.classList.remove("ij-selected");
          td.classList.add("ij-selected");
          copyCell.disabled = false;
        });
        tr.append(td);
      });
      out.push(tr);
    });
    out.push(spacer(Math.max(0, total - win.start - rows.length)));
    body.replaceChildren(...out);
  }

  function ask() {
    const total = model.get("total");
    const [first, last] = inSight();
    const have = win.view === model.get("view_id") && win.start <= first &&
      win.start + win.rows.length >= last;
    if (have || !total) return;
    const start = Math.max(0, first - MARGIN);
    const n = Math.min(MAX_WINDOW, last - first + 2 * MARGIN);
    const key = `${model.get("view_id")}:${start}:${n}`;
    if (asked === key) return;
    asked = key;
    send({ type: "window", start, count: n });
  }

  let frame = 0;
  box.addEventListener("scroll", () => {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; ask(); });
  });

  function onWindow() {
    const got = model.get("window");
    if (got && got.rows) win = got;
    asked = null;
    drawRows();
    ask();
  }

  function onFound() {
    const found = model.get("found");
    if (found && found.row !== undefined) {
      box.scrollTop = Math.max(0, found.row * ROW_HEIGHT - (box.clientHeight - ROW_HEIGHT) / 2);
    }
    drawRows();
  }

  function visibleRows() {
    const [first, last] = inSight();
    const head = model.get("columns").join("\t");
    const lines = [];
    for (let row = first; row < last; row++) {
      const cells = win.rows[row - win.start];
      if (cells) lines.push(cells.join("\t"));
    }
    return [head, ...lines];
  }

  async function copied(text, what) {
    const ok = await copyText(text);
    copyMsg.textContent = ok ? `Copied ${what}.` : "Could not copy: the browser refused.";
    copyMsg.dataset.copied = ok ? text : "";
  }

  copyRows.addEventListener("click", () => {
    const lines = visibleRows();
    copied(lines.join("\n"), `${(lines.length - 1).toLocaleString("en-US")} rows`);
  });
  copyCell.disabled = true;
  copyCell.addEventListener("click", () => { if (selected) copied(selected.text, "the cell"); });
  box.addEventListener("keydown", (ev) => {
    const selection = window.getSelection();
    if ((ev.ctrlKey || ev.metaKey) && ev.key === "c" && selected && (!selection || selection.isCollapsed)) {
      ev.preventDefault();
      copied(selected.text, "the cell");
    }
  });

  // -- the rest of the model -------------------------------------------------------------------
  const note = (node, name) => () => { node.innerHTML = model.get(name); };
  const draws = {
    status: note(status, "status"),
    summary: note(summary, "summary"),
    upload_note: note(uploadMsg, "upload_note"),
    export_note: note(exportMsg, "export_note"),
    find_note: note(findMsg, "find_note"),
    token_note: () => { tokenNote.textContent = model.get("token_note"); },
    token_placeholder: () => { token.placeholder = model.get("token_placeholder"); },
    many: () => { token.disabled = ids.readOnly = model.get("many"); },
    busy: () => {
      const busy = model.get("busy");
      refresh.disabled = exportButton.disabled = upload.disabled = busy;
      stop.disabled = !(busy || model.get("auto"));
      progress.style.visibility = busy ? "visible" : "hidden";
    },
    auto: () => {
      const on = model.get("auto");
      auto.classList.toggle("mod-active", on);
      auto.setAttribute("aria-pressed", String(on));
      draws.busy();
    },
    progress: () => { const [done, total] = model.get("progress"); progress.max = total; progress.value = Math.min(done, total); },
    interval: () => { if (document.activeElement !== interval) interval.value = model.get("interval"); },
    regions: () => {
      options(region, model.get("regions"), model.get("region"));
      region.disabled = model.get("regions").length < 2;
    },
    region: () => { region.value = model.get("region"); },
    ids_text: () => { if (ids.value !== model.get("ids_text")) ids.value = model.get("ids_text"); },
    export_path: () => { if (document.activeElement !== exportPath) exportPath.value = model.get("export_path"); },
    has_results: () => { results.hidden = !model.get("has_results"); },
    chart: () => { chart.replaceChildren(chartSvg(model.get("chart"), tip)); },
    columns: drawHead,
    widths: drawHead,
    sort_by: drawHead,
    ascending: drawHead,
    status_choices: () => options(statusFilter, model.get("status_choices"), model.get("status_filter")),
    code_choices: () => options(codeFilter, model.get("code_choices"), model.get("code_filter")),
    status_filter: () => { statusFilter.value = model.get("status_filter"); },
    code_filter: () => { codeFilter.value = model.get("code_filter"); },
    count: () => { count.textContent = model.get("count"); },
    window: onWindow,
    found: onFound,
  };
  const handlers = [];
  for (const [name, draw] of Object.entries(draws)) {
    const handler = () => draw();
    model.on(`change:${name}`, handler);
    handlers.push([name, handler]);
    draw();
  }

  // -- from the page to Python -----------------------------------------------------------------
  let typed = false;
  token.addEventListener("input", () => {
    if (typed !== (token.value !== "")) { typed = !typed; send({ type: "typing", typed }); }
  });
  const doRefresh = () => {
    const value = token.value;
    token.value = ""; // out of the page at once
    typed = false;
    send({ type: "refresh", token: value });
  };
  refresh.addEventListener("click", doRefresh);
  token.addEventListener("keydown", (ev) => { if (ev.key === "Enter") doRefresh(); });
  stop.addEventListener("click", () => send({ type: "stop" }));
  auto.addEventListener("click", () => send({ type: "auto", on: !model.get("auto") }));
  region.addEventListener("change", () => setTrait("region", region.value));
  ids.addEventListener("change", () => setTrait("ids_text", ids.value));
  interval.addEventListener("change", () => {
    const v = Number(interval.value);
    if (v >= 0.5) setTrait("interval", v);
  });
  exportPath.addEventListener("change", () => setTrait("export_path", exportPath.value));
  exportButton.addEventListener("click", () => send({ type: "export" }));
  statusFilter.addEventListener("change", () => send({ type: "filter", status: statusFilter.value }));
  codeFilter.addEventListener("change", () => send({ type: "filter", code: codeFilter.value }));
  const doFind = () => send({ type: "find", text: find.value });
  find.addEventListener("change", doFind);
  find.addEventListener("keydown", (ev) => { if (ev.key === "Enter") doFind(); });
  upload.addEventListener("click", () => file.click());
  file.addEventListener("change", async () => {
    const chosen = file.files && file.files[0];
    if (!chosen) return;
    const bytes = new Uint8Array(await chosen.arrayBuffer());
    let text = "";
    for (let k = 0; k < bytes.length; k += 0x8000) text += String.fromCharCode(...bytes.subarray(k, k + 0x8000));
    send({ type: "upload", name: chosen.name, content: btoa(text) });
    upload.textContent = "Upload ids (1)";
    file.value = "";
  });

  return () => {
    for (const [name, handler] of handlers) model.off(`change:${name}`, handler);
  };
}

export default { render };
