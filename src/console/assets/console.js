// The Edgewise console: polls the summary every 2 s, keeps 15 minutes of rates in memory and
// draws them with uPlot; the tables show what the process serves. No request leaves this host.
"use strict";
(function () {
  const POLL_MS = 2000;
  const KEEP_S = 15 * 60;
  const PALETTE = ["#2f7ed8", "#d9480f", "#2b8a3e", "#c2255c", "#7048e8", "#e67700", "#0c8599", "#868e96"];
  const $ = (id) => document.getElementById(id);

  let kind = null;   // "dns" or "cdn", from the first summary
  let names = [];    // the charted counters, in the server's order
  let last = null;   // the previous summary: {time, counters}
  const times = [];  // x values (unix seconds)
  let rates = [];    // one array per counter, per second
  let plot = null;
  // Charted from the start; the other series appear once they count something, or on a
  // click on their legend entry.
  const MAIN = ["NOERROR", "NXDOMAIN", "REFUSED", "Hit", "Miss", "Error"];

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function fill(tableId, rows, columns, empty) {
    const body = $(tableId).tBodies[0];
    const fresh = document.createElement("tbody");
    if (rows.length === 0) {
      const tr = fresh.insertRow();
      const td = cell(tr, empty, "empty");
      td.colSpan = columns;
    }
    for (const r of rows) {
      const tr = fresh.insertRow();
      r.forEach(([text, cls], i) => {
        if (i === 0) {
          const th = document.createElement("th");
          th.scope = "row";
          th.textContent = text;
          tr.appendChild(th);
        } else {
          cell(tr, text, cls);
        }
      });
    }
    body.replaceWith(fresh);
  }

  const num = (n) => [Number(n).toLocaleString("en"), "num"];

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

  function tables(s) {
    if (s.kind === "dns") {
      fill("zones", s.zones.map((z) => [[z.name], [String(z.serial), "num"], num(z.records)]), 3, "No zones.");
      fill("checks", s.health_checks.map((c) => [
        [c.id], [c.type], [c.target],
        c.healthy ? ["healthy", "ok"] : ["unhealthy", "bad"],
        [c.last_result ? c.last_result + ", " + ago(c.last_checked, s.time) : "not probed yet"],
        c.latency_ms == null ? ["–", "num"] : [c.latency_ms.toFixed(1) + " ms", "num"],
      ]), 6, "No health checks.");
    } else {
      fill("distributions", s.distributions.map((d) => [
        [d.id], [d.hosts.join(", ")], num(d.behaviors), num(d.requests),
      ]), 4, "No distributions.");
      fill("streams", (s.streams || []).map((st) => [
        [st.name], num(st.shards), [duration(st.retention_seconds)],
      ]), 3, "No stream log in this process.");
    }
    const totals = $("totals");
    totals.replaceChildren();
    const counters = s.kind === "dns" ? s.queries : s.requests;
    const extra = s.kind === "cdn" ? [["cached objects", s.cache.objects.toLocaleString("en")], ["cache size", bytes(s.cache.bytes)]] : [];
    for (const [k, v] of Object.entries(counters).filter(([, v]) => v > 0).map(([k, v]) => [k, v.toLocaleString("en")]).concat(extra)) {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = k;
      dd.textContent = v;
      div.append(dt, dd);
      totals.appendChild(div);
    }
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function size() {
    const width = Math.max(280, $("chart").clientWidth);
    return { width, height: width < 640 ? 200 : 260 };
  }

  function makePlot() {
    const fg = cssVar("--fg"), grid = cssVar("--line");
    const axis = { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid } };
    const unit = kind === "dns" ? "queries/s" : "requests/s";
    const opts = {
      ...size(),
      title: kind === "dns" ? "Queries per second by response code" : "Requests per second by result",
      series: [{}].concat(names.map((n, i) => ({
        label: n, stroke: PALETTE[i % PALETTE.length], width: 2,
        show: MAIN.includes(n) || last.counters[n] > 0,
        value: (u, v) => v == null ? "–" : v.toFixed(2) + " " + unit,
      }))),
      axes: [axis, { ...axis, label: unit, size: 60 }],
      scales: { y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    };
    plot = new uPlot(opts, [times].concat(rates), $("chart"));
    $("chart").setAttribute("aria-label", opts.title + " over the last 15 minutes");
    window.addEventListener("resize", () => plot.setSize(size()));
  }

  function chart(s) {
    const counters = s.kind === "dns" ? s.queries : s.requests;
    if (names.length === 0) {
      names = Object.keys(counters);
      rates = names.map(() => []);
    }
    if (last && s.time > last.time) {
      const dt = s.time - last.time;
      times.push(s.time);
      names.forEach((n, i) => rates[i].push(Math.max(0, (counters[n] || 0) - (last.counters[n] || 0)) / dt));
      while (times.length && times[0] < s.time - KEEP_S) {
        times.shift();
        rates.forEach((r) => r.shift());
      }
    }
    last = { time: s.time, counters };
    if (!plot && typeof uPlot !== "undefined") makePlot();
    else if (plot) plot.setData([times].concat(rates));
  }

  function show(s) {
    if (!kind) {
      kind = s.kind;
      const title = kind === "dns" ? "Edgewise DNS" : "Edgewise CDN";
      $("title").textContent = title;
      document.title = title + " · console";
      $(kind).hidden = false;
    }
    tables(s);
    chart(s);
    $("status").textContent = "Updated " + new Date(s.time * 1000).toLocaleTimeString();
  }

  async function poll() {
    try {
      const response = await fetch("/console/api/summary", { cache: "no-store" });
      if (!response.ok) {
        $("status").textContent = response.status === 401 || response.status === 403
          ? "Not allowed: the console is open to this host's loopback clients, or with the listener's token."
          : "The summary answered " + response.status + "; retrying.";
      } else {
        show(await response.json());
      }
    } catch (e) {
      $("status").textContent = "Cannot reach the server; retrying.";
    }
    setTimeout(poll, POLL_MS);
  }

  poll();
})();
