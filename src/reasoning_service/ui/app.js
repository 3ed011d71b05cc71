// The agent-reasoning page: plain JS, no framework, no build step, nothing loaded from elsewhere.
// It holds no data: tasks, examples and answers come from the service's API (/v1/tasks, /v1/reason,
// /v1/stats), with the bearer token when the service asks for one.
"use strict";

const $ = (sel) => document.querySelector(sel);

/** An HTML element; text children become text nodes (never parsed as HTML). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c != null) node.append(c);
  return node;
}

/** An SVG element. */
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c != null) node.append(c);
  return node;
}

// ---------------------------------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.field = body && body.field;
  }
}

const api = {
  token: sessionStorage.getItem("agent-reasoning-token") || "",
  async call(path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const response = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch { /* an empty or non-JSON body: the status says it */ }
    if (response.status === 401) askForToken();
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  },
};

function askForToken() {
  $("#auth").hidden = false;
  $("#token").focus();
}

$("#auth").addEventListener("submit", (event) => {
  event.preventDefault();
  api.token = $("#token").value.trim();
  sessionStorage.setItem("agent-reasoning-token", api.token);
  $("#auth").hidden = true;
  hideError();
  loadTasks();
});

// ------------------------------------------------------------------ problem formats (the "Table" tab)
// Each task the page knows has a plain-text form a person can type; every other task is edited as JSON.
// fromText returns the problem object; values that do not parse are sent as typed so the service's
// check names the field at fault.

const num = (s) => (s !== undefined && s !== "" && !Number.isNaN(Number(s)) ? Number(s) : s);
const lines = (text) => text.split("\n").map((l) => l.replace(/#.*$/, "").trim()).filter(Boolean);

/** Split "header: ..." sections; returns {header: [lines]} (the text after the colon is the first line). */
function sections(text, names) {
  const out = Object.fromEntries(names.map((n) => [n, []]));
  let current = null;
  for (const line of lines(text)) {
    const m = line.match(/^(\w+):\s*(.*)$/);
    if (m && names.includes(m[1].toLowerCase())) {
      current = m[1].toLowerCase();
      if (m[2]) out[current].push(m[2]);
    } else if (current) out[current].push(line);
    else throw new Error(`"${line}": start with one of ${names.map((n) => n + ":").join(", ")}`);
  }
  return out;
}

const flag = (v) => (v === true ? "yes" : v === false ? "no" : "?");
const unflag = (s) => ({ yes: true, y: true, true: true, no: false, n: false, false: false }[String(s).toLowerCase()] ?? null);

const FORMATS = {
  sudoku: {
    hint: "9 rows of 9: digits for givens, . or 0 for blanks",
    toText: (p) => p.puzzle.match(/.{1,9}/g).join("\n"),
    fromText: (t) => ({ puzzle: t.replace(/[\s|+-]/g, "").replace(/0/g, ".") }),
  },
  maze: {
    hint: "# wall, space open, S start, G goal",
    toText: (p) => p.grid.join("\n"),
    fromText: (t) => ({ grid: t.replace(/\n+$/, "").split("\n") }),
  },
  placement: {
    hint: "nodes: name cpu_millicores memory_mib / pods: name cpu_millicores memory_mib [anti-affinity group]",
    toText: (p) => [
      "nodes:  # name cpu_millicores memory_mib",
      ...p.nodes.map((n) => `${n.name} ${n.cpu_millicores} ${n.memory_mib}`),
      "pods:   # name cpu_millicores memory_mib [group]",
      ...p.pods.map((q) => [q.name, q.cpu_millicores, q.memory_mib, q.group].filter((x) => x != null).join(" ")),
    ].join("\n"),
    fromText(t) {
      const s = sections(t, ["nodes", "pods"]);
      const nodes = s.nodes.map((l) => { const [name, cpu, mem] = l.split(/\s+/); return { name, cpu_millicores: num(cpu), memory_mib: num(mem) }; });
      const pods = s.pods.map((l) => {
        const [name, cpu, mem, group] = l.split(/\s+/);
        return { name, cpu_millicores: num(cpu), memory_mib: num(mem), ...(group ? { group } : {}) };
      });
      return { nodes, pods };
    },
  },
  rootcause: {
    hint: "services: name error_rate latency_p99_ms anomalous(yes/no/?) / dependencies: caller -> callee",
    toText: (p) => [
      "services:  # name error_rate latency_p99_ms anomalous",
      ...p.services.map((s) => `${s.name} ${s.error_rate ?? "?"} ${s.latency_p99_ms ?? "?"} ${flag(s.anomalous)}`),
      "dependencies:  # caller -> callee",
      ...(p.dependencies || []).map(([a, b]) => `${a} -> ${b}`),
    ].join("\n"),
    fromText(t) {
      const s = sections(t, ["services", "dependencies"]);
      const unknown = (v) => (v === "?" || v === undefined ? null : num(v));
      const services = s.services.map((l) => {
        const [name, err, lat, anomalous] = l.split(/\s+/);
        return { name, error_rate: unknown(err), latency_p99_ms: unknown(lat), anomalous: unflag(anomalous) };
      });
      const dependencies = s.dependencies.map((l) => l.split(/\s*->\s*|\s+/).filter(Boolean));
      return { services, dependencies };
    },
  },
  upgrade: {
    hint: "nodes: names / services: name max_unavailable node-of-each-replica...",
    toText: (p) => [
      `nodes: ${p.nodes.join(" ")}`,
      "services:  # name max_unavailable replicas_on...",
      ...(p.services || []).map((s) => `${s.name} ${s.max_unavailable} ${s.replicas_on.join(" ")}`),
    ].join("\n"),
    fromText(t) {
      const s = sections(t, ["nodes", "services"]);
      const nodes = s.nodes.join(" ").split(/\s+/).filter(Boolean);
      const services = s.services.map((l) => {
        const [name, maxUnavailable, ...replicas] = l.split(/\s+/);
        return { name, max_unavailable: num(maxUnavailable), replicas_on: replicas };
      });
      return { nodes, services };
    },
  },
};

// ------------------------------------------------------------------------------------- state

const ui = {
  tasks: [],       // /v1/tasks entries the page offers
  format: "text",  // "text" (the task's table) | "json"
  frames: [],      // [{label, solution, confidence}] one per supervision step (+ a final one)
  frame: 0,
  response: null,
  problem: null,   // the problem the shown answer is for
  player: null,
};

const currentTask = () => ui.tasks.find((t) => t.name === $("#task").value);
const formatOf = (task) => (ui.format === "text" && FORMATS[task.name]) || null;

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = false;
}
function hideError() { $("#error").hidden = true; }

async function loadTasks() {
  let body;
  try {
    body = await api.call("/v1/tasks");
  } catch (e) {
    showError(e.status === 401 ? "Enter the API token to load the tasks." : `Could not load the tasks: ${e.message}`);
    return;
  }
  ui.tasks = body.tasks.filter((t) => !t.test_only);
  const select = $("#task");
  const previous = select.value;
  select.replaceChildren(...ui.tasks.map((t) => el("option", { value: t.name, text: `${t.name} (${t.task_type}, ${t.has_model ? "model" : t.answered_by})` })));
  if (previous && ui.tasks.some((t) => t.name === previous)) select.value = previous;
  taskChanged();
}

function taskChanged() {
  const task = currentTask();
  if (!task) return;
  const models = task.models.map((m) => m.name).join(", ");
  $("#task-description").textContent = `${task.description} ${models ? `Model: ${models}.` : `No model: the task's ${task.answered_by} answers.`}`;
  setProblem(task.example);
}

function setFormat(format) {
  if (!currentTask()) return;
  let problem;
  try { problem = readProblem(); } catch (e) { showError(e.message); return; }
  ui.format = format;
  for (const tab of document.querySelectorAll(".tab")) tab.setAttribute("aria-pressed", String(tab.dataset.format === format));
  setProblem(problem);
}

function setProblem(problem) {
  const task = currentTask();
  const fmt = formatOf(task);
  $("#problem").value = fmt ? fmt.toText(problem) : JSON.stringify(problem, null, 2);
  $("#format-hint").textContent = fmt ? fmt.hint : FORMATS[task.name] ? "" : "this task is edited as JSON";
  hideError();
}

function readProblem() {
  const task = currentTask();
  const text = $("#problem").value;
  const fmt = formatOf(task);
  if (fmt) return fmt.fromText(text);
  try { return JSON.parse(text); } catch (e) { throw new Error(`The problem is not valid JSON: ${e.message}`); }
}

// ------------------------------------------------------------------------------------- solving

async function solve() {
  hideError();
  const task = currentTask();
  let problem;
  try { problem = readProblem(); } catch (e) { showError(e.message); return; }
  const body = { task: task.name, problem, trace: true };
  for (const [id, key] of [["#min-steps", "min_steps"], ["#max-steps", "max_steps"]]) {
    if ($(id).value) body[key] = Number($(id).value);
  }
  const button = $("#solve");
  button.disabled = true;
  button.textContent = "Solving…";
  try {
    const response = await api.call("/v1/reason", body);
    showAnswer(task, problem, response);
  } catch (e) {
    showError(`${e.status ? `HTTP ${e.status}: ` : ""}${e.message}`);
    $("#result").hidden = true;
  } finally {
    button.disabled = false;
    button.textContent = "Solve";
  }
}

function showAnswer(task, problem, r) {
  stopPlayer();
  ui.response = r;
  ui.problem = problem;
  $("#result").hidden = false;
  const verified = r.verified === true ? ["ok", "verified"] : r.verified === false ? ["bad", `not verified (${r.violations.length} violations)`] : ["", "no exact check"];
  const facts = [
    ["solved_by", r.solved_by, r.solved_by === "trm" ? "ok" : ""],
    ["", verified[1], verified[0]],
    ["model", r.model ? `${r.model.name} ${r.model.version}` : "none (the task's solver)", ""],
  ];
  if (r.model) facts.push(["steps", `${r.steps}${r.halted ? " (halted)" : " (step limit)"}`, ""], ["confidence", r.confidence.toFixed(4), ""]);
  for (const key of ["objective", "lower_bound", "optimal", "unique"]) if (r[key] != null) facts.push([key, String(r[key]), ""]);
  facts.push(["time", `${Math.round(r.duration_ms)} ms`, ""]);
  $("#summary").replaceChildren(...facts.map(([k, v, cls]) => el("span", { class: `fact ${cls}` }, k ? el("b", { text: `${k} ` }) : null, v)));
  $("#violations").replaceChildren(...r.violations.map((v) => el("li", { text: v })));

  const trace = r.reasoning_trace || [];
  ui.frames = trace.map((s) => ({ label: `step ${s.step}`, solution: s.solution, confidence: s.confidence }));
  const last = trace.length ? trace[trace.length - 1].solution : null;
  // the answer differs from the last step when the classical method's replaced it, or views were voted on
  if (!trace.length || JSON.stringify(last) !== JSON.stringify(r.solution)) {
    ui.frames.push({ label: `final answer (${r.solved_by})`, solution: r.solution, confidence: null });
  }
  const noSteps = $("#no-steps");
  noSteps.hidden = trace.length > 0 && r.solved_by === "trm";
  noSteps.textContent = !trace.length
    ? `No supervision steps to show: the task's ${r.solved_by} answered${r.model ? "" : " (no model serves this problem)"}.`
    : `The model's last step was replaced by the ${r.solved_by}'s answer (shown last).`;
  $("#stepper").hidden = ui.frames.length < 2;
  $("#step").max = String(ui.frames.length - 1);
  $("#curve-box").hidden = !trace.length;
  showFrame(trace.length ? 0 : ui.frames.length - 1);
}

function showFrame(i) {
  ui.frame = Math.max(0, Math.min(i, ui.frames.length - 1));
  const frame = ui.frames[ui.frame];
  const steps = ui.response.reasoning_trace.length;
  // with no steps there is nothing to compare: the solver's answer is drawn without highlights
  const previous = ui.frame > 0 ? ui.frames[ui.frame - 1].solution : steps ? null : frame.solution;
  const view = VIEWS[ui.response.task] || VIEWS.json;
  const { node, changed } = view(ui.problem, frame.solution, previous);
  $("#view").replaceChildren(node);
  $("#step").value = String(ui.frame);
  const parts = [frame.confidence != null ? `${frame.label} of ${steps}` : frame.label];
  if (frame.confidence != null) parts.push(`confidence ${frame.confidence.toFixed(4)}`);
  if (changed != null && steps) parts.push(`${changed} changed`);
  $("#step-label").textContent = parts.join(" · ");
  $("#prev").disabled = ui.frame === 0;
  $("#next").disabled = ui.frame === ui.frames.length - 1;
  drawCurve();
}

function stopPlayer() {
  clearInterval(ui.player);
  ui.player = null;
  $("#play").textContent = "Play";
}

function togglePlayer() {
  if (ui.player) return stopPlayer();
  if (ui.frame === ui.frames.length - 1) showFrame(0);
  $("#play").textContent = "Pause";
  ui.player = setInterval(() => (ui.frame < ui.frames.length - 1 ? showFrame(ui.frame + 1) : stopPlayer()), 700);
}

// ------------------------------------------------------------------------- confidence curve

function haltLine() {
  // a sample halts once its halting logit passes the model's threshold: that is sigmoid(threshold)
  const task = ui.tasks.find((t) => t.name === ui.response.task);
  const model = task && ui.response.model && task.models.find((m) => m.name === ui.response.model.name);
  const logit = model && model.inference ? model.inference.halt_threshold : null;
  return logit == null ? null : 1 / (1 + Math.exp(-logit));
}

function drawCurve() {
  const steps = ui.response.reasoning_trace;
  const box = $("#curve");
  if (!steps.length) return box.replaceChildren();
  const W = 320, H = 150, L = 34, R = 10, T = 10, B = 24;
  const x = (i) => L + (steps.length === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (steps.length - 1));
  const y = (c) => T + (1 - c) * (H - T - B);
  const parts = [
    svg("line", { x1: L, y1: y(0), x2: W - R, y2: y(0), class: "axis" }),
    svg("line", { x1: L, y1: y(0), x2: L, y2: y(1), class: "axis" }),
    svg("text", { x: L - 4, y: y(1) + 4, class: "tick", "text-anchor": "end", text: "1" }),
    svg("text", { x: L - 4, y: y(0) + 4, class: "tick", "text-anchor": "end", text: "0" }),
    svg("text", { x: (W + L) / 2, y: H - 4, class: "tick", "text-anchor": "middle", text: "supervision step" }),
  ];
  const halt = haltLine();
  if (halt != null) {
    parts.push(svg("line", { x1: L, y1: y(halt), x2: W - R, y2: y(halt), class: "halt" }));
    parts.push(svg("text", { x: W - R, y: y(halt) - 4, class: "tick", "text-anchor": "end", text: "halts above" }));
  }
  parts.push(svg("polyline", { points: steps.map((s, i) => `${x(i)},${y(s.confidence)}`).join(" "), class: "curve" }));
  steps.forEach((s, i) => {
    const dot = svg("circle", { cx: x(i), cy: y(s.confidence), r: i === ui.frame ? 6 : 4, class: i === ui.frame ? "dot current" : "dot" },
      svg("title", { text: `step ${s.step}: ${s.confidence.toFixed(4)}` }));
    dot.addEventListener("click", () => { stopPlayer(); showFrame(i); });
    parts.push(dot);
  });
  box.replaceChildren(...parts);
}

// ------------------------------------------------------------------------------- answer views
// view(problem, solution, previous) -> {node, changed}: `changed` counts what differs from the previous
// step (for the first step: everything the model wrote), and those parts carry the class "changed".

const VIEWS = {
  sudoku(problem, solution, previous) {
    const given = problem.puzzle.replace(/0/g, ".");
    const digits = solution.solution || solution.grid.flat().join("");
    const before = previous ? previous.solution || previous.grid.flat().join("") : given;
    let changed = 0;
    const grid = el("div", { class: "sudoku" });
    for (let i = 0; i < 81; i++) {
      const d = digits[i] && digits[i] !== "0" ? digits[i] : "";
      const isChanged = given[i] === "." && digits[i] !== before[i];
      changed += isChanged ? 1 : 0;
      const cls = ["cell", given[i] !== "." ? "given" : "", isChanged ? "changed" : "", i % 9 % 3 === 2 && i % 9 !== 8 ? "box-r" : "", Math.floor(i / 9) % 3 === 2 && i < 72 ? "box-b" : ""];
      grid.append(el("div", { class: cls.filter(Boolean).join(" "), text: d }));
    }
    return { node: grid, changed };
  },

  maze(problem, solution, previous) {
    const key = ([r, c]) => `${r},${c}`;
    const path = new Set(solution.path.map(key));
    const before = new Set(previous ? previous.path.map(key) : []);
    const grid = el("div", { class: "maze" });
    grid.style.gridTemplateColumns = `repeat(${problem.grid[0].length}, var(--maze-cell))`;
    let changed = 0;
    problem.grid.forEach((row, r) => [...row].forEach((ch, c) => {
      const k = `${r},${c}`;
      const on = path.has(k), was = before.has(k);
      const cls = ["cell", ch === "#" ? "wall" : "open", ch === "S" ? "start" : "", ch === "G" ? "goal" : "", on ? "path" : "", on !== was ? (on ? "changed" : "dropped") : ""];
      changed += on !== was ? 1 : 0;
      grid.append(el("div", { class: cls.filter(Boolean).join(" "), text: ch === "S" || ch === "G" ? ch : "" }));
    }));
    return { node: el("div", {}, grid, el("p", { class: "hint", text: `${Math.max(0, solution.path.length - 1)} moves` })), changed };
  },

  placement(problem, solution, previous) {
    const pods = Object.fromEntries(problem.pods.map((p) => [p.name, p]));
    const moved = (name) => !previous || previous.assignments[name] !== solution.assignments[name];
    let changed = 0;
    const bins = problem.nodes.map((node) => {
      const here = problem.pods.filter((p) => solution.assignments[p.name] === node.name);
      const cpu = here.reduce((s, p) => s + p.cpu_millicores, 0), mem = here.reduce((s, p) => s + p.memory_mib, 0);
      const bar = (label) => (used, cap) => {
        const fill = el("div", { class: used > cap ? "fill over" : "fill" });
        fill.style.width = `${Math.min(100, cap ? (100 * used) / cap : 100)}%`;
        return el("div", { class: "meter" }, fill, el("span", { text: label(used, cap) }));
      };
      const chips = here.map((p) => {
        const isChanged = moved(p.name);
        changed += isChanged ? 1 : 0;
        return el("li", { class: `pod${isChanged ? " changed" : ""}`, title: `${p.cpu_millicores}m CPU, ${p.memory_mib} MiB${p.group ? `, group ${p.group}` : ""}` },
          p.name, p.group ? el("small", { text: ` ${p.group}` }) : null);
      });
      return el("div", { class: `bin${here.length ? "" : " empty"}` }, el("h4", { text: node.name }), bar((u, c) => `CPU ${u}m of ${c}m`)(cpu, node.cpu_millicores), bar((u, c) => `memory ${u} of ${c} MiB`)(mem, node.memory_mib), el("ul", {}, chips));
    });
    const unplaced = (solution.unplaced || []).filter((n) => pods[n]);
    const node = el("div", {}, el("div", { class: "bins" }, bins),
      unplaced.length ? el("p", { class: "bad", text: `unplaced: ${unplaced.join(", ")}` }) : null);
    return { node, changed };
  },

  rootcause(problem, solution, previous) {
    const names = problem.services.map((s) => s.name);
    const rank = Object.fromEntries(solution.ranking.map((n, i) => [n, i]));
    const before = previous ? Object.fromEntries(previous.ranking.map((n, i) => [n, i])) : {};
    const deps = (problem.dependencies || []).filter(([a, b]) => names.includes(a) && names.includes(b));
    // layers: callers above their callees (longest path from a caller nobody calls; cycles stop at n rounds)
    const depth = Object.fromEntries(names.map((n) => [n, 0]));
    for (let round = 0; round < names.length; round++) {
      let moved = false;
      for (const [a, b] of deps) if (depth[b] < depth[a] + 1 && depth[a] + 1 < names.length) { depth[b] = depth[a] + 1; moved = true; }
      if (!moved) break;
    }
    const layers = [];
    for (const n of names) (layers[depth[n]] ||= []).push(n);
    const W = 560, rowH = 78, H = layers.filter(Boolean).length * rowH + 10;
    const pos = {};
    layers.filter(Boolean).forEach((layer, row) => layer.forEach((n, i) => { pos[n] = { x: ((i + 0.5) * W) / layer.length, y: 40 + row * rowH }; }));
    const colour = (n) => {
      const r = rank[n];
      return r === undefined ? "rank-none" : r === 0 ? "rank-0" : r === 1 ? "rank-1" : r === 2 ? "rank-2" : "rank-rest";
    };
    let changed = 0;
    const edges = deps.map(([a, b]) => svg("line", { x1: pos[a].x, y1: pos[a].y + 18, x2: pos[b].x, y2: pos[b].y - 22, class: "edge", "marker-end": "url(#arrow)" }));
    const nodes = names.map((n) => {
      const s = problem.services.find((x) => x.name === n);
      const isChanged = !previous || before[n] !== rank[n];
      changed += isChanged ? 1 : 0;
      const score = solution.scores && solution.scores[n] != null ? ` · ${solution.scores[n].toFixed(2)}` : "";
      const g = svg("g", { class: `service ${colour(n)}${isChanged ? " changed" : ""}`, transform: `translate(${pos[n].x},${pos[n].y})` },
        svg("rect", { x: -62, y: -18, width: 124, height: 36, rx: 6 }),
        svg("text", { y: -2, "text-anchor": "middle", text: n.length > 18 ? n.slice(0, 17) + "…" : n }),
        svg("text", { y: 12, "text-anchor": "middle", class: "small", text: `#${rank[n] === undefined ? "–" : rank[n] + 1}${score}` }),
        svg("title", { text: `${n}: error rate ${s.error_rate ?? "?"}, p99 ${s.latency_p99_ms ?? "?"} ms, anomalous ${flag(s.anomalous)}` }));
      return g;
    });
    const defs = svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" })));
    const graph = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "graph" }, defs, edges, nodes);
    const list = el("ol", { class: "ranking" }, solution.ranking.map((n) => el("li", { class: colour(n), text: n })));
    return { node: el("div", { class: "rootcause" }, graph, list), changed };
  },

  upgrade(problem, solution, previous) {
    const waveOf = (sol) => Object.fromEntries(sol.waves.flatMap((w, i) => w.map((n) => [n, i])));
    const now = waveOf(solution), before = previous ? waveOf(previous) : {};
    let changed = 0;
    const columns = solution.waves.map((wave, i) => el("div", { class: "wave" }, el("h4", { text: `wave ${i + 1}` }), el("ul", {}, wave.map((n) => {
      const isChanged = !previous || before[n] !== now[n];
      changed += isChanged ? 1 : 0;
      const services = (problem.services || []).filter((s) => s.replicas_on.includes(n)).map((s) => s.name);
      return el("li", { class: `node${isChanged ? " changed" : ""}`, title: services.length ? `runs ${services.join(", ")}` : "no listed service" }, n,
        services.length ? el("small", { text: ` ${services.join(", ")}` }) : null);
    }))));
    const missing = problem.nodes.filter((n) => now[n] === undefined);
    const node = el("div", {}, el("div", { class: "waves" }, columns),
      missing.length ? el("p", { class: "bad", text: `not in any wave: ${missing.join(", ")}` }) : null);
    return { node, changed };
  },

  json(problem, solution) {
    return { node: el("pre", { class: "json", text: JSON.stringify(solution, null, 2) }), changed: null };
  },
};

// ------------------------------------------------------------------------------------ live panel

const live = { history: [], timer: null };

async function pollStats() {
  if (document.hidden) return;
  let s;
  try {
    s = await api.call("/v1/stats");
  } catch (e) {
    $("#live-status").textContent = e.status === 401 ? "needs the API token" : `stats unavailable: ${e.message}`;
    return;
  }
  $("#live-status").textContent = s.ready ? "" : "models are loading";
  $("#live-rps").textContent = s.requests_per_second == null ? "–" : s.requests_per_second.toFixed(2);
  $("#live-queue").textContent = String(s.queue_depth);
  if (s.requests_per_second != null) live.history = [...live.history, s.requests_per_second].slice(-60);
  const peak = Math.max(1, ...live.history);
  const pts = live.history.map((v, i) => `${(i * 200) / 59},${38 - (36 * v) / peak}`).join(" ");
  $("#live-spark").replaceChildren(svg("polyline", { points: pts, class: "spark" }));
  $("#live-models").replaceChildren(...(s.models.length ? s.models.map((m) => {
    const fill = el("div", { class: "fill" });
    fill.style.width = `${m.slots ? (100 * m.busy_slots) / m.slots : 0}%`;
    return el("li", { "data-model": m.name }, el("b", { text: m.name }),
      el("div", { class: "meter" }, fill, el("span", { text: `${m.busy_slots}/${m.slots} busy` })),
      el("small", { text: `queue ${m.queue_depth}` }));
  }) : [el("li", { class: "hint", text: "no model loaded: the tasks' solvers answer" })]));
}

// ----------------------------------------------------------------------------------------- wiring

$("#task").addEventListener("change", taskChanged);
$("#load-example").addEventListener("click", () => setProblem(currentTask().example));
for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => setFormat(tab.dataset.format));
$("#solve").addEventListener("click", solve);
$("#problem").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) solve(); });
$("#prev").addEventListener("click", () => { stopPlayer(); showFrame(ui.frame - 1); });
$("#next").addEventListener("click", () => { stopPlayer(); showFrame(ui.frame + 1); });
$("#step").addEventListener("input", (e) => { stopPlayer(); showFrame(Number(e.target.value)); });
$("#play").addEventListener("click", togglePlayer);
document.addEventListener("keydown", (e) => {
  if (e.target.matches("textarea, input, select") || $("#result").hidden || !ui.frames.length) return;
  if (e.key === "ArrowLeft") showFrame(ui.frame - 1);
  if (e.key === "ArrowRight") showFrame(ui.frame + 1);
});

loadTasks();
pollStats();
live.timer = setInterval(pollStats, 2000);
