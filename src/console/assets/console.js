// The Edgewise console's core: polls the summary every 2 s and hands it to the sections
// (dns.js, cdn.js, streams.js register themselves), keeps the access token of this tab, and
// offers the helpers the sections share: tables, number formats and rate charts (uPlot).
// No request leaves this host.
"use strict";
(function () {
  const POLL_MS = 2000;
  const KEEP_S = 15 * 60;
  const TOKEN_KEY = "edgewise-token";
  const PALETTE = ["#2f7ed8", "#d9480f", "#2b8a3e", "#c2255c", "#7048e8", "#e67700", "#0c8599", "#868e96"];
  const $ = (id) => document.getElementById(id);
  const sections = [];
  const charts = {};
  let kind = null;

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  // Replaces the rows of table `tableId`: each row a list of [text, class] cells, the first a
  // row header; `empty` is shown across the table when there are none.
  function fill(tableId, rows, columns, empty) {
    const body = $(tableId).tBodies[0];
    const fresh = document.createElement("tbody");
    if (rows.length === 0) {
      const td = cell(fresh.insertRow(), empty, "empty");
      td.colSpan = columns;
    }
    for (const r of rows) {
      const tr = fresh.insertRow();
      r.forEach(([text, cls], i) => {
        if (i === 0) {
          const th = document.createElement("th");
          th.scope = "row";
          th.textContent = text;
          if (cls) th.className = cls;
          tr.appendChild(th);
        } else {
          cell(tr, text, cls);
        }
      });
    }
    body.replaceWith(fresh);
  }

  // A definition list of [term, value] pairs in element `id`.
  function totals(id, pairs) {
    const list = $(id);
    list.replaceChildren();
    for (const [k, v] of pairs) {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = k;
      dd.textContent = v;
      div.append(dt, dd);
      list.appendChild(div);
    }
  }

  const count = (n) => Number(n).toLocaleString("en");
  const num = (n) => [count(n), "num"];

  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + " " + units[i];
  }

  function ago(seconds, now) {
    if (seconds == null) return "never";
    const s = Math.max(0, Math.round(now - seconds));
    return s < 120 ? s + " s ago" : Math.round(s / 60) + " min ago";
  }

  function duration(seconds) {
    if (seconds % 86400 === 0) return seconds / 86400 + " d";
    if (seconds % 3600 === 0) return seconds / 3600 + " h";
    return seconds + " s";
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // Time-axis labels on one line (uPlot's default adds the date on a second line, which
  // collides at a phone's width): hours and minutes, with seconds when ticks are closer.
  function clockTicks(u, ticks) {
    const seconds = ticks.length > 1 && ticks[1] - ticks[0] < 60;
    const format = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (seconds) format.second = "2-digit";
    return ticks.map((t) => new Date(t * 1000).toLocaleTimeString([], format));
  }

  // Rates of cumulative counters over the last 15 minutes, drawn with uPlot in element `id`.
  // `push(time, counters)` takes a summary's time and a {name: total} map; a series appears
  // (and the chart is made again) when its name first counts something, or at once if listed
  // in `main`, so the legend holds only what happens. `derive(rates)`, if given, turns the per-second rates into the values drawn (for
  // ratios), with `unit` their unit.
  class RateChart {
    constructor(id, { title, unit, main = [], derive = null, range = null }) {
      Object.assign(this, { id, title, unit, main, derive, range });
      this.names = [];
      this.times = [];
      this.values = [];
      this.last = null;
      this.plot = null;
      charts[id] = this;
    }

    push(time, counters) {
      const fresh = Object.keys(counters)
        .filter((n) => !this.names.includes(n) && (this.main.includes(n) || counters[n] > 0));
      if (fresh.length) {
        this.names.push(...fresh);
        fresh.forEach(() => this.values.push(this.times.map(() => null)));
        this.destroy();
      }
      if (this.last && time > this.last.time) {
        const dt = time - this.last.time;
        const rates = {};
        for (const n of this.names) {
          rates[n] = Math.max(0, (counters[n] || 0) - (this.last.counters[n] || 0)) / dt;
        }
        const drawn = this.derive ? this.derive(rates) : rates;
        this.times.push(time);
        this.names.forEach((n, i) => this.values[i].push(drawn[n] ?? null));
        while (this.times.length && this.times[0] < time - KEEP_S) {
          this.times.shift();
          this.values.forEach((v) => v.shift());
        }
      }
      this.last = { time, counters };
      this.draw();
    }

    // The latest value drawn for `name`, or null before two summaries.
    latest(name) {
      const i = this.names.indexOf(name);
      return i < 0 || !this.values[i].length ? null : this.values[i][this.values[i].length - 1];
    }

    size() {
      const width = Math.max(280, $(this.id).clientWidth);
      return { width, height: width < 640 ? 200 : 240 };
    }

    destroy() {
      if (this.plot) { this.plot.destroy(); this.plot = null; }
    }

    draw() {
      if (typeof uPlot === "undefined") return;
      const data = [this.times].concat(this.values);
      if (this.plot) { this.plot.setData(data); return; }
      const fg = cssVar("--fg"), grid = cssVar("--line");
      const axis = { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid } };
      const unit = this.unit;
      // Main series keep their colours whatever appears first; the others follow.
      let others = this.main.length;
      const colour = (n) => PALETTE[(this.main.includes(n) ? this.main.indexOf(n) : others++) % PALETTE.length];
      const opts = {
        ...this.size(),
        title: this.title,
        series: [{}].concat(this.names.map((n) => ({
          label: n, stroke: colour(n), width: 2,
          value: (u, v) => v == null ? "–" : v.toFixed(2) + " " + unit,
        }))),
        axes: [{ ...axis, space: 70, values: clockTicks }, { ...axis, label: unit, size: 60 }],
        scales: { y: { range: this.range || ((u, min, max) => [0, Math.max(1, max)]) } },
      };
      const el = $(this.id);
      this.plot = new uPlot(opts, data, el);
      el.setAttribute("aria-label", this.title + " over the last 15 minutes");
      if (!this.resizing) {
        this.resizing = true;
        window.addEventListener("resize", () => this.plot && this.plot.setSize(this.size()));
      }
    }
  }

  // The token this tab was given (sessionStorage: kept until the tab closes, sent only here).
  const token = () => sessionStorage.getItem(TOKEN_KEY);

  // `fetch` with this tab's token, if it has one. A 401/403 asks for the token.
  async function call(path, options = {}) {
    const headers = new Headers(options.headers || {});
    if (token()) headers.set("Authorization", "Bearer " + token());
    const response = await fetch(path, { cache: "no-store", ...options, headers });
    if (response.status === 401 || response.status === 403) askToken(response.status);
    return response;
  }

  function askToken(status) {
    const form = $("token-form");
    form.hidden = false;
    $("token-note").textContent = token()
      ? "The server refused this token (" + status + "); enter the listener's token."
      : "Reading from another host, and every action, needs the listener's token.";
  }

  function setupToken() {
    const form = $("token-form");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const value = $("token").value.trim();
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      $("token").value = "";
      form.hidden = true;
      poll();
    });
    $("token-forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      $("status").textContent = "Token forgotten.";
    });
  }

  function show(s) {
    if (!kind) {
      kind = s.kind;
      const title = kind === "dns" ? "Edgewise DNS" : "Edgewise CDN";
      $("title").textContent = title;
      document.title = title + " · console";
      document.body.dataset.kind = kind;
    }
    for (const section of sections) {
      if (section.kind !== s.kind) continue;
      try {
        section.update(s);
      } catch (e) {
        console.error("console section " + section.name + ": " + e);
      }
    }
    $("status").textContent = "Updated " + new Date(s.time * 1000).toLocaleTimeString();
  }

  let timer = null;
  async function poll() {
    clearTimeout(timer);
    try {
      const response = await call("/console/api/summary");
      if (response.status === 401 || response.status === 403) {
        $("status").textContent = "Not allowed without the listener's token.";
      } else if (!response.ok) {
        $("status").textContent = "The summary answered " + response.status + "; retrying.";
      } else {
        show(await response.json());
      }
    } catch (e) {
      $("status").textContent = "Cannot reach the server; retrying.";
    }
    timer = setTimeout(poll, POLL_MS);
  }

  window.Edgewise = {
    // Registers `update(summary)` for summaries of `kind` ("dns" or "cdn"); its section
    // (element `name`) is shown.
    section(kind, name, update) {
      sections.push({ kind, name, update: (s) => { $(name).hidden = false; update(s); } });
    },
    // Every RateChart by element id (the browser tests read them).
    charts,
    $, fill, totals, count, num, bytes, ago, duration, RateChart, call, askToken, token,
  };

  // Axis and grid colours come from the page's CSS variables when a chart is made, so a switch
  // between light and dark makes the charts again.
  function restyle() {
    for (const chart of Object.values(charts)) { chart.destroy(); chart.draw(); }
  }

  document.addEventListener("DOMContentLoaded", () => {
    setupToken();
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", restyle);
    poll();
  });
})();
