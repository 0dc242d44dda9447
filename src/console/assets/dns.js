// The DNS sections of the console: queries per second by response code and by zone, the
// zones served, the most queried names, routed answers by record set, and the health checks
// with their recent changes.
"use strict";
(function () {
  const E = window.Edgewise;
  const rcodes = new E.RateChart("dns-chart", {
    title: "Queries per second by response code",
    unit: "queries/s",
    main: ["NOERROR", "NXDOMAIN", "REFUSED"],
  });
  const zones = new E.RateChart("dns-zones-chart", {
    title: "Queries per second by zone",
    unit: "queries/s",
  });
  // The previous summary's routed counts, for each set's rate since then.
  let lastRouted = null;

  const label = (name) => name.length > 1 ? name.replace(/\.$/, "") : name;
  const percent = (part, whole) => whole > 0 ? (100 * part / whole).toFixed(1) + " %" : "–";

  E.section("dns", "dns", (s) => {
    E.fill("zones", s.zones.map((z) => [
      [z.name], [String(z.serial), "num"], E.num(z.records), E.num(s.queries_by_zone[label(z.name)] || 0),
    ]), 4, "No zones.");
    E.totals("dns-totals", Object.entries(s.queries).filter(([, v]) => v > 0).map(([k, v]) => [k, E.count(v)]));
    rcodes.push(s.time, s.queries);
    // Every zone is drawn, quiet ones too (read when the chart is built).
    zones.main = Object.keys(s.queries_by_zone);
    zones.push(s.time, s.queries_by_zone);
  });

  E.section("dns", "dns-names", (s) => {
    const top = s.top_names;
    E.$("dns-sample-every").textContent = top.sample_every.toLocaleString("en");
    E.$("dns-sample-rate").textContent = String(top.samples_per_second);
    E.$("dns-half-life").textContent = top.half_life_seconds === 60 ? "minute" : E.duration(top.half_life_seconds);
    E.fill("top-names", top.names.map((n) => [[n.name], [n.type], [n.zone], E.num(n.estimate)]), 4,
      "No names sampled yet.");
  });

  E.section("dns", "dns-routed", (s) => {
    const key = (r) => [r.zone, r.name, r.policy, r.set_id].join("\u0000");
    const perName = {};
    for (const r of s.routed) perName[r.name] = (perName[r.name] || 0) + r.answers;
    const rows = s.routed.map((r) => {
      const before = lastRouted && lastRouted.counts[key(r)];
      const dt = lastRouted ? s.time - lastRouted.time : 0;
      const rate = before == null || dt <= 0 ? "–" : (Math.max(0, r.answers - before) / dt).toFixed(2);
      return [[r.name], [r.policy], [r.set_id], E.num(r.answers), [percent(r.answers, perName[r.name]), "num"], [rate, "num"]];
    });
    E.fill("routed", rows, 6, "No routed record sets.");
    lastRouted = { time: s.time, counts: Object.fromEntries(s.routed.map((r) => [key(r), r.answers])) };
  });

  E.section("dns", "dns-health", (s) => {
    E.fill("checks", s.health_checks.map((c) => [
      [c.id], [c.type], [c.target],
      c.healthy ? ["healthy", "ok"] : ["unhealthy", "bad"],
      [c.last_result ? c.last_result + ", " + E.ago(c.last_checked, s.time) : "not probed yet"],
      c.latency_ms == null ? ["–", "num"] : [c.latency_ms.toFixed(1) + " ms", "num"],
    ]), 6, "No health checks.");
    E.fill("flips", s.health_flips.map((f) => [
      [f.id],
      f.healthy ? ["healthy", "ok"] : ["unhealthy", "bad"],
      [E.ago(f.time, s.time)],
      [f.reason || (f.healthy ? "recovered" : "–"), "reason"],
    ]), 4, "No changes since the server started.");
    // The "when" cells as <time> elements, the absolute time in their title.
    s.health_flips.forEach((f, i) => {
      const cell = E.$("flips").tBodies[0].rows[i].cells[2];
      const time = document.createElement("time");
      const at = new Date(f.time * 1000);
      time.dateTime = at.toISOString();
      time.title = at.toLocaleString();
      time.textContent = cell.textContent;
      cell.replaceChildren(time);
    });
  });
})();
