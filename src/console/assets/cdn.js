// The CDN sections of the console: requests per second by result and the cache hit ratio,
// the distributions with their status classes, bytes out and the origins' latency, the
// cache's fill, the top objects and countries of the latest real-time log records, and the
// invalidation form.
"use strict";
(function () {
  const E = window.Edgewise;
  const $ = E.$;
  const CLASSES = ["2xx", "3xx", "4xx", "5xx"];

  const results = new E.RateChart("cdn-chart", {
    title: "Requests per second by result",
    unit: "requests/s",
    main: ["Hit", "Miss", "Error"],
  });
  // Pushed as {"Hit ratio": Hit + RefreshHit, "Miss ratio": Miss}: the responses the cache
  // could answer, each drawn as its share of them.
  const ratio = new E.RateChart("cdn-ratio-chart", {
    title: "Cache hit ratio",
    unit: "%",
    main: ["Hit ratio"],
    range: [0, 100],
    derive: (r) => {
      const all = (r["Hit ratio"] || 0) + (r["Miss ratio"] || 0);
      if (all === 0) return {};
      return { "Hit ratio": 100 * r["Hit ratio"] / all, "Miss ratio": 100 * r["Miss ratio"] / all };
    },
  });
  const bytesOut = new E.RateChart("cdn-bytes-chart", {
    title: "Bytes out per second by distribution",
    unit: "KiB/s",
    derive: (r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v / 1024])),
  });

  const percent = (n, of) => of > 0 ? (100 * n / of).toFixed(1) + " %" : "–";
  const ms = (seconds) => seconds == null ? ["–", "num"] : [(seconds * 1000).toFixed(1) + " ms", "num"];

  E.section("cdn", "cdn", (s) => {
    E.fill("distributions", s.distributions.map((d) => [
      [d.id], [d.hosts.join(", ")], E.num(d.behaviors), E.num(d.requests), [E.bytes(d.bytes_out), "num"],
    ]), 5, "No distributions.");
    const rows = s.distributions.map((d) => [d.id, d.status]);
    if (s.unrouted.requests > 0) rows.push(["(no distribution)", s.unrouted.status]);
    E.fill("cdn-status", rows.map(([id, status]) => [[id]].concat(CLASSES.map((c) =>
      [E.count(status[c] || 0), c === "5xx" && status[c] > 0 ? "num bad" : "num"]))),
    5, "No distributions.");
    const counted = Object.entries(s.requests).filter(([, v]) => v > 0).map(([k, v]) => [k, E.count(v)]);
    E.totals("cdn-totals", counted.concat([
      ["bytes out", E.bytes(s.bytes_out)],
      ["cached objects", E.count(s.cache.objects)],
      ["cache size", E.bytes(s.cache.bytes)],
    ]));
    results.push(s.time, s.requests);
    ratio.push(s.time, {
      "Hit ratio": (s.requests.Hit || 0) + (s.requests.RefreshHit || 0),
      "Miss ratio": s.requests.Miss || 0,
    });
  });

  // The origins' latency sums and counts at the previous poll, for the mean in between.
  let before = new Map();
  E.section("cdn", "cdn-traffic", (s) => {
    bytesOut.push(s.time, Object.fromEntries(s.distributions.map((d) => [d.id, d.bytes_out])));
    const now = new Map();
    E.fill("cdn-origins", s.origins.map((o) => {
      const key = o.distribution + "\n" + o.origin;
      const was = before.get(key);
      now.set(key, o.latency);
      const answered = was ? o.latency.count - was.count : 0;
      const mean = answered > 0 ? (o.latency.sum_seconds - was.sum_seconds) / answered : null;
      return [
        [o.distribution], [o.origin], E.num(o.requests),
        [E.count(o.errors), o.errors > 0 ? "num bad" : "num"],
        ms(mean), ms(o.latency.p50_seconds), ms(o.latency.p95_seconds),
      ];
    }), 7, "No origins.");
    before = now;
  });

  // A time ahead of `now` (Unix seconds) in days, hours or minutes.
  function until(at, now) {
    if (at == null) return "—";
    const s = at - now;
    if (s <= 0) return "now";
    if (s >= 2 * 86400) return "in " + Math.round(s / 86400) + " d";
    if (s >= 2 * 3600) return "in " + Math.round(s / 3600) + " h";
    return "in " + Math.max(1, Math.round(s / 60)) + " min";
  }

  E.section("cdn", "cdn-certs", (s) => {
    // Only a CDN with ACME certificates shows the section.
    $("cdn-certs").hidden = !s.certificates.length;
    E.fill("cdn-certs-table", s.certificates.map((c) => [
      [c.names.join(", ")],
      c.not_after == null ? ["not issued yet", "bad"] : [until(c.not_after, s.time)],
      [until(c.next_attempt, s.time)],
      E.num(c.issued),
      [E.count(c.failures), c.failures > 0 ? "num bad" : "num"],
      [c.last_error || ""],
    ]), 6, "No ACME certificates.");
  });

  E.section("cdn", "cdn-cache", (s) => {
    const c = s.cache;
    const meter = $("cache-meter");
    meter.max = Math.max(1, c.capacity_bytes);
    meter.value = Math.min(c.bytes, meter.max);
    meter.high = 0.9 * meter.max;
    $("cache-fill").textContent = E.bytes(c.bytes) + " of " + E.bytes(c.capacity_bytes) +
      " (" + percent(c.bytes, c.capacity_bytes) + ") in " + E.count(c.objects) +
      (c.objects === 1 ? " object; " : " objects; ") +
      E.count(c.evictions) + " evicted to make room";
  });

  // How to get the tables filled, by what is missing.
  const NEEDED = "fields including cs-uri-stem, c-country and primary-distribution-id (or cs-host)";
  function recentHelp(r) {
    if (r.state === "off") {
      return "Real-time logs are off. To see the top objects and countries here, add " +
        "[cdn.realtime_logs] with stream = a [[stream.streams]] of this process and " + NEEDED + ".";
    }
    if (r.state === "elsewhere") {
      return "The real-time log goes to stream " + r.stream + ", which this process's stream " +
        "log does not hold: configure it under [[stream.streams]] here to see its records.";
    }
    return null;
  }

  E.section("cdn", "cdn-recent", (s) => {
    const r = s.recent;
    const help = recentHelp(r);
    const lacking = (field) => "The real-time log's fields lack " + field +
      ": add it to [cdn.realtime_logs] fields.";
    const none = "No real-time log records yet.";
    const objects = help ? [] : (r.objects || []);
    const countries = help ? [] : (r.countries || []);
    E.fill("cdn-objects", objects.map((o) => [[o.path, "path"], [o.site], E.num(o.requests)]), 3,
      help || (r.objects ? none : lacking("cs-uri-stem")));
    E.fill("cdn-countries", countries.map((c) => [
      [c.country === "-" ? "unknown" : c.country], E.num(c.requests), [percent(c.requests, r.records), "num"],
    ]), 3, help || (r.countries ? none : lacking("c-country")));
    let note = help ? "" : "From the latest " + E.count(r.records) + " records of stream " + r.stream +
      " (" + r.sampling_percent + " % of requests sampled).";
    if (!help && r.errors.length) note += " Not read: " + r.errors.join("; ") + ".";
    $("cdn-recent-note").textContent = note;
  });

  // The distribution picker follows the config; the choice is kept while its id exists.
  E.section("cdn", "cdn-invalidate", (s) => {
    const select = $("invalidate-distribution");
    const ids = s.distributions.map((d) => d.id);
    const current = Array.from(select.options, (o) => o.value);
    if (ids.join("\n") === current.join("\n")) return;
    const chosen = select.value;
    select.replaceChildren(...ids.map((id) => new Option(id, id, false, id === chosen)));
  });

  function say(text, cls) {
    const out = $("invalidate-result");
    out.textContent = text;
    out.className = cls || "";
  }

  // Set while an invalidation waits for the token: once it is given, it goes ahead.
  let waiting = false;

  function needToken(text) {
    waiting = true;
    say(text, "bad");
    $("token").focus();
  }

  async function invalidate(event) {
    event.preventDefault();
    waiting = false;
    const distribution = $("invalidate-distribution").value;
    const paths = $("invalidate-paths").value.split("\n").map((p) => p.trim()).filter(Boolean);
    if (!distribution) return say("Choose a distribution.", "bad");
    // The server's rule, checked here so that a typo is explained before anything is sent.
    const bad = paths.find((p) => !p.startsWith("/") || p.slice(0, -1).includes("*"));
    if (!paths.length || bad !== undefined) {
      $("invalidate-paths").focus();
      return say(bad === undefined
        ? "Give at least one path, such as /index.html or /images/*."
        : bad + ": a path starts with / and may only end in *.", "bad");
    }
    // Actions always need the token: ask for it before sending anything.
    if (!E.token()) {
      E.askToken();
      return needToken("Invalidating needs the admin token: enter it above and the " +
        "invalidation goes ahead.");
    }
    const button = $("invalidate-submit");
    button.disabled = true;
    say("Invalidating " + paths.length + (paths.length === 1 ? " path…" : " paths…"));
    try {
      const response = await E.call("/invalidations", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ distribution, paths }),
      });
      const body = await response.json().catch(() => ({}));
      if (response.status === 401 || response.status === 403) {
        needToken("The server refused the token (" + response.status + "): enter the admin " +
          "token above and the invalidation goes ahead.");
      } else if (response.ok) {
        const n = body.invalidated;
        say("Invalidation " + body.id + " created: " + E.count(n) + " cached " +
          (n === 1 ? "object" : "objects") + " removed from " + distribution + ".", "ok");
      } else {
        say("Refused (" + response.status + "): " + (body.message || response.statusText), "bad");
      }
    } catch (e) {
      say("Cannot reach the server: " + e.message, "bad");
    } finally {
      button.disabled = false;
    }
  }

  // Deferred: the page is parsed when this runs.
  $("invalidate-form").addEventListener("submit", invalidate);
  // A turn later, once console.js's own handler of this submit has kept the token.
  $("token-form").addEventListener("submit", () => {
    if (waiting) setTimeout(() => $("invalidate-form").requestSubmit(), 0);
  });
})();
