// Krake web chat widget. Embed with
//   <script src="https://KRAKE/widget.js" data-workspace="lunavo" [data-token="krk_…"]></script>
// It opens a WebSocket to /ws/chat on the same Krake, sends what you type to Krake's command
// parser, shows replies with their buttons, shows inbox threads as they change, and after a
// dropped connection resumes from the last message it saw (every server message has a
// sequence number), so nothing is lost or shown twice. All text is set with textContent.
// With a workspace, an attach button uploads a file to its knowledge (POST
// /api/v1/workspaces/WS/knowledge with this chat's session), so "Learned …" shows here.
(function () {
  "use strict";
  var script = document.currentScript;
  var base = new URL(script.src, location.href);
  var workspace = script.getAttribute("data-workspace") || "";
  var token = script.getAttribute("data-token") || null;
  var wsUrl = (base.protocol === "https:" ? "wss://" : "ws://") + base.host + "/ws/chat";
  var storeKey = "krake-widget:" + base.host + ":" + workspace;
  var state = { session: null, last: 0, socket: null, retry: 250, counter: 0, pending: [], gaps: 0 };
  try {
    var saved = JSON.parse(sessionStorage.getItem(storeKey) || "null");
    if (saved) { state.session = saved.session; state.last = saved.last; }
  } catch (e) { /* no storage: start fresh */ }

  function save() {
    try { sessionStorage.setItem(storeKey, JSON.stringify({ session: state.session, last: state.last })); } catch (e) { }
  }

  // Styles go through the CSSOM: pages with a strict Content-Security-Policy (like Krake's
  // own) refuse style attributes.
  function css(e, text) { e.style.cssText = text; }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  var root = el("div", "krake-widget");
  css(root, "position:fixed;right:1rem;bottom:1rem;z-index:2147483000;font:14px/1.4 system-ui,sans-serif;color:#1d232b");
  var toggle = el("button", "krake-toggle", "Chat with Krake");
  toggle.setAttribute("type", "button");
  toggle.setAttribute("aria-expanded", "false");
  css(toggle, "padding:.5rem .8rem;border-radius:1rem;border:1px solid #1f5fbf;background:#1f5fbf;color:#fff;cursor:pointer");
  var panel = el("section", "krake-panel");
  panel.setAttribute("aria-label", "Krake chat");
  css(panel, "display:none;width:min(24rem,92vw);height:min(30rem,70vh);background:#fff;border:1px solid #d9dde2;border-radius:8px;box-shadow:0 4px 18px rgba(0,0,0,.15);flex-direction:column;margin-bottom:.5rem");
  var status = el("div", "krake-status", "connecting…");
  css(status, "padding:.3rem .6rem;border-bottom:1px solid #d9dde2;color:#5b6775;font-size:12px");
  var log = el("div", "krake-log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  css(log, "flex:1;overflow:auto;padding:.5rem");
  var form = el("form", "krake-form");
  css(form, "display:flex;gap:.3rem;padding:.4rem;border-top:1px solid #d9dde2");
  var input = el("input", "krake-input");
  input.setAttribute("aria-label", "Message to Krake");
  input.setAttribute("placeholder", "/todo, approve 12, …");
  css(input, "flex:1;padding:.35rem");
  var send = el("button", "krake-send", "Send");
  send.setAttribute("type", "submit");
  form.appendChild(input);
  // Attaching a file: a personal token, or the signed-in session on Krake's own pages (whose
  // forms carry the CSRF token).
  var csrfInput = base.host === location.host ? document.querySelector('input[name="csrf"]') : null;
  if (workspace && (token || csrfInput)) {
    var picker = el("input", "krake-file");
    picker.setAttribute("type", "file");
    picker.setAttribute("aria-label", "File to add to " + workspace + "'s knowledge");
    css(picker, "display:none");
    var attach = el("button", "krake-attach", "+");
    attach.setAttribute("type", "button");
    attach.setAttribute("title", "Add a file to " + workspace + "'s knowledge");
    attach.setAttribute("aria-label", "Attach a file");
    css(attach, "padding:.35rem .6rem");
    attach.addEventListener("click", function () { picker.click(); });
    picker.addEventListener("change", function () {
      var f = picker.files && picker.files[0];
      if (f) upload(f);
      picker.value = "";
    });
    form.appendChild(picker);
    form.appendChild(attach);
  }
  form.appendChild(send);
  panel.appendChild(status);
  panel.appendChild(log);
  panel.appendChild(form);
  root.appendChild(panel);
  root.appendChild(toggle);

  function open(show) {
    panel.style.display = show ? "flex" : "none";
    toggle.setAttribute("aria-expanded", show ? "true" : "false");
    if (show) input.focus();
  }
  toggle.addEventListener("click", function () { open(panel.style.display === "none"); });

  function scroll() { log.scrollTop = log.scrollHeight; }

  function line(cls, text) {
    var p = el("div", cls);
    var pre = el("pre", null, text);
    css(pre, "white-space:pre-wrap;margin:.2rem 0;font:12px/1.35 ui-monospace,monospace");
    p.appendChild(pre);
    log.appendChild(p);
    scroll();
    return p;
  }

  function sendFrame(obj) {
    if (state.socket && state.socket.readyState === 1) {
      state.socket.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  function showReply(m) {
    var p = line("krake-reply krake-" + (m.tone || "info"), m.text);
    (m.buttons || []).forEach(function (b) {
      var btn = el("button", "krake-button", b.label);
      btn.setAttribute("type", "button");
      btn.setAttribute("data-payload", b.payload);
      css(btn, "margin-right:.3rem");
      btn.addEventListener("click", function () {
        btn.disabled = true;
        sendFrame({ type: "press", payload: b.payload });
      });
      p.appendChild(btn);
    });
  }

  // An agent's answer as it is produced: a typing line, then one bubble per answer that grows
  // with each frame (`append`) and is replaced by the final text.
  var answers = {};
  var typing = null;
  function showTyping(on) {
    if (on && !typing) typing = line("krake-typing", "… working on it");
    if (!on && typing) { typing.remove(); typing = null; }
  }
  function showAnswer(m) {
    showTyping(false);
    var row = answers[m.id];
    if (!row) {
      row = line("krake-reply krake-answer krake-info", "");
      row.setAttribute("data-answer", m.id);
      answers[m.id] = row;
    }
    var pre = row.firstChild;
    if (typeof m.append === "string") pre.textContent += m.append;
    else pre.textContent = m.text;
    if (m.final) {
      row.className = "krake-reply krake-answer krake-" + (m.tone || "info");
      row.setAttribute("data-final", "true");
    }
    scroll();
  }

  var threads = {};
  function showThread(t) {
    var text = "#" + t.id + " [" + t.workspace + " · " + t.kind + " · " + t.status + "] " + t.title;
    var row = threads[t.id];
    if (!row) {
      row = line("krake-thread", text);
      row.setAttribute("data-thread", String(Number(t.id)));
      threads[t.id] = row;
    } else {
      row.firstChild.textContent = text;
    }
    row.setAttribute("data-status", t.status);
    if (!t.decidable) {
      // Buttons drawn for this thread are stale now.
      log.querySelectorAll(".krake-button").forEach(function (b) {
        if (b.getAttribute("data-payload").split(":")[2] === String(Number(t.id))) b.disabled = true;
      });
    }
    document.dispatchEvent(new CustomEvent("krake:thread", { detail: t }));
  }

  function onMessage(ev) {
    var m;
    try { m = JSON.parse(ev.data); } catch (e) { return; }
    if (typeof m.seq !== "number") return;
    if (m.type === "welcome" && m.session !== state.session) {
      // A new session numbers from 1 again.
      state.session = m.session;
      state.last = 0;
    }
    if (m.seq !== 0) {
      if (m.seq <= state.last) return; // seen before a drop: never twice
      if (m.seq !== state.last + 1) {
        // Never expected: the server replays everything after `last`. Counted for tests.
        state.gaps += 1;
        root.setAttribute("data-gaps", String(state.gaps));
      }
      state.last = m.seq;
      root.setAttribute("data-last-seq", String(m.seq));
      save();
    }
    if (m.type === "welcome") {
      status.textContent = "connected as " + m.user;
      if (m.reset) line("krake-note", "(reconnected; reload the page to see everything)");
    } else if (m.type === "reply") {
      showReply(m);
    } else if (m.type === "thread") {
      showThread(m.thread);
    } else if (m.type === "typing") {
      showTyping(true);
    } else if (m.type === "answer") {
      showAnswer(m);
    } else if (m.type === "error") {
      line("krake-error", m.message);
      if (m.code === "unauthenticated" || m.code === "forbidden") { state.stop = true; status.textContent = m.message; }
    }
    if (m.seq % 20 === 0) sendFrame({ type: "ack", seq: m.seq });
  }

  function connect() {
    var s = new WebSocket(wsUrl);
    state.socket = s;
    s.onopen = function () {
      state.retry = 250;
      s.send(JSON.stringify({ type: "hello", workspace: workspace || null, token: token, session: state.session, last: state.last }));
      status.textContent = "connected";
      root.setAttribute("data-connected", "true");
      while (state.pending.length) s.send(JSON.stringify(state.pending.shift()));
    };
    s.onmessage = onMessage;
    s.onclose = function () {
      root.setAttribute("data-connected", "false");
      if (state.stop) return;
      status.textContent = "reconnecting…";
      setTimeout(connect, state.retry);
      state.retry = Math.min(state.retry * 2, 5000);
    };
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    line("krake-you", "you> " + text);
    state.counter += 1;
    var frame = { type: "say", id: Date.now().toString(36) + "-" + state.counter, text: text };
    if (!sendFrame(frame)) state.pending.push(frame);
  });

  function upload(f) {
    line("krake-you", "you> (file) " + f.name);
    var data = new FormData();
    data.append("file", f, f.name);
    if (state.session) data.append("session", state.session);
    var headers = {};
    if (token) headers["Authorization"] = "Bearer " + token;
    else headers["X-CSRF-Token"] = csrfInput.value;
    fetch(base.origin + "/api/v1/workspaces/" + encodeURIComponent(workspace) + "/knowledge", {
      method: "POST", body: data, headers: headers, credentials: "same-origin"
    }).then(function (r) {
      return r.json().then(function (b) {
        if (r.ok) showReply({ text: b.reply, tone: b.tone });
        else line("krake-error", (b.error && b.error.message) || ("upload failed: " + r.status));
      });
    }).catch(function () { line("krake-error", "the upload did not reach Krake; try again"); });
  }

  window.KrakeWidget = {
    open: function () { open(true); },
    // Closes the socket as a network drop would; the widget reconnects and resumes.
    drop: function () { if (state.socket) state.socket.close(); },
    lastSeq: function () { return state.last; }
  };

  function start() { document.body.appendChild(root); connect(); }
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
