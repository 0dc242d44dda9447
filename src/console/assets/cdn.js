// The CDN sections of the console: requests per second by result, the distributions and the
// cache.
"use strict";
(function () {
  const E = window.Edgewise;
  const results = new E.RateChart("cdn-chart", {
    title: "Requests per second by result",
    unit: "requests/s",
    main: ["Hit", "Miss", "Error"],
  });

  E.section("cdn", "cdn", (s) => {
    E.fill("distributions", s.distributions.map((d) => [
      [d.id], [d.hosts.join(", ")], E.num(d.behaviors), E.num(d.requests),
    ]), 4, "No distributions.");
    const counted = Object.entries(s.requests).filter(([, v]) => v > 0).map(([k, v]) => [k, E.count(v)]);
    E.totals("cdn-totals", counted.concat([
      ["cached objects", E.count(s.cache.objects)],
      ["cache size", E.bytes(s.cache.bytes)],
    ]));
    results.push(s.time, s.requests);
  });
})();
