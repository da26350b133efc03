// Krake dashboard: keeps the inbox and the open thread's status current as the chat widget's
// socket reports changes (event "krake:thread"), and adds threads that arrive while the inbox
// is open when they match its filters. Only the dashboard's own elements are touched (the
// widget's log lines carry data-thread too). Text is set with textContent only.
(function () {
  "use strict";
  function cell(text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }
  function link(href, text) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }
  function setStatus(el, status) {
    if (!el) return;
    el.textContent = status;
    el.setAttribute("data-status", status);
  }
  // Whether thread t belongs in the inbox table as filtered (data-workspace, -kind, -status).
  function matches(table, t) {
    if (table.hasAttribute("data-paged")) return false;
    var ws = table.getAttribute("data-workspace") || "";
    var kind = table.getAttribute("data-kind") || "";
    var status = table.getAttribute("data-status") || "";
    if (ws && ws !== t.workspace) return false;
    if (kind && kind !== t.kind) return false;
    if (status === "all" || status === "") return t.status !== "archived";
    return status === t.status;
  }
  function addRow(body, t) {
    var id = String(Number(t.id));
    var tr = document.createElement("tr");
    tr.setAttribute("data-thread", id);
    tr.className = "new";
    var first = document.createElement("td");
    first.className = "id";
    first.appendChild(link("/threads/" + id, "#" + id));
    tr.appendChild(first);
    var title = document.createElement("td");
    title.className = "title";
    title.appendChild(link("/threads/" + id, t.title));
    tr.appendChild(title);
    tr.appendChild(cell(t.workspace, "ws"));
    tr.appendChild(cell(t.kind, "kind"));
    var st = cell(t.status, "status");
    st.setAttribute("data-status", t.status);
    tr.appendChild(st);
    var age = document.createElement("td");
    age.className = "age";
    var time = document.createElement("time");
    var now = new Date();
    time.setAttribute("datetime", now.toISOString());
    time.setAttribute("title", now.toISOString().slice(0, 16).replace("T", " ") + " UTC");
    time.textContent = "just now";
    age.appendChild(time);
    tr.appendChild(age);
    body.insertBefore(tr, body.firstChild);
  }
  // The open counts above the inbox: `delta` more open threads in workspace ws.
  function countOpen(ws, delta) {
    var total = document.querySelector("#open-counts [data-open]");
    if (!total) return;
    var n = Math.max(0, Number(total.getAttribute("data-open")) + delta);
    total.setAttribute("data-open", String(n));
    total.textContent = String(n);
    var w = Array.from(document.querySelectorAll("#open-counts [data-open-workspace]"))
      .filter(function (a) { return a.getAttribute("data-open-workspace") === ws; })[0];
    if (w) {
      var m = Math.max(0, Number(w.textContent.split(" ").pop()) + delta);
      w.textContent = ws + " " + m;
    }
  }
  document.addEventListener("krake:thread", function (ev) {
    var t = ev.detail;
    var id = String(Number(t.id));
    var table = document.getElementById("inbox");
    var body = table && table.querySelector("tbody");
    var row = body && body.querySelector('tr[data-thread="' + id + '"]');
    if (row) {
      var cell = row.querySelector(".status");
      var was = cell ? (cell.getAttribute("data-status") || cell.textContent.trim()) : t.status;
      setStatus(cell, t.status);
      // Decided, archived or unarchived: the open counts follow.
      if (was === "open" && t.status !== "open") countOpen(t.workspace, -1);
      if (was !== "open" && t.status === "open") countOpen(t.workspace, 1);
      var ti = row.querySelector(".title a") || row.querySelector(".title");
      if (ti) ti.textContent = t.title;
    } else if (body && matches(table, t)) {
      addRow(body, t);
      table.hidden = false;
      var empty = document.getElementById("inbox-empty");
      if (empty) empty.remove();
      if (t.status === "open") countOpen(t.workspace, 1);
    }
    // The open thread's page: its status, and a note when someone else changed it.
    var article = document.querySelector('article[data-thread="' + id + '"]');
    if (article) {
      setStatus(article.querySelector(".status"), t.status);
      var shown = Number(article.getAttribute("data-version"));
      if (Number(t.version) > shown && !document.getElementById("changed")) {
        var p = document.createElement("p");
        p.id = "changed";
        p.className = "flash warn";
        p.setAttribute("role", "status");
        p.appendChild(document.createTextNode("#" + id + " changed: it is " + t.status +
          (t.decided_by ? " (by " + t.decided_by + ")" : "") + " now. "));
        p.appendChild(link(location.pathname, "Reload to see it"));
        article.parentNode.insertBefore(p, article);
      }
    }
  });

  // Runs: the list and a run's page follow /api/v1/runs (with the session) while open.
  var ENDED = ["done", "rejected", "escalated", "failed", "refused", "expired", "cancelled"];
  function getJson(url, then) {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (v) { if (v) then(v); })
      .catch(function () {});
  }
  var list = document.querySelector("[data-live-runs] tbody");
  if (list && location.search.indexOf("before=") < 0) {
    setInterval(function () {
      getJson("/api/v1/runs" + location.search, function (page) {
        page.runs.slice().reverse().forEach(function (r) {
          var id = String(Number(r.id));
          var row = list.querySelector('[data-run="' + id + '"]');
          if (row) { setStatus(row.querySelector(".status"), r.status); return; }
          var first = list.querySelector("[data-run]");
          if (first && Number(first.getAttribute("data-run")) > Number(r.id)) return;
          var tr = document.createElement("tr");
          tr.setAttribute("data-run", id);
          var a = document.createElement("a");
          a.href = "/runs/" + id;
          a.textContent = "run " + id;
          var td = document.createElement("td");
          td.appendChild(a);
          tr.appendChild(td);
          tr.appendChild(cell(r.agent));
          tr.appendChild(cell(r.workspace));
          var st = cell(r.status, "status");
          st.setAttribute("data-status", r.status);
          tr.appendChild(st);
          tr.appendChild(cell(r.task, "title"));
          list.insertBefore(tr, list.firstChild);
          var empty = document.querySelector("p.empty");
          if (empty) empty.remove();
        });
      });
    }, 3000);
  }
  var steps = document.querySelector("[data-live-run]");
  if (steps) {
    var runId = String(Number(steps.getAttribute("data-live-run")));
    var timer = setInterval(function () {
      getJson("/api/v1/runs/" + runId, function (r) {
        setStatus(document.getElementById("run-status"), r.status);
        var put = function (id, v) { var el = document.getElementById(id); if (el) el.textContent = String(v); };
        put("run-calls", r.model_calls);
        put("run-in", r.input_tokens);
        put("run-out", r.output_tokens);
        var usd = r.cost_micros / 1e6;
        put("run-cost", "$" + usd.toFixed(usd !== 0 && Math.abs(usd) < 0.01 ? 4 : 2));
        var shown = Number(steps.getAttribute("data-steps"));
        var body = steps.querySelector("tbody");
        r.steps.slice(shown).forEach(function (s) {
          var tr = document.createElement("tr");
          tr.appendChild(cell(new Date(s.at).toISOString().slice(11, 16)));
          tr.appendChild(cell(s.kind));
          tr.appendChild(cell(s.detail, "title"));
          body.appendChild(tr);
        });
        steps.setAttribute("data-steps", String(r.steps.length));
        if (ENDED.indexOf(r.status) >= 0) {
          var form = document.getElementById("run-cancel");
          if (form) form.remove();
          clearInterval(timer);
        }
      });
    }, 2000);
  }
})();
