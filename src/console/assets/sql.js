// The console's SQL editor (edgewise-cdn with [analytics]): pick a stream, see its columns
// (as an input declares them, or as discovery proposes them) and latest rows, write SQL with
// highlighting or start from KDA's templates, run one-shot queries (again every 5 s if asked),
// and save continuous SQL as an application, whose output rows then show as they come. All
// through /console/api/analytics/, the analytics API behind this listener's access rule.
"use strict";
(function () {
  const E = window.Edgewise;
  const $ = E.$;
  const API = "/console/api/analytics/";
  const AUTO_MS = 5000;
  const META = ["ROWTIME", "APPROXIMATE_ARRIVAL_TIME", "partition_key", "sequence_number", "shard_id"];
  const KEYWORDS = new Set((
    "select stream from where group by order having limit offset as and or not in is null like " +
    "similar to between case when then else end create replace pump insert into window partition " +
    "range rows preceding following current row over join left right inner outer on distinct " +
    "cast interval second minute hour day step floor table cursor union all with true false " +
    "asc desc count sum avg min max timestamp varchar integer bigint double real boolean decimal"
  ).split(" "));
  let tables = [];
  let timer = null;

  // -- highlighting: the textarea is transparent over a <pre> holding the same text in spans.
  const TOKEN = /(--[^\n]*|\/\*[\s\S]*?(?:\*\/|$))|('(?:[^']|'')*'?)|("(?:[^"]|"")*"?)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)|([\s\S])/g;

  function highlight() {
    const text = $("sql-text").value;
    const out = document.createDocumentFragment();
    let plain = "";
    const flush = () => { if (plain) { out.appendChild(document.createTextNode(plain)); plain = ""; } };
    const span = (cls, t) => { flush(); const s = document.createElement("span"); s.className = cls; s.textContent = t; out.appendChild(s); };
    for (const m of text.matchAll(TOKEN)) {
      if (m[1]) span("tok-cmt", m[1]);
      else if (m[2]) span("tok-str", m[2]);
      else if (m[3]) span("tok-id", m[3]);
      else if (m[4]) span("tok-num", m[4]);
      else if (m[5] && KEYWORDS.has(m[5].toLowerCase())) span("tok-kw", m[5]);
      else plain += m[0];
    }
    flush();
    // A last newline needs a character after it to take up its line in the <pre>.
    out.appendChild(document.createTextNode("\n"));
    $("sql-highlight").replaceChildren(out);
  }

  // -- requests
  async function api(path, body, method) {
    const options = body === undefined ? {} : {
      method: method || "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    };
    const response = await E.call(API + path, options);
    let answer = null;
    try { answer = await response.json(); } catch (e) { answer = { error: "not JSON: " + e }; }
    return { ok: response.ok, status: response.status, answer };
  }

  const status = (text, bad) => { $("sql-status").textContent = text; $("sql-status").className = "note" + (bad ? " bad" : ""); };

  // Fills table `id` (thead and tbody) with `columns` (names) and `rows` (objects).
  function grid(id, columns, rows, empty) {
    const table = $(id);
    const head = document.createElement("thead");
    const tr = head.insertRow();
    for (const c of columns) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = c;
      tr.appendChild(th);
    }
    table.tHead.replaceWith(head);
    E.fill(id, rows.map((r) => columns.map((c) => {
      const v = r[c];
      return [v == null ? "NULL" : typeof v === "object" ? JSON.stringify(v) : String(v), typeof v === "number" ? "num" : ""];
    })), Math.max(1, columns.length), empty);
  }

  const quoted = (name) => '"' + name.replace(/"/g, '""') + '"';
  const table = () => tables.find((t) => t.name === $("sql-stream").value);
  const userColumns = () => (table() ? table().columns.filter((c) => !META.includes(c.name)) : []);

  // An Arrow type name as the SQL type a CREATE STREAM declares.
  function sqlType(arrow) {
    const decimal = /^Decimal128\((\d+), ?(-?\d+)\)$/.exec(arrow);
    if (decimal) return "DECIMAL(" + decimal[1] + "," + decimal[2] + ")";
    if (arrow.startsWith("Timestamp")) return "TIMESTAMP";
    return ({ Utf8: "VARCHAR(64)", Int8: "TINYINT", Int16: "SMALLINT", Int32: "INTEGER", Int64: "BIGINT",
      Float32: "REAL", Float64: "DOUBLE", Boolean: "BOOLEAN", Date32: "DATE" })[arrow] || "VARCHAR(64)";
  }

  // KDA's templates, written for the chosen stream's columns.
  function template(kind) {
    const stream = $("sql-stream").value;
    const cols = userColumns();
    const key = cols.find((c) => c.type === "Utf8") || cols[0] || { name: "data", type: "Utf8" };
    const value = cols.find((c) => /^(Int|Float|Decimal)/.test(c.type));
    const src = '"SOURCE_SQL_STREAM_001"';
    const dest = (columns) => 'CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (' + columns + ");\n" +
      'CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"\n';
    const k = quoted(key.name), kt = sqlType(key.type);
    switch (kind) {
      case "query":
        return "SELECT * FROM " + quoted(stream) + "\nWHERE ROWTIME > now() - INTERVAL '5 minutes'\nORDER BY ROWTIME DESC\nLIMIT 100";
      case "filter": {
        const picked = cols.slice(0, 4);
        const list = picked.length ? picked : [key];
        return "-- Continuous filter: the rows that match, as they come.\n" +
          dest(list.map((c) => quoted(c.name) + " " + sqlType(c.type)).join(", ")) +
          "  SELECT STREAM " + list.map((c) => quoted(c.name)).join(", ") + "\n  FROM " + src + "\n  WHERE " + k + " IS NOT NULL;";
      }
      case "tumbling":
        return "-- Aggregate function in a tumbling window: a count per key every minute.\n" +
          dest(k + " " + kt + ", requests BIGINT") +
          "  SELECT STREAM " + k + ", COUNT(*)\n  FROM " + src + "\n  GROUP BY " + k + ",\n           STEP(" + src + ".ROWTIME BY INTERVAL '60' SECOND);";
      case "topk":
        return "-- Top-K items: the 10 most frequent values of a column every minute.\n" +
          dest(k + " " + kt + ", item_count BIGINT") +
          "  SELECT STREAM * FROM TABLE(TOP_K_ITEMS_TUMBLING(\n    CURSOR(SELECT STREAM * FROM " + src + "),\n    '" + key.name + "', 10, 60));";
      case "distinct":
        return "-- Count distinct: how many different values a column had each minute (HyperLogLog).\n" +
          dest("number_of_distinct_items BIGINT") +
          "  SELECT STREAM * FROM TABLE(COUNT_DISTINCT_ITEMS_TUMBLING(\n    CURSOR(SELECT STREAM * FROM " + src + "),\n    '" + key.name + "', 60));";
      case "sliding": {
        const measure = value ? "AVG(" + quoted(value.name) + ") OVER W" : "COUNT(*) OVER W";
        return "-- Sliding window: with each row, the same key's rows of the minute before it.\n" +
          dest(k + " " + kt + ", " + (value ? "avg_last_minute DOUBLE" : "last_minute BIGINT")) +
          "  SELECT STREAM " + k + ", " + measure + "\n  FROM " + src + "\n  WINDOW W AS (PARTITION BY " + k + " RANGE INTERVAL '1' MINUTE PRECEDING);";
      }
      default:
        return null;
    }
  }

  const continuous = (sql) => /^\s*(--[^\n]*\n\s*|\/\*[\s\S]*?\*\/\s*)*create\b/i.test(sql);

  // -- actions
  async function showColumns(columns) {
    E.fill("sql-columns", columns.map((c) => [[c.name], [c.type], [c.path || ""]]), 3, "No columns.");
  }

  async function pickStream() {
    const t = table();
    if (!t) return;
    await showColumns(t.columns);
    const { ok, answer } = await api("query", {
      sql: "SELECT * FROM " + quoted(t.name) + " ORDER BY ROWTIME DESC LIMIT 10",
    });
    // Another stream may have been picked while this one's rows were on their way.
    if (table() !== t) return;
    if (ok) grid("sql-sample", answer.columns.map((c) => c.name), answer.rows, "No records yet.");
    else status(answer.error || "the latest rows could not be read", true);
  }

  async function discover() {
    const stream = $("sql-stream").value;
    const { ok, answer } = await api("discover", { stream });
    if (!ok) { status(answer.error || "discovery failed", true); return; }
    await showColumns(answer.columns);
    status("Proposed from " + answer.records_read + " records (" + answer.not_fitting + " do not fit), as " +
      answer.format + ". The input that reads them this way:\n" + answer.toml);
  }

  async function run(sql) {
    if (continuous(sql)) {
      status("This is continuous SQL: save it as an application to run it; its output stream's rows then show here.");
      return;
    }
    $("sql-run").disabled = true;
    try {
      const started = performance.now();
      const { ok, answer } = await api("query", { sql });
      if (!ok) { status(answer.error || "the query failed", true); return; }
      grid("sql-results", answer.columns.map((c) => c.name), answer.rows, "No rows.");
      status(answer.row_count + " rows" + (answer.truncated ? " (cut at the row limit)" : "") +
        " in " + Math.round(performance.now() - started) + " ms, at " + new Date().toLocaleTimeString() + ".");
    } finally {
      $("sql-run").disabled = false;
    }
  }

  // What Run and the timer run: the editor's SQL, or after a save the output stream's rows.
  let watching = null;
  const current = () => watching || $("sql-text").value;

  function schedule() {
    clearTimeout(timer);
    if ($("sql-auto").checked) timer = setTimeout(async () => { await run(current()); schedule(); }, AUTO_MS);
  }

  async function save() {
    const name = $("sql-app-name").value.trim();
    const stream = $("sql-app-to").value;
    const definition = {
      inputs: [$("sql-stream").value],
      sql: $("sql-text").value,
      outputs: [{ sql_stream: $("sql-app-from").value.trim(), stream }],
    };
    if (!name) { status("Name the application first.", true); return; }
    const { ok, answer } = await api("applications/" + encodeURIComponent(name), definition, "PUT");
    if (!ok) { status(answer.error || "not saved", true); return; }
    watching = "SELECT * FROM " + quoted(stream) + " ORDER BY ROWTIME DESC LIMIT 20";
    $("sql-auto").checked = true;
    status("Saved " + name + "; its rows on " + stream + " show below as they come.");
    await listApps();
    await run(watching);
    schedule();
  }

  async function listApps() {
    const { ok, status: code, answer } = await api("applications");
    if (!ok) {
      E.fill("sql-apps", [], 6, code === 404 ? "Applications are not available." : "Could not list applications.");
      return;
    }
    E.fill("sql-apps", answer.applications.map((a) => [
      [a.name], [a.inputs.join(", ")], [a.outputs.map((o) => o.sql_stream + " → " + o.stream).join(", ")],
      [a.origin === "config" ? "config file" : "API"],
      [a.status, a.status === "running" ? "ok" : a.status.startsWith("failed") ? "bad" : ""],
      [a.origin === "config" ? "" : "delete"],
    ]), 6, "No applications.");
    // The action cells of API-made applications become buttons.
    for (const row of $("sql-apps").tBodies[0].rows) {
      const cell = row.cells[row.cells.length - 1];
      if (cell.textContent !== "delete") continue;
      const name = row.cells[0].textContent;
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Delete";
      button.setAttribute("aria-label", "Delete application " + name);
      button.addEventListener("click", async () => {
        const { ok: deleted, answer: why } = await api("applications/" + encodeURIComponent(name), {}, "DELETE");
        status(deleted ? "Deleted " + name + "." : why.error || "not deleted", !deleted);
        await listApps();
      });
      cell.replaceChildren(button);
    }
  }

  function offer(select, values) {
    const chosen = select.value;
    select.replaceChildren(...values.map((v) => new Option(v, v)));
    if (values.includes(chosen)) select.value = chosen;
  }

  async function start() {
    const { ok, answer } = await api("tables");
    if (!ok) { status(answer.error || "the streams could not be listed", true); return; }
    tables = answer.tables;
    const names = tables.map((t) => t.name);
    offer($("sql-stream"), names.filter((n) => !n.endsWith("_errors")));
    offer($("sql-app-to"), names);
    highlight();
    await pickStream();
    await listApps();
    setInterval(listApps, 10000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("sql-text").addEventListener("input", () => { watching = null; highlight(); });
    $("sql-stream").addEventListener("change", pickStream);
    $("sql-discover").addEventListener("click", discover);
    $("sql-template").addEventListener("change", (e) => {
      const text = template(e.target.value);
      if (text !== null) { $("sql-text").value = text; watching = null; highlight(); }
      e.target.value = "";
    });
    $("sql-run").addEventListener("click", () => { watching = null; run(current()).then(schedule); });
    // Ctrl+Enter (⌘+Enter on a Mac) in the editor runs it, as in other SQL consoles.
    $("sql-text").addEventListener("keydown", (e) => {
      if (e.key !== "Enter" || !(e.ctrlKey || e.metaKey)) return;
      e.preventDefault();
      if (!$("sql-run").disabled) $("sql-run").click();
    });
    $("sql-auto").addEventListener("change", schedule);
    $("sql-save").addEventListener("click", save);
  });

  // Shown, and started once, when the summary says this process runs [analytics].
  let started = false;
  E.section("cdn", "sql", (s) => {
    $("sql").hidden = !s.analytics;
    if (s.analytics && !started) {
      started = true;
      start();
    }
  });
})();
