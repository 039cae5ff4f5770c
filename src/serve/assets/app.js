// podseek search page: calls the JSON API, renders results, episode timelines and chapter views.
"use strict";
const $ = (id) => document.getElementById(id);
const WEAK = parseFloat(document.body.dataset.weakScore) || 0;
let episodesCache = null;

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function fold(s) { return s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase(); }

// Mark the words of the query that occur in the snippet (accent- and case-insensitive).
function highlight(text, query) {
  const terms = [...new Set(fold(query).split(/[^\p{L}\p{N}]+/u).filter((t) => t.length >= 4))];
  const folded = fold(text);
  const marks = [];
  for (const t of terms) {
    let i = folded.indexOf(t);
    while (i >= 0) { marks.push([i, i + t.length]); i = folded.indexOf(t, i + t.length); }
  }
  marks.sort((a, b) => a[0] - b[0]);
  let out = "", at = 0;
  for (const [s, e] of marks) {
    if (s < at) continue;
    out += esc(text.slice(at, s)) + "<mark>" + esc(text.slice(s, e)) + "</mark>";
    at = e;
  }
  return out + esc(text.slice(at));
}

function status(msg, isError) {
  const el = $("status");
  el.textContent = msg;
  el.className = isError ? "error" : "";
}

function chapterHref(id) { return "/chapters/" + encodeURIComponent(id); }
function clock(s) {
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${String(m).padStart(2, "0")}:${sec}`;
}

// Only web links are rendered: an episode URL such as `javascript:` never becomes a link.
function webHref(url) { return url && /^https?:\/\//i.test(url) ? url : null; }
function timeHref(hit) { return webHref(hit.url) || chapterHref(hit.chapter_id); }

async function api(path) {
  const r = await fetch(path, { headers: { accept: "application/json" } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.error && body.error.message) || ("HTTP " + r.status));
  return body;
}

async function episodes() {
  if (!episodesCache) {
    // Every page, following the cursors.
    const all = [];
    let cursor = null;
    do {
      const page = await api("/v1/episodes?limit=1000" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      all.push(...page.episodes);
      cursor = page.next_cursor;
    } while (cursor);
    episodesCache = all;
  }
  return episodesCache;
}

function renderHit(h, query) {
  const quote = h.snippet_kind === "quote";
  const spoken = quote || h.snippet_kind === "transcript";
  const snippet = highlight(h.snippet, query) + (spoken && h.speaker ? " <span class=\"speaker\">— " + esc(h.speaker) + "</span>" : "");
  // Transcript evidence links to the second where it is said; the chapter's start is shown beside it.
  const at = h.evidence_timestamp || h.timestamp;
  const within = h.evidence_timestamp ? ` <span class="within">in chapter from ${esc(h.timestamp)}</span>` : "";
  const second = h.evidence_start_s ?? h.start_s;
  const play = webHref(h.audio_url)
    ? ` <button type="button" class="play" data-audio="${esc(h.audio_url)}" data-at="${second}" aria-label="Play the episode from ${esc(at)}">▶ ${esc(at)}</button>`
    : "";
  const generated = h.chapter_generated ? ` <span class="badge gen" title="podseek made this episode's chapters from its audio">auto chapters</span>` : "";
  return `<li class="hit" title="score ${h.score.toFixed(3)}" data-chapter="${esc(h.chapter_id)}" data-lang="${esc(h.lang)}">
    <div class="meta"><span class="badge ${esc(h.lang)}">${esc(h.lang)}</span>${generated}
      <a class="ts" href="${esc(timeHref(h))}" aria-label="Open at ${esc(at)}">${esc(at)}</a>${within}${play}
      <span class="episode">${esc(h.episode_title)}</span></div>
    <h2><a href="${esc(chapterHref(h.chapter_id))}" data-nav>${esc(h.chapter_title)}</a></h2>
    <p class="snippet ${quote ? "quote" : ""}">${snippet}</p></li>`;
}

// One bar per episode among the results: chapters cut to scale, shaded by relevance.
function renderTimelines(shown, all, eps) {
  const scores = new Map(all.map((h) => [h.chapter_id, h.score]));
  const values = all.map((h) => h.score);
  const lo = Math.min(...values), hi = Math.max(...values);
  const order = [...new Set(shown.map((h) => h.episode_id))];
  const html = order.map((id) => {
    const ep = eps.find((e) => e.id === id);
    if (!ep || !ep.chapters.length) return "";
    const starts = ep.chapters.map((c) => c.start_s);
    const avg = starts.length > 1 ? starts[starts.length - 1] / (starts.length - 1) : 300;
    const total = starts[starts.length - 1] + Math.max(60, avg);
    const segs = ep.chapters.map((c, i) => {
      const end = i + 1 < starts.length ? starts[i + 1] : total;
      const s = scores.get(c.id);
      const rel = s === undefined || hi === lo ? 0 : (s - lo) / (hi - lo);
      const alpha = s === undefined ? 0.06 : 0.12 + 0.88 * rel * rel;
      const label = `${c.title} [${c.timestamp}]` + (s === undefined ? "" : `, relevance ${s.toFixed(3)}`);
      return `<a class="seg" href="${esc(chapterHref(c.id))}" data-nav data-chapter="${esc(c.id)}" data-score="${s ?? ""}"
        style="flex:${Math.max(end - c.start_s, 1)};background:rgba(59,91,219,${alpha.toFixed(3)})" title="${esc(label)}" aria-label="${esc(label)}"></a>`;
    }).join("");
    return `<div class="timeline" data-episode="${esc(id)}"><div class="label">${esc(ep.title)}</div><div class="bar">${segs}</div></div>`;
  }).join("");
  $("timelines").innerHTML = html;
}

async function search(q, lang, k) {
  $("chapter").hidden = true;
  $("results").innerHTML = "";
  $("timelines").innerHTML = "";
  if (!q.trim()) { status(""); return; }
  status("Searching…");
  try {
    const params = new URLSearchParams({ q, k: "100" });
    if (lang) params.set("lang", lang);
    const [res, eps] = await Promise.all([api("/v1/search?" + params), episodes()]);
    const shown = res.hits.slice(0, k);
    if (!shown.length || shown[0].score < WEAK) {
      status("No chapter matches well. Try other words, or the other language.");
      return;
    }
    const strong = shown.filter((h) => h.score >= WEAK);
    status(`${strong.length} chapter${strong.length === 1 ? "" : "s"} for “${q}”`);
    renderTimelines(strong, res.hits, eps);
    $("results").innerHTML = strong.map((h) => renderHit(h, q)).join("");
  } catch (e) {
    status("Search failed: " + e.message, true);
  }
}

async function showChapter(id) {
  $("results").innerHTML = "";
  $("timelines").innerHTML = "";
  status("Loading chapter…");
  try {
    const c = await api("/v1/chapters/" + encodeURIComponent(id));
    const quotes = c.quotes.map((q) => `<blockquote>“${esc(q.text)}”${q.speaker ? " — " + esc(q.speaker) : ""}</blockquote>`).join("");
    const ents = c.entities.map((e) => `<dt>${esc(e.name)} <span class="muted">(${esc(e.type)})</span></dt><dd>${esc(e.description)}</dd>`).join("");
    const base = webHref(c.episode_url);
    const audio = webHref(c.audio_url);
    const lines = (c.transcript || []).map((l) => {
      const s = Math.floor(l.start_s), label = clock(s);
      const ts = audio ? `<button type="button" class="ts seek" data-at="${l.start_s}">${label}</button>`
        : base ? `<a class="ts" href="${esc(base + "#t=" + s)}">${label}</a>` : `<span class="ts">${label}</span>`;
      return `<p class="line" data-start="${l.start_s}" data-end="${l.end_s ?? ""}">${ts} ${l.speaker ? "<b>" + esc(l.speaker) + "</b> " : ""}${esc(l.text)}</p>`;
    }).join("");
    const heard = c.transcript_heard_by ? ` <span class="muted">(heard by ${esc(c.transcript_heard_by)})</span>` : "";
    const generated = c.generated ? ` <span class="badge gen" title="podseek made this episode's chapters from its audio">auto chapter</span>` : "";
    const link = (r, rel) => r ? `<a href="${esc(chapterHref(r.id))}" data-nav rel="${rel}">${rel === "prev" ? "← " : ""}${esc(r.title)} [${esc(r.timestamp)}]${rel === "next" ? " →" : ""}</a>` : "<span></span>";
    const el = $("chapter");
    el.innerHTML = `<p class="meta"><span class="badge ${esc(c.lang)}">${esc(c.lang)}</span>${generated} ${esc(c.episode_title)}</p>
      <h1>${esc(c.title)} <a class="ts" href="${esc(webHref(c.url) || "#")}">${esc(c.timestamp)}</a></h1>
      ${audio ? `<audio id="player" controls preload="metadata" src="${esc(audio)}"></audio>` : ""}
      <p>${esc(c.summary)}</p>${quotes}
      ${lines ? "<h2>Transcript" + heard + "</h2>" + lines : ""}
      ${ents ? "<h2>In this episode</h2><dl>" + ents + "</dl>" : ""}
      <nav>${link(c.previous, "prev")}${link(c.next, "next")}</nav>`;
    el.hidden = false;
    if (audio) follow($("player"), el, c.start_s);
    status("");
    document.title = c.title + " — podseek";
  } catch (e) {
    status("Could not load the chapter: " + e.message, true);
  }
}

// The chapter view's player: it starts at the chapter (or the second in the address's #t=), and
// the transcript line being spoken is highlighted as it plays.
function follow(player, view, start) {
  const t = parseFloat((location.hash.match(/^#t=([0-9.]+)$/) || [])[1]);
  player.addEventListener("loadedmetadata", () => { player.currentTime = Number.isFinite(t) ? t : start; }, { once: true });
  const lines = [...view.querySelectorAll(".line")];
  player.addEventListener("timeupdate", () => {
    const now = player.currentTime;
    for (const [i, line] of lines.entries()) {
      const from = parseFloat(line.dataset.start);
      const next = lines[i + 1] ? parseFloat(lines[i + 1].dataset.start) : Infinity;
      const to = line.dataset.end ? parseFloat(line.dataset.end) : next;
      const on = now >= from && now < Math.max(to, Math.min(next, from + 0.5));
      if (on !== line.classList.contains("speaking")) {
        line.classList.toggle("speaking", on);
        if (on) line.setAttribute("aria-current", "true"); else line.removeAttribute("aria-current");
      }
    }
  });
}

// One inline player for the results: the ▶ button moves it under its hit and plays from the second.
function playInline(button) {
  let player = $("inline-player");
  if (!player) {
    player = document.createElement("audio");
    player.id = "inline-player";
    player.controls = true;
  }
  const at = parseFloat(button.dataset.at) || 0;
  button.closest(".hit").appendChild(player);
  const start = () => { player.currentTime = at; player.play().catch(() => {}); };
  if (player.getAttribute("src") !== button.dataset.audio) {
    player.setAttribute("src", button.dataset.audio);
    player.addEventListener("loadedmetadata", start, { once: true });
  } else {
    start();
  }
}

function route() {
  const m = location.pathname.match(/^\/chapters\/(.+)$/);
  if (m) return showChapter(decodeURIComponent(m[1]));
  const p = new URLSearchParams(location.search);
  $("q").value = p.get("q") || "";
  $("lang").value = p.get("lang") || "";
  $("k").value = p.get("k") || "10";
  return search($("q").value, $("lang").value, parseInt($("k").value, 10));
}

$("search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const p = new URLSearchParams({ q: $("q").value });
  if ($("lang").value) p.set("lang", $("lang").value);
  if ($("k").value !== "10") p.set("k", $("k").value);
  history.pushState(null, "", "/?" + p);
  route();
});
document.addEventListener("click", (ev) => {
  const play = ev.target.closest("button.play");
  if (play) { playInline(play); return; }
  const seek = ev.target.closest("button.seek");
  if (seek && $("player")) { $("player").currentTime = parseFloat(seek.dataset.at); $("player").play().catch(() => {}); return; }
  const a = ev.target.closest("a[data-nav]");
  if (!a || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  ev.preventDefault();
  history.pushState(null, "", a.getAttribute("href"));
  route();
});
window.addEventListener("popstate", route);
route();
