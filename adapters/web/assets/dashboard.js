// Krake dashboard: keeps the inbox rows and the open thread's status current as the chat
// widget's socket reports changes (event "krake:thread"). Text is set with textContent only.
(function () {
  "use strict";
  function cell(text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }
  document.addEventListener("krake:thread", function (ev) {
    var t = ev.detail;
    var rows = document.querySelectorAll('[data-thread="' + String(Number(t.id)) + '"]');
    rows.forEach(function (row) {
      var st = row.querySelector(".status");
      if (st) { st.textContent = t.status; st.setAttribute("data-status", t.status); }
      var ti = row.querySelector(".title");
      if (ti && row.tagName === "TR") ti.textContent = t.title;
    });
    var table = document.querySelector("#inbox tbody");
    if (rows.length === 0 && table && !location.search) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-thread", String(Number(t.id)));
      var a = document.createElement("a");
      a.href = "/threads/" + Number(t.id);
      a.textContent = "#" + Number(t.id);
      var first = document.createElement("td");
      first.appendChild(a);
      tr.appendChild(first);
      tr.appendChild(cell(t.workspace));
      tr.appendChild(cell(t.kind));
      var st = cell(t.status, "status");
      st.setAttribute("data-status", t.status);
      tr.appendChild(st);
      tr.appendChild(cell(t.title, "title"));
      table.insertBefore(tr, table.firstChild);
    }
  });

  // Runs: the list and a run's page follow /api/v1/runs (with the session) while open.
  var ENDED = ["done", "rejected", "escalated", "failed", "refused", "expired", "cancelled"];
  function setStatus(el, status) {
    if (!el) return;
    el.textContent = status;
    el.setAttribute("data-status", status);
  }
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
