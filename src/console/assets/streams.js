// The streams section of the console: the stream log this edgewise-cdn process runs.
"use strict";
(function () {
  const E = window.Edgewise;

  E.section("cdn", "streams", (s) => {
    E.fill("stream-list", (s.streams || []).map((st) => [
      [st.name], E.num(st.shards), [E.duration(st.retention_seconds)],
    ]), 3, "No stream log in this process.");
  });
})();
