// The DNS sections of the console: queries per second by response code, the zones served
// and the health checks.
"use strict";
(function () {
  const E = window.Edgewise;
  const rcodes = new E.RateChart("dns-chart", {
    title: "Queries per second by response code",
    unit: "queries/s",
    main: ["NOERROR", "NXDOMAIN", "REFUSED"],
  });

  E.section("dns", "dns", (s) => {
    E.fill("zones", s.zones.map((z) => [[z.name], [String(z.serial), "num"], E.num(z.records)]), 3, "No zones.");
    E.fill("checks", s.health_checks.map((c) => [
      [c.id], [c.type], [c.target],
      c.healthy ? ["healthy", "ok"] : ["unhealthy", "bad"],
      [c.last_result ? c.last_result + ", " + E.ago(c.last_checked, s.time) : "not probed yet"],
      c.latency_ms == null ? ["–", "num"] : [c.latency_ms.toFixed(1) + " ms", "num"],
    ]), 6, "No health checks.");
    E.totals("dns-totals", Object.entries(s.queries).filter(([, v]) => v > 0).map(([k, v]) => [k, E.count(v)]));
    rcodes.push(s.time, s.queries);
  });
})();
