"use strict";
// The review page. Rows come a page at a time from /api/rows; changes go to the
// server as JSON with the page's token in a header, which only this page can send.
const token = document.querySelector('meta[name="review-token"]').content;
const PAGE = 50;
const $ = (id) => document.getElementById(id);
const list = $("rows"), more = $("more"), player = $("player");
const query = { q: "", state: "", verdict: "", checks: "" };
let rows = [];               // the rows shown, in the sheet's order
let matching = 0;            // rows the query finds in all
let generation = 0;          // grows with each new query: answers to older ones are dropped
let loadingFor = null;       // the generation a page is being fetched for
let current = -1;            // the selected row's index
// A row is a row of the sheet: its variations' takes side by side, numbered together; the
// page knows it by its first job.
const chosenTake = new Map(); // a row's first job -> the take selected in it
let playing = null;          // { job, take } of the sound in the player
let pollTimer = null;

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Review-Token": token },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || `the review answered HTTP ${response.status}`);
  return answer;
}

function say(text) { $("status").textContent = text; }

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(label, text, action, className) {
  const node = element("button", className, text);
  node.type = "button";
  node.setAttribute("aria-label", label);
  node.addEventListener("click", (event) => {
    action();
    // After a click with the mouse, keys go to the row again (Space plays, not clicks).
    if (event.detail > 0) node.closest(".row")?.focus({ preventScroll: true });
  });
  return node;
}

const finished = (state) => ["completed", "failed", "generation_failed", "remote_missing"].includes(state);
const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;

function showCounts(counts) {
  $("counts").textContent =
    `${counts.kept} kept · ${counts.rejected} rejected · ${counts.unreviewed} unreviewed`;
  const rejected = $("reroll-rejected");
  rejected.disabled = counts.rejected === 0;
  rejected.textContent = `Re-roll rejected rows`;
}

function showMore() {
  more.textContent = matching === 0 ? "No row matches."
    : rows.length < matching ? `Showing ${rows.length} of ${plural(matching, "row")}; scroll for more`
    : plural(matching, "row");
}

// MARK: Loading

async function load(reset) {
  if (reset) {
    generation += 1;
    rows = [];
    current = -1;
    list.replaceChildren();
  } else if (loadingFor === generation || (rows.length >= matching && generation > 0)) {
    return;
  }
  const mine = generation;
  loadingFor = mine;
  // Spaces as %20, not URLSearchParams' "+", which the server reads as a plus sign.
  const parameters = [`offset=${rows.length}`, `limit=${PAGE}`];
  for (const key of ["q", "state", "verdict", "checks"]) {
    if (query[key]) parameters.push(`${key}=${encodeURIComponent(query[key])}`);
  }
  try {
    const page = await api("/api/rows?" + parameters.join("&"));
    if (mine !== generation) return;
    matching = page.matching;
    showCounts(page.counts);
    const added = document.createDocumentFragment();
    for (const row of page.rows) {
      rows.push(row);
      added.append(renderRow(row));
    }
    list.append(added);
    drawWaves(list);
    if (current < 0 && rows.length > 0) select(0, false);
    showMore();
  } catch (error) {
    say(error.message);
  } finally {
    if (loadingFor === mine) loadingFor = null;
  }
  if (mine === generation && rows.length < matching && more.getBoundingClientRect().top < innerHeight + 600) load(false);
}

new IntersectionObserver((entries) => {
  if (entries.some((entry) => entry.isIntersecting)) load(false);
}, { rootMargin: "600px" }).observe(more);

// MARK: Rows

function renderRow(row) {
  const node = element("article", "row");
  node.tabIndex = -1;
  node.dataset.job = row.job;
  fillRow(node, row);
  return node;
}

function fillRow(node, row) {
  node.setAttribute("aria-label", `${row.name}: ${row.state.replaceAll("_", " ")}`);
  const head = element("div", "head");
  head.append(element("h2", "name", row.name), element("span", `badge ${row.state}`, row.state.replaceAll("_", " ")));
  // A re-roll makes a new take of the selected take's job (its variation).
  const reroll = button(`Re-roll ${row.name}`, "Re-roll", () => rerollChosen(row));
  reroll.disabled = !row.jobs.some((job) => finished(job.state));
  head.append(reroll);
  node.replaceChildren(head, element("p", "prompt", row.prompt));
  const columns = ownColumns(row.columns);
  if (columns) node.append(columns);
  if (row.reason && row.state !== "completed") node.append(element("p", "reason", row.reason));
  const takes = element("ol", "takes");
  for (const take of row.takes) takes.append(renderTake(row, take));
  node.append(takes);
  if (!chosenTake.has(row.job) || !row.takes.some((take) => take.take === chosenTake.get(row.job))) {
    chosenTake.set(row.job, row.takes[row.takes.length - 1].take);
  }
  markChosenTake(node, row.job);
}

function ownColumns(text) {
  if (!text) return null;
  let object;
  try { object = JSON.parse(text); } catch { return null; }
  const entries = Object.entries(object).filter(([, value]) => value !== null && value !== "");
  if (entries.length === 0) return null;
  const node = element("ul", "columns");
  for (const [key, value] of entries) node.append(element("li", "", `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`));
  return node;
}

function renderTake(row, take) {
  const node = element("li", "take");
  node.dataset.take = take.take;
  node.dataset.job = take.job;
  if (take.verdict) node.classList.add(take.verdict);
  const label = `${row.name} take ${take.take}`;
  const head = element("div", "take-head");
  head.append(element("span", "", `Take ${take.take}`));
  if (take.prompt !== row.prompt) head.append(element("span", "take-prompt", `“${take.prompt}”`));
  node.append(head);
  if (take.state !== "completed") {
    const words = take.state === "submitted" || take.state === "submitting" ? "generating…"
      : take.state === "pending" ? "waiting to be sent" : take.state.replaceAll("_", " ");
    node.append(element("p", "pending", take.reason ? `${words}: ${take.reason}` : words));
    return node;
  }
  const wave = element("canvas", "wave");
  wave.dataset.peaks = take.peaks || "";
  wave.dataset.seconds = take.seconds || 0;
  wave.setAttribute("aria-hidden", "true");
  wave.addEventListener("click", (event) => seek(take, event));
  const play = button(`Play ${label}`, "▶ Play", () => togglePlay(take.job, take.take), "play");
  play.disabled = !take.saved;
  if (!take.saved) play.title = "not saved yet: run soundbatch track --batch NAME --download DIR";
  const facts = [];
  if (take.seconds != null) facts.push(`${take.seconds.toFixed(1)} s` + (take.asked ? ` of ${take.asked} s asked` : ""));
  const peak = peakLevel(take);
  if (peak) facts.push(peak);
  if (take.loudness != null) facts.push(`${take.loudness.toFixed(1)} LUFS`);
  if (take.truePeak != null) facts.push(`${take.truePeak.toFixed(1)} dBTP`);
  if (take.credits != null) facts.push(`${take.credits.toFixed(2)} credits${take.charged ? "" : " est."}`);
  const keep = button(`Keep ${label}`, "Keep", () => judge(take.job, take.take, take.verdict === "kept" ? null : "kept"), "keep");
  keep.setAttribute("aria-pressed", String(take.verdict === "kept"));
  const reject = button(`Reject ${label}`, "Reject", () => judge(take.job, take.take, take.verdict === "rejected" ? null : "rejected"), "reject");
  reject.setAttribute("aria-pressed", String(take.verdict === "rejected"));
  head.append(element("span", "facts", facts.join(" · ")));
  const controls = element("div", "controls");
  controls.append(play, keep, reject);
  node.append(wave, controls);
  if (take.findings.length > 0) {
    // What the check found, in words, before anyone listens.
    node.classList.add("flagged");
    const found = element("p", "findings", take.findings.join(" · "));
    found.setAttribute("aria-label", `${label}: ${take.findings.join(", ")}`);
    node.append(found);
  }
  return node;
}

/// Selects the next take (after the one chosen, round to the first) that a check flagged; "F".
function nextFlagged() {
  // The last step is the chosen row again, from its first take.
  for (let step = 0; step <= rows.length; step++) {
    const index = (Math.max(current, 0) + step) % rows.length;
    const takes = rows[index].takes;
    const after = step === 0 ? takes.findIndex((take) => take.take === chosenTake.get(rows[index].job)) : -1;
    const found = takes.findIndex((take, position) => position > after && take.findings.length > 0);
    if (found >= 0) {
      chosenTake.set(rows[index].job, takes[found].take);
      select(index);
      markChosenTake(list.children[index], rows[index].job);
      return;
    }
  }
  say(rows.length < matching ? "no flagged take among the rows shown yet" : "no take flagged");
}

function replaceRow(row) {
  const index = rows.findIndex((shown) => shown.job === row.job);
  if (index < 0) return;
  rows[index] = row;
  const node = list.children[index];
  fillRow(node, row);
  drawWaves(node);
  if (playing && row.jobs.some((job) => job.job === playing.job)) showPlaying();
}

// MARK: Waveforms

function peaksOf(text) {
  const bytes = atob(text);
  return Uint8Array.from(bytes, (character) => character.charCodeAt(0));
}

function drawWave(canvas, played) {
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (width === 0) return;
  const scale = devicePixelRatio || 1;
  canvas.width = Math.round(width * scale);
  canvas.height = Math.round(height * scale);
  const context = canvas.getContext("2d");
  context.scale(scale, scale);
  const style = getComputedStyle(document.documentElement);
  const middle = height / 2;
  if (!canvas.dataset.peaks) {
    context.fillStyle = style.getPropertyValue("--line");
    context.fillRect(0, middle - 1, width, 2);
    return;
  }
  const peaks = peaksOf(canvas.dataset.peaks);
  // Drawn to its own peak, so a quiet take's shape shows; its level is said beside it.
  const top = Math.max(1, ...peaks);
  const bars = Math.max(1, Math.floor(width / 2));
  for (let bar = 0; bar < bars; bar += 1) {
    const from = Math.floor(bar * peaks.length / bars), to = Math.max(from + 1, Math.floor((bar + 1) * peaks.length / bars));
    let loudest = 0;
    for (let index = from; index < to && index < peaks.length; index += 1) loudest = Math.max(loudest, peaks[index]);
    const half = Math.max(0.5, loudest / top * middle);
    context.fillStyle = style.getPropertyValue(bar / bars < (played || 0) ? "--played" : "--wave");
    context.fillRect(bar * 2, middle - half, 1.5, half * 2);
  }
  canvas.dataset.drawn = width;
}

/// The loudest sample, as the check measured it, else as the waveform holds it (to 1/255).
function peakLevel(take) {
  if (take.samplePeak != null) return take.samplePeak <= -120 ? "silent" : `peak ${take.samplePeak.toFixed(1)} dBFS`;
  if (!take.peaks) return "";
  const loudest = Math.max(0, ...peaksOf(take.peaks));
  return loudest === 0 ? "peak under −48 dBFS" : `peak ${(20 * Math.log10(loudest / 255)).toFixed(1)} dBFS`;
}

/// The longest take on the page: every waveform is as wide as its length on this one scale,
/// so that 0.4 s looks short beside 4 s.
let longest = 0;

function drawWaves(root) {
  const seconds = rows.flatMap((row) => row.takes.map((take) => take.seconds || 0));
  const now = Math.max(0, ...seconds);
  if (now !== longest) {
    longest = now;
    root = list;  // every waveform again, on the new scale
  }
  for (const canvas of root.querySelectorAll("canvas.wave")) {
    const share = longest > 0 ? Number(canvas.dataset.seconds) / longest : 1;
    canvas.style.width = `${Math.max(2, share * 100)}%`;
    drawWave(canvas, canvasPlayed(canvas));
  }
}

function canvasPlayed(canvas) {
  if (!playing || !player.duration) return 0;
  const take = canvas.closest(".take");
  return Number(take.dataset.job) === playing.job && Number(take.dataset.take) === playing.take
    ? player.currentTime / player.duration : 0;
}

let resizeTimer = null;
addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => drawWaves(list), 150);
});

// MARK: Selection and keys

function rowNode(index) { return list.children[index]; }

function select(index, focus = true) {
  if (index < 0 || index >= rows.length) return;
  rowNode(current)?.classList.remove("selected");
  rowNode(current)?.removeAttribute("aria-current");
  current = index;
  const node = rowNode(index);
  node.classList.add("selected");
  node.setAttribute("aria-current", "true");
  if (focus) {
    node.focus({ preventScroll: true });
    node.scrollIntoView({ block: "nearest" });
  }
  if (index >= rows.length - 5) load(false);
}

function markChosenTake(node, job) {
  for (const take of node.querySelectorAll(".take")) {
    take.classList.toggle("chosen", Number(take.dataset.take) === chosenTake.get(job));
  }
}

function moveTake(step) {
  const row = rows[current];
  if (!row) return;
  const numbers = row.takes.map((take) => take.take);
  const at = numbers.indexOf(chosenTake.get(row.job));
  const next = numbers[Math.min(numbers.length - 1, Math.max(0, at + step))];
  chosenTake.set(row.job, next);
  markChosenTake(rowNode(current), row.job);
}

function selectedTake() {
  const row = rows[current];
  return row ? { row, take: row.takes.find((take) => take.take === chosenTake.get(row.job)) } : null;
}

list.addEventListener("click", (event) => {
  const node = event.target.closest(".row");
  if (!node) return;
  select([...list.children].indexOf(node), false);
  const take = event.target.closest(".take");
  if (take) {
    chosenTake.set(Number(node.dataset.job), Number(take.dataset.take));
    markChosenTake(node, Number(node.dataset.job));
  }
});

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey || $("reroll").open) return;
  if (event.target.closest("input, textarea, select")) return;
  // A button that has the focus from the keyboard is pressed with Space or Enter, as any button.
  if (event.target.closest("button") && (event.key === " " || event.key === "Enter")) return;
  const chosen = selectedTake();
  const actions = {
    " ": () => chosen && chosen.take.state === "completed" && togglePlay(chosen.take.job, chosen.take.take),
    "j": () => select(current + 1), "ArrowDown": () => select(current + 1),
    "k": () => select(Math.max(current - 1, 0)), "ArrowUp": () => select(Math.max(current - 1, 0)),
    "ArrowRight": () => moveTake(1), "ArrowLeft": () => moveTake(-1),
    "p": () => chosen && judge(chosen.take.job, chosen.take.take, "kept"),
    "x": () => chosen && judge(chosen.take.job, chosen.take.take, "rejected"),
    "u": () => chosen && judge(chosen.take.job, chosen.take.take, null),
    "r": () => chosen && rerollChosen(chosen.row),
    "f": () => nextFlagged(),
  };
  const action = actions[event.key.length === 1 ? event.key.toLowerCase() : event.key];
  if (!action) return;
  event.preventDefault();
  action();
});

// MARK: Playing

function togglePlay(job, take) {
  if (playing && playing.job === job && playing.take === take) {
    if (player.paused) player.play().catch((error) => say(`cannot play: ${error.message}`));
    else player.pause();
    return;
  }
  playing = { job, take };
  player.src = `/audio/${job}/${take}`;
  player.play().catch((error) => say(`cannot play: ${error.message}`));
  showPlaying();
}

function seek(take, event) {
  if (!take.saved) return;
  const fraction = event.offsetX / event.currentTarget.clientWidth;
  if (!playing || playing.job !== take.job || playing.take !== take.take) togglePlay(take.job, take.take);
  const jump = () => { player.currentTime = fraction * player.duration; };
  if (player.duration) jump(); else player.addEventListener("loadedmetadata", jump, { once: true });
}

function showPlaying() {
  for (const play of list.querySelectorAll("button.play")) {
    const take = play.closest(".take");
    const on = playing && !player.paused && Number(take.dataset.job) === playing.job && Number(take.dataset.take) === playing.take;
    const label = play.getAttribute("aria-label").replace(/^(Play|Pause) /, "");
    play.setAttribute("aria-label", `${on ? "Pause" : "Play"} ${label}`);
    play.textContent = on ? "❚❚ Pause" : "▶ Play";
  }
}

for (const name of ["play", "pause", "ended"]) player.addEventListener(name, showPlaying);
player.addEventListener("timeupdate", () => {
  if (!playing) return;
  const node = list.querySelector(`.take[data-job="${playing.job}"][data-take="${playing.take}"] canvas`);
  if (node) drawWave(node, player.duration ? player.currentTime / player.duration : 0);
});
player.addEventListener("error", () => { if (player.src) say("this sound could not be played: its file may have moved"); });

// MARK: Verdicts

async function judge(job, take, verdict) {
  try {
    const answer = await api("/api/verdict", { job, take, verdict });
    replaceRow(answer.row);
    showCounts(answer.counts);
    const row = answer.row;
    say(`${row.name} take ${take}: ${verdict ?? "verdict cleared"}`);
  } catch (error) {
    say(error.message);
  }
}

// MARK: Re-rolls

/// Re-rolls the job of the row's selected take, if that job is finished.
function rerollChosen(row) {
  const take = row.takes.find((shown) => shown.take === chosenTake.get(row.job)) || row.takes[row.takes.length - 1];
  const job = row.jobs.find((shown) => shown.job === take.job);
  if (!job || !finished(job.state)) {
    say(`${row.name} take ${take.take} is not finished: nothing to re-roll yet`);
    return;
  }
  openReroll({ jobs: [take.job] }, row, take);
}

/// `row` and `take`: a re-roll of one take's job, whose prompt may be edited; else of many rows.
async function openReroll(asked, row, take) {
  let plan;
  try {
    plan = await api("/api/reroll/plan", asked);
  } catch (error) {
    say(error.message);
    return;
  }
  const dialog = $("reroll");
  const count = plan.jobs.length;
  $("reroll-title").textContent = row ? `Re-roll ${row.name}` : `Re-roll ${plural(count, "rejected row")}`;
  const cost = plan.credits == null ? "a cost the service will say" : `about ${plan.credits.toFixed(2)} credits`;
  $("reroll-summary").textContent =
    `${plural(count, "new take")}, ${cost}, sent to ${plan.service} at the batch's pace and saved in ${plan.folder}. ` +
    "Earlier takes stay, with their verdicts.";
  const names = $("reroll-rows");
  names.replaceChildren(...plan.rows.slice(0, 50).map((name) => element("li", "", name)));
  if (plan.rows.length > 50) names.append(element("li", "", `and ${plan.rows.length - 50} more`));
  $("reroll-warning").textContent = plan.likelyToFailAgain.length
    ? `Refused as invalid before, and likely again: ${plan.likelyToFailAgain.join(", ")}` : "";
  const edit = $("reroll-edit"), prompt = $("reroll-prompt");
  edit.hidden = !row;
  prompt.value = take ? take.prompt : "";
  $("reroll-error").textContent = plan.busy ? "A re-roll is under way; wait for it to end." : "";
  const send = $("reroll-send");
  send.textContent = `Send ${plural(count, "re-roll")}`;
  send.disabled = plan.busy;
  send.onclick = async () => {
    send.disabled = true;
    try {
      const body = { jobs: plan.jobs };
      if (take && prompt.value.trim() !== take.prompt) body.prompt = prompt.value;
      const status = await api("/api/reroll", body);
      dialog.close();
      follow(status);
    } catch (error) {
      $("reroll-error").textContent = error.message;
      send.disabled = false;
    }
  };
  dialog.showModal();
  send.focus();
}

$("reroll-cancel").addEventListener("click", () => $("reroll").close());
$("reroll").addEventListener("close", () => rowNode(current)?.focus({ preventScroll: true }));
$("reroll-rejected").addEventListener("click", () => openReroll({ rejected: true }, null));

// While a re-roll is under way, its rows are read again every second and a half: the
// new take shows as generating, then as a sound, without a reload.
function follow(status) {
  say(status.message);
  if (status.busy && pollTimer === null) pollTimer = setInterval(poll, 1500);
}

async function poll() {
  try {
    const status = await api("/api/reroll");
    say(status.message);
    await refreshRows(status.jobs);
    if (!status.busy) {
      clearInterval(pollTimer);
      pollTimer = null;
    }
  } catch (error) {
    say(error.message);
  }
}

async function refreshRows(jobs) {
  const shown = jobs.filter((job) => rows.some((row) => row.jobs.some((mine) => mine.job === job)));
  for (let from = 0; from < shown.length; from += 200) {
    const page = await api(`/api/rows?limit=200&jobs=${shown.slice(from, from + 200).join(",")}`);
    showCounts(page.counts);
    for (const row of page.rows) replaceRow(row);
  }
}

// MARK: Searching

let searchTimer = null;
$("search").addEventListener("input", (event) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => { query.q = event.target.value.trim(); load(true); }, 150);
});
for (const name of ["state", "verdict", "checks"]) {
  $(name).addEventListener("change", (event) => { query[name] = event.target.value; load(true); });
}

load(true);
api("/api/reroll").then(follow).catch(() => {});
