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
})();
