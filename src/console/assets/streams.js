// The streams section of the console: the stream log this edgewise-cdn process runs (records
// and bytes in per second, shards, retention), its deliveries to files with their lag, and a
// record browser showing the latest records of one shard (from /console/api/records; data
// decoded here: pretty JSON, UTF-8 text, or hex).
"use strict";
(function () {
  const E = window.Edgewise;
  const $ = E.$;
  const MAX_LIMIT = 100;
  const HEX_BYTES = 256;

  const records = new E.RateChart("streams-chart", { title: "Records in per second", unit: "records/s" });
  const bytesIn = new E.RateChart("streams-bytes-chart", {
    title: "Bytes in per second",
    unit: "KiB/s",
    derive: (r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v / 1024])),
  });

  const rate = (v, fmt) => [v == null ? "–" : fmt(v), "num"];
  const lag = (ms) => [ms === 0 ? "caught up" : E.count(ms) + " ms", ms === 0 ? "num ok" : "num"];
  const shardId = (i) => "shardId-" + String(i).padStart(12, "0");
  let streams = [];

  E.section("cdn", "streams", (s) => {
    streams = s.streams || [];
    const names = streams.map((st) => st.name);
    // Every stream drawn, idle ones too: the chart is the place to see one go quiet.
    records.main = bytesIn.main = names;
    records.push(s.time, Object.fromEntries(streams.map((st) => [st.name, st.records_in])));
    bytesIn.push(s.time, Object.fromEntries(streams.map((st) => [st.name, st.bytes_in])));
    E.fill("stream-list", streams.map((st) => [
      [st.name], E.num(st.shards), [E.duration(st.retention_seconds)],
      rate(records.latest(st.name), (v) => v.toFixed(1)),
      rate(bytesIn.latest(st.name), (v) => E.bytes(Math.round(v * 1024)) + "/s"),
      E.num(st.records_in), E.num(st.retained),
      [st.latest_arrival_ms == null ? "never" : E.ago(st.latest_arrival_ms / 1000, s.time)],
    ]), 8, "No stream log in this process.");
    E.fill("delivery-list", streams.flatMap((st) => st.deliveries.map((d) => [
      [st.name], [d.dir, "path"], lag(d.millis_behind), E.num(d.files), E.num(d.records),
      [E.count(d.failures), d.failures ? "num bad" : "num"], E.num(d.expired),
    ])), 7, "No deliveries configured.");
    offerStreams(names);
  });

  // Replaces the options of `select` with `values` unless they are the same, keeping the
  // choice when it is still offered.
  function offer(select, values) {
    const current = Array.from(select.options, (o) => o.value);
    if (current.length === values.length && current.every((v, i) => v === values[i])) return false;
    const chosen = select.value;
    select.replaceChildren(...values.map((v) => new Option(v, v)));
    if (values.includes(chosen)) select.value = chosen;
    return true;
  }

  function offerShards() {
    const st = streams.find((x) => x.name === $("records-stream").value);
    return offer($("records-shard"), st ? Array.from({ length: st.shards }, (_, i) => shardId(i)) : []);
  }

  function offerStreams(names) {
    const first = $("records-stream").options.length === 0;
    offer($("records-stream"), names);
    offerShards();
    if (first && names.length) load();
  }

  function limit() {
    const input = $("records-limit");
    const n = Math.min(MAX_LIMIT, Math.max(1, Math.round(Number(input.value)) || 20));
    input.value = n;
    return n;
  }

  let loading = null;
  async function load() {
    const stream = $("records-stream").value, shard = $("records-shard").value;
    if (!stream || !shard) return;
    const query = new URLSearchParams({ stream, shard, limit: limit() });
    const list = $("records"), status = $("records-status");
    if (loading) loading.abort();
    loading = new AbortController();
    list.setAttribute("aria-busy", "true");
    status.textContent = "Loading the latest records of " + stream + " / " + shard + "…";
    try {
      const response = await E.call("/console/api/records?" + query, { signal: loading.signal });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        status.textContent = "Could not read records (" + response.status + "): " + (body.message || "no reason given") + ".";
        list.replaceChildren();
        return;
      }
      show(body);
    } catch (e) {
      if (e.name !== "AbortError") status.textContent = "Cannot reach the server: " + e.message;
    } finally {
      list.removeAttribute("aria-busy");
    }
  }

  function show(body) {
    const list = $("records");
    const items = body.records.slice().reverse().map(item);
    list.replaceChildren(...items);
    const n = body.records.length;
    $("records-status").textContent = (n === 0
      ? "No records retained in " + body.stream + " / " + body.shard + "."
      : "The latest " + n + " record" + (n === 1 ? "" : "s") + " of " + body.stream + " / " + body.shard
        + ", newest first (offsets " + E.count(body.records[0].offset) + " to " + E.count(body.records[n - 1].offset) + ").")
      + (body.error ? " Reading stopped early: " + body.error : "");
  }

  // One record: its metadata, then its data as pretty JSON, text or hex.
  function item(r) {
    const li = document.createElement("li");
    li.className = "record";
    const meta = document.createElement("dl");
    meta.className = "record-meta";
    const data = decode(r);
    for (const [k, v] of [
      ["Sequence number", r.sequence_number],
      ["Arrived", new Date(r.arrival_ms).toLocaleString()],
      ["Partition key", r.partition_key],
      ["Size", E.bytes(r.size) + (data.cut ? " (first " + E.bytes(data.shown) + " shown)" : "")],
      ["Data", data.kind],
    ]) {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = k;
      dd.textContent = v;
      div.append(dt, dd);
      meta.appendChild(div);
    }
    const pre = document.createElement("pre");
    pre.className = "record-data";
    pre.dataset.format = data.format;
    pre.tabIndex = 0;
    pre.setAttribute("aria-label", "Data of record " + r.sequence_number + ", " + data.kind);
    pre.textContent = data.text;
    li.append(meta, pre);
    return li;
  }

  // {format, kind, text, shown, cut}: JSON (an object or array, whole) pretty-printed, else
  // UTF-8 text without control characters, else hex of the first bytes.
  function decode(r) {
    const raw = atob(r.data);
    const bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0));
    const cut = bytes.length < r.size;
    const base = { shown: bytes.length, cut };
    let text = null;
    try {
      // A cut record may end inside a character: `stream` leaves that tail undecoded.
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes, { stream: cut });
    } catch (e) {
      text = null;
    }
    if (text !== null && !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) {
      if (!cut && /^\s*[[{]/.test(text)) {
        try {
          return { ...base, format: "json", kind: "JSON", text: JSON.stringify(JSON.parse(text), null, 2) };
        } catch (e) { /* not JSON after all: shown as text */ }
      }
      return { ...base, format: "text", kind: "Text (UTF-8)", text: cut ? text + "…" : text };
    }
    return { ...base, format: "hex", kind: "Binary, hex of the first " + Math.min(bytes.length, HEX_BYTES) + " bytes", text: hex(bytes.subarray(0, HEX_BYTES)) };
  }

  // 16 bytes a line: offset, hex, printable ASCII.
  function hex(bytes) {
    const lines = [];
    for (let i = 0; i < bytes.length; i += 16) {
      const row = Array.from(bytes.subarray(i, i + 16));
      lines.push(i.toString(16).padStart(4, "0") + "  "
        + row.map((b) => b.toString(16).padStart(2, "0")).join(" ").padEnd(47) + "  "
        + row.map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join(""));
    }
    return lines.join("\n");
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("records-stream").addEventListener("change", () => { offerShards(); load(); });
    $("records-shard").addEventListener("change", load);
    $("records-form").addEventListener("submit", (e) => { e.preventDefault(); load(); });
  });
})();
