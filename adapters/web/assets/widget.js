// Krake's embeddable chat widget, in two modes.
//
// Team mode, for people with a Krake account:
//   <script src="https://KRAKE/widget.js" data-workspace="lunavo" [data-token="krk_…"]></script>
// It opens a WebSocket to /ws/chat on the same Krake (signed in by Krake's session cookie on
// Krake's own pages, or a widget token), sends what you type to Krake's command parser and
// draws replies as bubbles with their blocks as real HTML: tables, thread cards (status, quorum
// progress, working Approve and Reject buttons), KPI cards, `#12` as a link to the thread.
// Agents' answers grow as they are written. Inbox threads are updated as they change. After a
// dropped connection it resumes from the last message it saw (every server message has a
// sequence number), so nothing is lost or shown twice. With a workspace, only that workspace's
// threads are listed and acted on (the server holds the rule), and an attach button uploads a
// file to its knowledge. Not signed in, it says so and how, and takes no typing.
//
// Customer mode, for a shop's public pages:
//   <script src="https://KRAKE/widget.js" data-key="kpub_…"></script>
// It chats with the workspace's customer-service agent over /ws/visitor as an anonymous
// visitor (a token kept in localStorage resumes the conversation), never with cookies or
// tokens: no commands, no inbox, no links into Krake. See the customer* functions below.
//
// Host pages may have a strict Content-Security-Policy (Krake's own refuses style attributes
// and inline style sheets), so every style is set through the CSSOM (`element.style`), and all
// text goes in with textContent: nothing from the server is ever parsed as HTML.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var base = new URL(script.src, location.href);
  var wsBase = (base.protocol === "https:" ? "wss://" : "ws://") + base.host;
  var phone = window.matchMedia ? window.matchMedia("(max-width: 480px)") : { matches: false };

  // ---- shared: elements, colours, the panel ----------------------------------------------

  var F = "system-ui,-apple-system,'Segoe UI',sans-serif";
  var C = {
    ink: "#1d232b", muted: "#5b6775", line: "#d9dde2", accent: "#1f5fbf", accentInk: "#fff",
    bot: "#f1f3f6", link: "#1a56b0",
    tone: {
      info: ["#f1f3f6", "#d9dde2"], success: ["#e9f6ee", "#2f8f4e"],
      warning: ["#fff5e0", "#b7791f"], error: ["#fdecec", "#c0392b"]
    },
    status: {
      open: ["#e8effb", "#1f5fbf"], approved: ["#e9f6ee", "#23753f"], rejected: ["#fdecec", "#b0322a"],
      archived: ["#eef0f2", "#5b6775"], expired: ["#fff5e0", "#8a5a12"]
    }
  };

  function css(e, text) { e.style.cssText = text; return e; }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function button(cls, label, aria) {
    var b = el("button", cls, label);
    b.setAttribute("type", "button");
    if (aria) b.setAttribute("aria-label", aria);
    return b;
  }

  // Hidden on screen, read by screen readers.
  function srOnly(text) {
    return css(el("span", "krake-sr", text),
      "position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap");
  }

  // The panel every mode uses: a toggle button, a header (title, subtitle, close), a log, a
  // notice line and the message form. Returns its parts.
  function shell(opts) {
    var ui = {};
    ui.root = el("div", "krake-widget");
    ui.root.setAttribute("data-mode", opts.mode);
    css(ui.root, "position:fixed;right:1rem;bottom:1rem;z-index:2147483000;font:14px/1.45 " + F + ";color:" + C.ink + ";text-align:left");
    ui.toggle = button("krake-toggle", opts.toggle);
    ui.toggle.setAttribute("aria-expanded", "false");
    ui.toggle.setAttribute("aria-haspopup", "dialog");
    css(ui.toggle, "display:block;margin-left:auto;padding:.6rem 1rem;border-radius:999px;border:0;background:" + C.accent + ";color:" + C.accentInk + ";font:600 14px/1.2 " + F + ";cursor:pointer;box-shadow:0 2px 10px rgba(0,0,0,.2)");

    ui.panel = el("section", "krake-panel");
    ui.panel.id = "krake-panel-" + opts.mode;
    ui.panel.setAttribute("role", "dialog");
    ui.panel.setAttribute("aria-label", opts.label);
    ui.toggle.setAttribute("aria-controls", ui.panel.id);

    var header = el("header", "krake-header");
    css(header, "display:flex;align-items:center;gap:.5rem;padding:.6rem .75rem;background:" + C.accent + ";color:" + C.accentInk);
    var titles = css(el("div", "krake-titles"), "flex:1;min-width:0");
    ui.title = css(el("div", "krake-title", opts.title), "font-weight:600;font-size:15px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis");
    ui.title.setAttribute("id", ui.panel.id + "-title");
    ui.sub = css(el("div", "krake-status", "connecting…"), "font-size:12px;opacity:.9;white-space:nowrap;overflow:hidden;text-overflow:ellipsis");
    ui.sub.setAttribute("aria-live", "polite");
    titles.appendChild(ui.title);
    titles.appendChild(ui.sub);
    ui.close = button("krake-close", "×", "Close chat");
    css(ui.close, "flex:none;width:2rem;height:2rem;border:0;border-radius:50%;background:rgba(255,255,255,.15);color:inherit;font:22px/1 " + F + ";cursor:pointer");
    header.appendChild(titles);
    header.appendChild(ui.close);

    ui.log = el("div", "krake-log");
    ui.log.setAttribute("role", "log");
    ui.log.setAttribute("aria-live", "polite");
    ui.log.setAttribute("aria-label", "Conversation");
    ui.log.setAttribute("tabindex", "0");
    css(ui.log, "flex:1;overflow-y:auto;overflow-x:hidden;padding:.75rem;display:flex;flex-direction:column;gap:.5rem;background:#fff");

    ui.notice = el("div", "krake-notice");
    ui.notice.setAttribute("role", "status");
    css(ui.notice, "display:none;margin:auto 0;padding:1rem;border:1px solid #f0d9a8;border-radius:12px;background:#fff8e6;font-size:14px;text-align:center");

    ui.form = el("form", "krake-form");
    css(ui.form, "display:flex;gap:.4rem;align-items:center;padding:.5rem;border-top:1px solid " + C.line + ";background:#fafbfc");
    ui.input = el("input", "krake-input");
    ui.input.setAttribute("type", "text");
    ui.input.setAttribute("autocomplete", "off");
    ui.input.setAttribute("aria-label", opts.inputLabel);
    ui.input.setAttribute("placeholder", opts.placeholder);
    ui.input.setAttribute("maxlength", "4000");
    css(ui.input, "flex:1;min-width:0;padding:.55rem .7rem;border:1px solid " + C.line + ";border-radius:999px;font:inherit;color:inherit;background:#fff");
    ui.send = el("button", "krake-send", "Send");
    ui.send.setAttribute("type", "submit");
    css(ui.send, "flex:none;padding:.5rem .9rem;border:0;border-radius:999px;background:" + C.accent + ";color:" + C.accentInk + ";font:600 13px/1.2 " + F + ";cursor:pointer");
    ui.form.appendChild(ui.input);
    ui.form.appendChild(ui.send);

    ui.panel.appendChild(header);
    ui.panel.appendChild(ui.log);
    ui.panel.appendChild(ui.notice);
    ui.panel.appendChild(ui.form);
    ui.root.appendChild(ui.panel);
    ui.root.appendChild(ui.toggle);

    // A phone gets the whole screen; a desktop a panel above the button.
    ui.layout = function () {
      var shown = ui.panel.getAttribute("data-open") === "true";
      var small = phone.matches;
      css(ui.panel, (shown ? "display:flex;" : "display:none;") + "flex-direction:column;overflow:hidden;background:#fff;" + (small
        ? "position:fixed;top:0;right:0;bottom:0;left:0;width:auto;height:auto;border-radius:0;z-index:2147483001"
        : "width:min(25rem,calc(100vw - 2rem));height:min(36rem,calc(100vh - 6rem));border:1px solid " + C.line + ";border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.18);margin-bottom:.6rem"));
      ui.toggle.style.display = shown && small ? "none" : "block";
    };
    if (phone.addEventListener) phone.addEventListener("change", ui.layout);

    ui.open = function (show) {
      ui.panel.setAttribute("data-open", show ? "true" : "false");
      ui.toggle.setAttribute("aria-expanded", show ? "true" : "false");
      ui.layout();
      if (show) {
        if (!ui.input.disabled) ui.input.focus(); else ui.close.focus();
        ui.scroll();
      } else {
        ui.toggle.focus();
      }
    };
    ui.toggle.addEventListener("click", function () { ui.open(ui.panel.getAttribute("data-open") !== "true"); });
    ui.close.addEventListener("click", function () { ui.open(false); });
    ui.panel.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && !e.defaultPrevented) { e.preventDefault(); ui.open(false); }
    });

    ui.scroll = function () { ui.log.scrollTop = ui.log.scrollHeight; };

    // One message row: a screen-reader label (who) and the bubble; `mine` on the right.
    ui.row = function (mine, who, bubble, name) {
      var row = el("div", "krake-row");
      css(row, "display:flex;flex-direction:column;align-items:" + (mine ? "flex-end" : "flex-start") + ";max-width:100%");
      if (name) {
        var n = css(el("div", "krake-name", name), "font-size:11px;color:" + C.muted + ";margin:0 .4rem .15rem");
        n.setAttribute("aria-hidden", "true");
        row.appendChild(n);
      }
      row.appendChild(srOnly(who + ": "));
      row.appendChild(bubble);
      ui.log.appendChild(row);
      ui.scroll();
      return row;
    };

    ui.bubbleStyle = function (bubble, mine, tone) {
      var t = C.tone[tone] || C.tone.info;
      css(bubble, mine
        ? "max-width:85%;padding:.5rem .75rem;border-radius:14px 14px 4px 14px;background:" + C.accent + ";color:" + C.accentInk + ";white-space:pre-wrap;overflow-wrap:anywhere"
        : "max-width:92%;min-width:0;padding:.5rem .75rem;border-radius:14px 14px 14px 4px;background:" + t[0] + ";border-left:3px solid " + t[1] + ";overflow-wrap:anywhere");
    };

    // Typing: three dots until the answer.
    var typing = null;
    ui.typing = function (on, label) {
      if (on && !typing) {
        typing = el("div", "krake-typing");
        typing.setAttribute("aria-label", label);
        css(typing, "align-self:flex-start;padding:.45rem .75rem;border-radius:14px;background:" + C.bot + ";color:" + C.muted + ";font-size:13px");
        typing.textContent = "● ● ●  " + label;
        ui.log.appendChild(typing);
        ui.scroll();
      }
      if (!on && typing) { typing.remove(); typing = null; }
    };

    // A state that takes no typing: why, and a link to act on it.
    ui.block = function (state, message, linkText, href) {
      ui.root.setAttribute("data-state", state);
      ui.notice.textContent = "";
      var p = el("p", "krake-notice-text", message);
      css(p, "margin:0 0 .35rem");
      ui.notice.appendChild(p);
      if (linkText) {
        var a = el("a", "krake-signin", linkText);
        a.href = href;
        a.setAttribute("target", "_top");
        css(a, "display:inline-block;padding:.35rem .8rem;border-radius:999px;background:" + C.accent + ";color:" + C.accentInk + ";text-decoration:none;font-weight:600");
        ui.notice.appendChild(a);
      }
      ui.notice.style.display = "block";
      ui.log.appendChild(ui.notice);
      ui.scroll();
      ui.input.disabled = true;
      ui.send.disabled = true;
      ui.input.setAttribute("placeholder", "Chat is unavailable");
      ui.send.style.opacity = ".5";
      ui.input.style.background = "#f1f3f6";
    };

    ui.layout();
    return ui;
  }

  // Linkifies `#12` in team mode only; elsewhere plain text.
  function richText(parent, text, links) {
    if (!links) { parent.appendChild(document.createTextNode(text)); return; }
    var re = /(^|[^\w&#\/])#(\d{1,12})(?!\w)/g;
    var at = 0, m;
    while ((m = re.exec(text)) !== null) {
      var start = m.index + m[1].length;
      // "order #1042", "invoice #7": a shop's number, not a thread.
      if (/(order|invoice|ticket|issue|pr)\s*$/i.test(text.slice(0, start))) continue;
      if (start > at) parent.appendChild(document.createTextNode(text.slice(at, start)));
      parent.appendChild(threadLink(Number(m[2])));
      at = start + 1 + m[2].length;
    }
    if (at < text.length) parent.appendChild(document.createTextNode(text.slice(at)));
  }

  function threadLink(id) {
    var a = el("a", "krake-link", "#" + id);
    a.href = base.origin + "/threads/" + id;
    a.setAttribute("data-thread-link", String(id));
    if (base.host !== location.host) { a.setAttribute("target", "_blank"); a.setAttribute("rel", "noopener"); }
    css(a, "color:" + C.link + ";font-weight:600;text-decoration:underline");
    return a;
  }

  var key = script.getAttribute("data-key") || "";
  function start(fn) {
    if (document.body) fn(); else document.addEventListener("DOMContentLoaded", fn);
  }
  if (/^kpub_/.test(key)) start(function () { customerWidget(key); });
  else start(teamWidget);

  // ---- team mode ---------------------------------------------------------------------------

  function teamWidget() {
    var workspace = script.getAttribute("data-workspace") || "";
    var token = script.getAttribute("data-token") || null;
    var storeKey = "krake-widget:" + base.host + ":" + workspace;
    var state = { session: null, last: 0, socket: null, retry: 250, counter: 0, pending: [], gaps: 0, stop: false, presses: {}, user: "" };
    try {
      var saved = JSON.parse(sessionStorage.getItem(storeKey) || "null");
      if (saved) { state.session = saved.session; state.last = saved.last; state.user = saved.user || ""; }
    } catch (e) { /* no storage: start fresh */ }
    function save() {
      try { sessionStorage.setItem(storeKey, JSON.stringify({ session: state.session, last: state.last, user: state.user })); } catch (e) { }
    }

    var ui = shell({
      mode: "team", toggle: "Chat with Krake", label: "Krake chat",
      title: workspace ? "Krake · " + workspace : "Krake",
      inputLabel: "Message to Krake", placeholder: "Ask, or /todo, approve 12, …"
    });
    ui.root.setAttribute("data-state", "connecting");
    var log = ui.log;

    // Attaching a file: a personal token, or the signed-in session on Krake's own pages (whose
    // forms carry the CSRF token).
    var csrfInput = base.host === location.host ? document.querySelector('input[name="csrf"]') : null;
    if (workspace && (token || csrfInput)) {
      var picker = el("input", "krake-file");
      picker.setAttribute("type", "file");
      picker.setAttribute("aria-label", "File to add to " + workspace + "'s knowledge");
      css(picker, "display:none");
      var attach = button("krake-attach", "+", "Attach a file to " + workspace + "'s knowledge");
      attach.setAttribute("title", "Add a file to " + workspace + "'s knowledge");
      css(attach, "flex:none;width:2.2rem;height:2.2rem;border:1px solid " + C.line + ";border-radius:50%;background:#fff;font:18px/1 " + F + ";cursor:pointer;color:" + C.ink);
      attach.addEventListener("click", function () { picker.click(); });
      picker.addEventListener("change", function () {
        var f = picker.files && picker.files[0];
        if (f) upload(f);
        picker.value = "";
      });
      ui.form.insertBefore(picker, ui.send);
      ui.form.insertBefore(attach, ui.send);
    }

    // Suggestions on an empty conversation.
    var chips = el("div", "krake-suggestions");
    css(chips, "display:flex;flex-direction:column;gap:.5rem;margin:auto 0 0");
    var hello = el("p", "krake-hello", "Hi! I keep the team's To Do inbox" + (workspace ? " for " + workspace : "") + " and pass tasks to your agents. Try:");
    css(hello, "margin:0;color:" + C.muted + ";font-size:13px");
    var row = css(el("div"), "display:flex;flex-wrap:wrap;gap:.4rem");
    row.setAttribute("role", "group");
    row.setAttribute("aria-label", "Suggestions");
    [["/todo", "What is open"], ["/kpi", "Key figures"], ["help", "What I understand"]].forEach(function (s) {
      var b = button("krake-chip", s[0], s[1] + ": send " + s[0]);
      b.setAttribute("title", s[1]);
      css(b, "padding:.35rem .75rem;border:1px solid " + C.accent + ";border-radius:999px;background:#fff;color:" + C.accent + ";font:600 13px/1.2 " + F + ";cursor:pointer");
      b.addEventListener("click", function () { submit(s[0]); ui.input.focus(); });
      row.appendChild(b);
    });
    chips.appendChild(hello);
    chips.appendChild(row);
    log.appendChild(chips);
    function hideChips() { if (chips.parentNode) chips.remove(); }

    function sendFrame(obj) {
      if (state.socket && state.socket.readyState === 1) {
        state.socket.send(JSON.stringify(obj));
        return true;
      }
      return false;
    }

    function mine(text) {
      hideChips();
      var b = el("div", "krake-msg krake-you", text);
      ui.bubbleStyle(b, true);
      ui.row(true, "You", b);
    }

    // A reply's words: with blocks, the lines that are not drawn by them (headings, hints);
    // tabular text without blocks keeps its columns and scrolls sideways.
    function words(parent, text, hasBlocks) {
      var lines = text.split("\n");
      if (hasBlocks) lines = lines.filter(function (l) { return l.trim() && !/^\s/.test(l); });
      var tabular = !hasBlocks && lines.some(function (l) { return /^ {2}\S/.test(l); });
      var p = el("div", "krake-text");
      css(p, tabular
        ? "white-space:pre;overflow-x:auto;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;max-width:100%"
        : "white-space:pre-wrap");
      if (tabular) p.setAttribute("tabindex", "0");
      richText(p, lines.join("\n"), true);
      parent.appendChild(p);
    }

    function showReply(m) {
      hideChips();
      var blocks = Array.isArray(m.blocks) ? m.blocks : [];
      var b = el("div", "krake-msg krake-reply krake-" + (m.tone || "info"));
      ui.bubbleStyle(b, false, m.tone);
      var text = m.text || "";
      var first = blocks[0];
      var drawn = 0;
      // A thread's own reply starts with the line its card shows: the card comes first, then
      // the details (body, proposal, who decides).
      var head = first && first.type === "thread" && text.indexOf("#" + Number(first.id) + " [") === 0;
      if (head) {
        var rest = text.slice(text.indexOf("\n") + 1);
        b.appendChild(card(first));
        drawn += 1;
        if (text.indexOf("\n") > 0 && rest.trim()) {
          var det = el("div", "krake-text krake-details");
          css(det, "white-space:pre-wrap;margin-top:.45rem;font-size:13px;color:#3b4652");
          richText(det, rest, true);
          b.appendChild(det);
        }
      } else {
        words(b, text, blocks.length > 0);
      }
      var pressed = m.re === null || m.re === undefined;
      var carried = false;
      blocks.forEach(function (blk, i) {
        if (head && i === 0) { carried = true; syncCards(blk, b); return; }
        if (blk.type === "table") { b.appendChild(table(blk)); drawn += 1; }
        else if (blk.type === "kpi") { kpiCard(b, blk); drawn += 1; }
        else if (blk.type === "thread") {
          carried = true;
          var shown = syncCards(blk, b);
          // The answer to a press updates the card pressed; typed commands draw a new one.
          if (!(pressed && state.presses[blk.id] && shown)) { b.appendChild(card(blk)); drawn += 1; }
          delete state.presses[blk.id];
        }
      });
      if (!carried) legacyButtons(b, m.buttons || []);
      if (drawn) {
        // Everything the blocks show, as the text every front gets.
        var d = el("details", "krake-as-text");
        css(d, "margin-top:.4rem;font-size:12px;color:" + C.muted);
        var s = el("summary", null, "As text");
        css(s, "cursor:pointer");
        var pre = el("pre", null, m.text || "");
        css(pre, "white-space:pre;overflow-x:auto;margin:.3rem 0 0;font:11px/1.4 ui-monospace,monospace");
        d.appendChild(s);
        d.appendChild(pre);
        b.appendChild(d);
      }
      ui.row(false, "Krake", b);
    }

    // Cards of the thread already shown follow its new state; how many there were.
    function syncCards(blk, except) {
      var shown = log.querySelectorAll('.krake-card[data-krake-thread="' + Number(blk.id) + '"]');
      var n = 0;
      shown.forEach(function (c) {
        if (except.contains(c)) return;
        fillCard(c, blk);
        n += 1;
      });
      return n;
    }

    function legacyButtons(b, buttons) {
      if (!buttons.length) return;
      var bar = css(el("div", "krake-actions"), "display:flex;gap:.4rem;margin-top:.4rem;flex-wrap:wrap");
      buttons.forEach(function (x) {
        var btn = button("krake-button", x.label);
        btn.setAttribute("data-payload", x.payload);
        styleAction(btn, x.action);
        btn.addEventListener("click", function () { btn.disabled = true; sendFrame({ type: "press", payload: x.payload }); });
        bar.appendChild(btn);
      });
      b.appendChild(bar);
    }

    function styleAction(btn, action) {
      var good = action !== "reject";
      css(btn, "padding:.4rem .85rem;border-radius:8px;font:600 13px/1.2 " + F + ";cursor:pointer;border:1px solid " + (good ? "#23753f" : "#b0322a") + ";background:" + (good ? "#23753f" : "#fff") + ";color:" + (good ? "#fff" : "#b0322a"));
    }

    // A table that fits the panel or scrolls sideways inside it; `#12` cells link the thread.
    function table(blk) {
      var wrap = el("div", "krake-table-wrap");
      wrap.setAttribute("role", "region");
      wrap.setAttribute("aria-label", "Table (scrolls sideways)");
      wrap.setAttribute("tabindex", "0");
      css(wrap, "overflow-x:auto;max-width:100%;margin:.4rem 0 .1rem;border:1px solid " + C.line + ";border-radius:8px;background:#fff");
      var t = el("table", "krake-table");
      css(t, "border-collapse:collapse;width:100%;font-size:13px");
      var head = el("thead");
      var tr = el("tr");
      (blk.columns || []).forEach(function (c) {
        var th = el("th", null, c);
        th.setAttribute("scope", "col");
        css(th, "text-align:left;padding:.35rem .5rem;border-bottom:1px solid " + C.line + ";background:#f6f7f9;font-weight:600;white-space:nowrap;color:" + C.muted + ";font-size:12px");
        tr.appendChild(th);
      });
      head.appendChild(tr);
      t.appendChild(head);
      var body = el("tbody");
      (blk.rows || []).forEach(function (r) {
        var row = el("tr");
        var id = /^#(\d+)$/.test(r[0] || "") ? Number(r[0].slice(1)) : null;
        if (id) row.setAttribute("data-krake-thread", String(id));
        r.forEach(function (cell, i) {
          var td = el("td");
          var last = i === r.length - 1;
          var wide = (blk.columns[i] || "").toLowerCase() === "title" || (last && !id);
          css(td, "padding:.35rem .5rem;border-bottom:1px solid #eef0f2;vertical-align:top;" + (wide ? "min-width:10rem;max-width:18rem" : "white-space:nowrap"));
          if (i === 0 && id) td.appendChild(threadLink(id));
          else if (C.status[cell] && (blk.columns[i] || "").toLowerCase() === "status") {
            td.className = "krake-status-cell";
            td.appendChild(pill(cell));
          }
          else richText(td, cell, true);
          row.appendChild(td);
        });
        body.appendChild(row);
      });
      t.appendChild(body);
      wrap.appendChild(t);
      return wrap;
    }

    function pill(status) {
      var c = C.status[status] || C.status.archived;
      var p = el("span", "krake-pill", status);
      css(p, "display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:12px;font-weight:600;background:" + c[0] + ";color:" + c[1]);
      return p;
    }

    // A thread card: title, state, quorum progress, Approve and Reject (Reject asks why).
    function card(blk) {
      var c = el("div", "krake-card");
      c.setAttribute("data-krake-thread", String(Number(blk.id)));
      css(c, "margin-top:.45rem;padding:.6rem .7rem;border:1px solid " + C.line + ";border-radius:10px;background:#fff;color:" + C.ink);
      fillCard(c, blk);
      return c;
    }

    function fillCard(c, blk) {
      c.textContent = "";
      c.setAttribute("data-status", blk.status);
      var head = css(el("div", "krake-card-head"), "display:flex;align-items:center;gap:.4rem;flex-wrap:wrap;font-size:12px;color:" + C.muted);
      head.appendChild(threadLink(Number(blk.id)));
      head.appendChild(pill(blk.status));
      head.appendChild(el("span", null, blk.workspace + " · " + blk.kind));
      c.appendChild(head);
      var title = css(el("div", "krake-card-title", blk.title), "font-weight:600;margin:.3rem 0 .2rem;overflow-wrap:anywhere");
      c.appendChild(title);
      if (blk.kind === "approval" && blk.needed > 1) {
        var done = Math.min(blk.approvals, blk.needed);
        if (blk.status === "approved") done = blk.needed;
        var prog = css(el("div", "krake-progress"), "display:flex;align-items:center;gap:.5rem;font-size:12px;color:" + C.muted + ";margin:.25rem 0");
        var bar = el("div", "krake-bar");
        bar.setAttribute("role", "progressbar");
        bar.setAttribute("aria-valuemin", "0");
        bar.setAttribute("aria-valuemax", String(blk.needed));
        bar.setAttribute("aria-valuenow", String(done));
        bar.setAttribute("aria-label", "Approvals");
        css(bar, "flex:1;height:6px;border-radius:3px;background:#e6e9ed;overflow:hidden;max-width:8rem");
        var fill = css(el("div"), "height:100%;width:" + Math.round(100 * done / blk.needed) + "%;background:" + (blk.status === "rejected" ? "#b0322a" : "#23753f"));
        bar.appendChild(fill);
        prog.appendChild(bar);
        prog.appendChild(el("span", "krake-quorum", done + " of " + blk.needed + " approval" + (blk.needed === 1 ? "" : "s")));
        c.appendChild(prog);
      }
      if (blk.decided_by) {
        var how = blk.status.charAt(0).toUpperCase() + blk.status.slice(1) + " by " + blk.decided_by + (blk.reason ? ": " + blk.reason : "");
        c.appendChild(css(el("div", "krake-decided", how), "font-size:12px;color:" + C.muted + ";margin-top:.2rem"));
      }
      var buttons = blk.buttons || [];
      if (buttons.length && blk.status === "open") {
        var bar2 = css(el("div", "krake-actions"), "display:flex;gap:.4rem;margin-top:.45rem;flex-wrap:wrap");
        buttons.forEach(function (x) {
          var btn = button("krake-button", x.label, x.label + " #" + blk.id + ": " + blk.title);
          btn.setAttribute("data-payload", x.payload);
          btn.setAttribute("data-action", x.action || "");
          styleAction(btn, x.action);
          btn.addEventListener("click", function () {
            if (x.action === "reject") { askReason(c, bar2, blk, x.payload, btn); return; }
            bar2.querySelectorAll("button").forEach(function (o) { o.disabled = true; });
            state.presses[blk.id] = true;
            sendFrame({ type: "press", payload: x.payload, id: "p" + Date.now().toString(36) + "-" + (++state.counter) });
          });
          bar2.appendChild(btn);
        });
        c.appendChild(bar2);
      }
    }

    // Reject asks for a reason inline; the press carries it.
    function askReason(c, bar, blk, payload, rejectBtn) {
      if (c.querySelector(".krake-reason-form")) { c.querySelector(".krake-reason").focus(); return; }
      var f = el("form", "krake-reason-form");
      css(f, "display:flex;flex-wrap:wrap;gap:.4rem;margin-top:.45rem;align-items:center");
      var id = "krake-reason-" + blk.id + "-" + (++state.counter);
      var label = el("label", null, "Why reject #" + blk.id + "?");
      label.setAttribute("for", id);
      css(label, "width:100%;font-size:12px;color:" + C.muted);
      var input = el("input", "krake-reason");
      input.id = id;
      input.setAttribute("required", "required");
      input.setAttribute("maxlength", "500");
      css(input, "flex:1;min-width:8rem;padding:.4rem .55rem;border:1px solid " + C.line + ";border-radius:8px;font:inherit");
      var ok = el("button", "krake-reject-confirm", "Reject #" + blk.id);
      ok.setAttribute("type", "submit");
      ok.disabled = true;
      styleAction(ok, "reject");
      var cancel = button("krake-reject-cancel", "Cancel");
      css(cancel, "padding:.4rem .7rem;border:0;background:none;color:" + C.muted + ";cursor:pointer;font:inherit");
      input.addEventListener("input", function () { ok.disabled = !input.value.trim(); });
      bar.style.display = "none";
      function close() { f.remove(); bar.style.display = "flex"; rejectBtn.focus(); }
      cancel.addEventListener("click", close);
      input.addEventListener("keydown", function (e) { if (e.key === "Escape") { e.preventDefault(); close(); } });
      f.addEventListener("submit", function (e) {
        e.preventDefault();
        var reason = input.value.trim();
        if (!reason) { input.focus(); return; }
        bar.querySelectorAll("button").forEach(function (o) { o.disabled = true; });
        input.disabled = true; ok.disabled = true;
        state.presses[blk.id] = true;
        sendFrame({ type: "press", payload: payload, reason: reason, id: "p" + Date.now().toString(36) + "-" + (++state.counter) });
      });
      f.appendChild(label);
      f.appendChild(input);
      f.appendChild(ok);
      f.appendChild(cancel);
      c.appendChild(f);
      input.focus();
    }

    // KPI cards sit side by side, as many as fit.
    function kpiCard(b, blk) {
      var grid = b.querySelector(".krake-kpis");
      if (!grid) {
        grid = el("div", "krake-kpis");
        css(grid, "display:grid;grid-template-columns:repeat(auto-fill,minmax(8.5rem,1fr));gap:.4rem;margin-top:.45rem");
        b.appendChild(grid);
      }
      var k = el("div", "krake-kpi");
      css(k, "padding:.5rem .6rem;border:1px solid " + C.line + ";border-radius:10px;background:#fff;min-width:0");
      k.appendChild(css(el("div", "krake-kpi-label", blk.label + (blk.period ? " · " + blk.period : "")), "font-size:12px;color:" + C.muted + ";overflow-wrap:anywhere"));
      k.appendChild(css(el("div", "krake-kpi-value", blk.value), "font-size:18px;font-weight:700;margin:.1rem 0;overflow-wrap:anywhere"));
      if (blk.change) {
        var up = blk.change.charAt(0) === "▲", down = blk.change.charAt(0) === "▼";
        k.appendChild(css(el("div", "krake-kpi-change", blk.change), "font-size:12px;color:" + (up ? "#23753f" : down ? "#b0322a" : C.muted)));
      }
      if (blk.target) {
        var t = (blk.on_target === true ? "✓ " : blk.on_target === false ? "✗ " : "") + "target " + blk.target;
        k.appendChild(css(el("div", "krake-kpi-target", t), "font-size:12px;color:" + (blk.on_target === false ? "#b0322a" : blk.on_target ? "#23753f" : C.muted)));
      }
      if (blk.trend) {
        var tr = css(el("div", "krake-kpi-trend", blk.trend), "font:14px/1 ui-monospace,monospace;color:" + C.accent + ";margin-top:.2rem;letter-spacing:-1px;overflow:hidden;white-space:nowrap");
        tr.setAttribute("aria-hidden", "true");
        k.appendChild(tr);
      }
      grid.appendChild(k);
    }

    // An agent's answer as it is produced: a typing line, then one bubble per answer that grows
    // with each frame (`append`) and is replaced by the final text.
    var answers = {};
    function showAnswer(m) {
      ui.typing(false);
      hideChips();
      var b = answers[m.id];
      if (!b) {
        b = el("div", "krake-msg krake-reply krake-answer krake-info");
        b.setAttribute("data-answer", m.id);
        ui.bubbleStyle(b, false, "info");
        b.style.whiteSpace = "pre-wrap";
        b.setAttribute("aria-busy", "true");
        answers[m.id] = b;
        ui.row(false, "Krake", b);
      }
      if (typeof m.append === "string") b.appendChild(document.createTextNode(m.append));
      else if (typeof m.text === "string") { b.textContent = ""; b.appendChild(document.createTextNode(m.text)); }
      if (m.final) {
        b.className = "krake-msg krake-reply krake-answer krake-" + (m.tone || "info");
        ui.bubbleStyle(b, false, m.tone);
        b.style.whiteSpace = "pre-wrap";
        var text = b.textContent;
        b.textContent = "";
        richText(b, text, true);
        b.setAttribute("data-final", "true");
        b.removeAttribute("aria-busy");
      }
      ui.scroll();
    }

    // A thread changed: its cards follow; a thread with no card gets one line, kept current.
    var lines = {};
    function showThread(t) {
      var id = String(Number(t.id));
      var cards = log.querySelectorAll('.krake-card[data-krake-thread="' + id + '"]');
      cards.forEach(function (c) {
        c.setAttribute("data-status", t.status);
        var p = c.querySelector(".krake-pill");
        if (p) p.replaceWith(pill(t.status));
        var ti = c.querySelector(".krake-card-title");
        if (ti) ti.textContent = t.title;
        if (!t.decidable) {
          var a = c.querySelector(".krake-actions");
          if (a) a.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
          if (a) a.remove();
          var f = c.querySelector(".krake-reason-form");
          if (f) f.remove();
          if (t.decided_by && !c.querySelector(".krake-decided")) {
            c.appendChild(css(el("div", "krake-decided", t.status.charAt(0).toUpperCase() + t.status.slice(1) + " by " + t.decided_by), "font-size:12px;color:" + C.muted + ";margin-top:.2rem"));
          }
          if (t.status === "approved") {
            var q = c.querySelector(".krake-quorum");
            var bar = c.querySelector(".krake-bar");
            if (q && bar) {
              var n = bar.getAttribute("aria-valuemax");
              q.textContent = n + " of " + n + " approval" + (n === "1" ? "" : "s");
              bar.setAttribute("aria-valuenow", n);
              bar.firstChild.style.width = "100%";
            }
          }
        }
      });
      // Table rows of the thread show its status as it is now.
      log.querySelectorAll('tr[data-krake-thread="' + id + '"] .krake-status-cell').forEach(function (td) {
        td.textContent = "";
        td.appendChild(pill(t.status));
      });
      if (!t.decidable) {
        // Buttons drawn for this thread elsewhere are stale now.
        log.querySelectorAll(".krake-button").forEach(function (b) {
          if ((b.getAttribute("data-payload") || "").split(":")[2] === id) b.disabled = true;
        });
      }
      if (!cards.length) {
        var row = lines[id];
        if (!row) {
          row = el("div", "krake-thread");
          row.setAttribute("data-krake-thread", id);
          css(row, "align-self:center;max-width:95%;font-size:12px;color:" + C.muted + ";background:#f6f7f9;border-radius:999px;padding:.2rem .7rem;display:flex;gap:.35rem;align-items:center;flex-wrap:wrap");
          lines[id] = row;
          log.appendChild(row);
          ui.scroll();
        }
        row.textContent = "";
        row.appendChild(threadLink(Number(t.id)));
        row.appendChild(pill(t.status));
        row.appendChild(el("span", null, t.workspace + " · " + t.title));
        row.setAttribute("data-status", t.status);
      }
      document.dispatchEvent(new CustomEvent("krake:thread", { detail: t }));
    }

    function note(text, tone) {
      var b = el("div", "krake-msg krake-error", text);
      ui.bubbleStyle(b, false, tone || "error");
      b.style.whiteSpace = "pre-wrap";
      ui.row(false, "Krake", b);
    }

    function signedOut(code, message) {
      state.stop = true;
      hideChips();
      if (code === "cross_origin") {
        ui.block("cross-origin", "Your Krake sign-in does not reach this page (it is not on Krake's own address). Chat on Krake itself, or ask for a widget token for this page.", "Open Krake", base.origin + "/");
        ui.sub.textContent = "not available on this page";
      } else if (code === "unauthenticated") {
        ui.block("signed-out", "Sign in to Krake to chat.", "Sign in", base.origin + "/login");
        ui.sub.textContent = "not signed in";
      } else {
        ui.block("refused", message);
        ui.sub.textContent = "unavailable";
      }
      ui.root.setAttribute("data-error", code);
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
          ui.root.setAttribute("data-gaps", String(state.gaps));
        }
        state.last = m.seq;
        ui.root.setAttribute("data-last-seq", String(m.seq));
        save();
      }
      if (m.type === "welcome") {
        state.user = m.user;
        save();
        connected();
        if (m.reset) note("Reconnected; reload the page to see everything.", "info");
      } else if (m.type === "reply") {
        ui.typing(false);
        showReply(m);
      } else if (m.type === "thread") {
        showThread(m.thread);
      } else if (m.type === "typing") {
        ui.typing(true, "Working on it…");
      } else if (m.type === "answer") {
        showAnswer(m);
      } else if (m.type === "error") {
        if (m.code === "unauthenticated" || m.code === "cross_origin" || m.code === "forbidden" || m.code === "not_found") {
          signedOut(m.code, m.message);
        } else if (m.code !== "reconnect") {
          note(m.message);
        }
      }
      if (m.seq % 20 === 0) sendFrame({ type: "ack", seq: m.seq });
    }

    // A resumed session gets no welcome: the socket being open is the sign it is up (a refused
    // hello is answered with an error at once, which takes the input away again).
    function connected() {
      ui.root.setAttribute("data-state", "ready");
      ui.sub.textContent = "● connected" + (state.user ? " as " + state.user : "") + (workspace ? " · in " + workspace : "");
    }

    function connect() {
      var s = new WebSocket(wsBase + "/ws/chat");
      state.socket = s;
      s.onopen = function () {
        state.retry = 250;
        s.send(JSON.stringify({ type: "hello", workspace: workspace || null, token: token, session: state.session, last: state.last }));
        ui.root.setAttribute("data-connected", "true");
        if (state.session) connected();
        while (state.pending.length) s.send(JSON.stringify(state.pending.shift()));
      };
      s.onmessage = onMessage;
      s.onclose = function () {
        ui.root.setAttribute("data-connected", "false");
        if (state.stop) return;
        ui.sub.textContent = "reconnecting…";
        setTimeout(connect, state.retry);
        state.retry = Math.min(state.retry * 2, 5000);
      };
    }

    function submit(text) {
      if (ui.input.disabled) return;
      mine(text);
      state.counter += 1;
      var frame = { type: "say", id: Date.now().toString(36) + "-" + state.counter, text: text };
      if (!sendFrame(frame)) state.pending.push(frame);
    }

    ui.form.addEventListener("submit", function (e) {
      e.preventDefault();
      var text = ui.input.value.trim();
      if (!text || ui.input.disabled) return;
      ui.input.value = "";
      submit(text);
    });

    function upload(f) {
      mine("File: " + f.name);
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
          if (r.ok) showReply({ text: b.reply, tone: b.tone, re: "upload" });
          else note((b.error && b.error.message) || ("upload failed: " + r.status));
        });
      }).catch(function () { note("The upload did not reach Krake; try again."); });
    }

    window.KrakeWidget = {
      open: function () { ui.open(true); },
      close: function () { ui.open(false); },
      // Closes the socket as a network drop would; the widget reconnects and resumes.
      drop: function () { if (state.socket) state.socket.close(); },
      lastSeq: function () { return state.last; }
    };

    document.body.appendChild(ui.root);
    connect();
  }

  // ---- customer mode: a shop's visitors chat with its customer-service agent --------------
  //
  // Protocol (/ws/visitor, JSON text frames):
  //   → {"type":"hello","key":"kpub_…","visitor":"kvis_…"?}   (visitor: the stored token, if any)
  //   ← {"type":"welcome","visitor","workspace","title","agent","history":[{seq,from,name,text,citations}]}
  //   ← {"type":"message","seq","from":"agent"|"team"|"krake"|"visitor","name","text","citations"}
  //   ← {"type":"typing"}   ← {"type":"ack","id":"v3"}   ← {"type":"error","code","message"}
  //   → {"type":"say","id":"v<n>","text":"…"}   (resent with the same id after a reconnect until acked)

  function customerWidget(pubKey) {
    var tokenKey = "krake-visitor:" + pubKey;
    var cs = {
      socket: null, retry: 500, stop: false, welcomed: false,
      seen: {}, pending: [], counter: 0, agent: "", title: ""
    };
    cs.visitor = customerLoad(tokenKey, null);
    cs.counter = Number(customerLoad(tokenKey + ":n", "0")) || 0;
    try { cs.pending = JSON.parse(customerLoad(tokenKey + ":pending", "[]")) || []; } catch (e) { cs.pending = []; }

    var ui = shell({
      mode: "customer", toggle: "Chat with us", label: "Chat with us", title: "Chat",
      inputLabel: "Your message", placeholder: "Write a message…"
    });
    ui.root.setAttribute("data-state", "connecting");
    ui.input.disabled = true;
    ui.send.disabled = true;

    function customerSend(obj) {
      if (cs.socket && cs.socket.readyState === 1) { cs.socket.send(JSON.stringify(obj)); return true; }
      return false;
    }

    function customerSavePending() {
      customerStore(tokenKey + ":pending", JSON.stringify(cs.pending.map(function (p) { return { id: p.id, text: p.text }; })));
    }

    function customerBubble(msg) {
      var mine = msg.from === "visitor";
      var b = el("div", "krake-msg " + (mine ? "krake-you" : "krake-reply krake-from-" + (msg.from || "agent")));
      if (mine) {
        b.textContent = msg.text || "";
        ui.bubbleStyle(b, true);
      } else {
        ui.bubbleStyle(b, false, "info");
        b.style.whiteSpace = "pre-wrap";
        b.appendChild(document.createTextNode(msg.text || ""));
        customerCitations(b, msg.citations);
      }
      if (typeof msg.seq === "number") b.setAttribute("data-seq", String(msg.seq));
      var who = mine ? "You" : (msg.name || (msg.from === "team" ? "The team" : cs.agent || "Assistant"));
      if (!mine && msg.from === "team" && msg.name && cs.title) who = msg.name + " · " + cs.title + " team";
      ui.row(mine, who, b, mine ? null : who);
      return b;
    }

    function customerCitations(b, citations) {
      if (!Array.isArray(citations) || !citations.length) return;
      var list = el("ul", "krake-citations");
      list.setAttribute("aria-label", "Sources");
      css(list, "list-style:none;display:flex;flex-wrap:wrap;gap:.3rem;margin:.4rem 0 0;padding:0;white-space:normal");
      citations.forEach(function (c) {
        var li = el("li", "krake-citation", String(c));
        css(li, "padding:.1rem .5rem;border:1px solid " + C.line + ";border-radius:999px;background:#fff;font-size:11px;color:" + C.muted);
        list.appendChild(li);
      });
      b.appendChild(list);
    }

    function customerMine(p) {
      var b = customerBubble({ from: "visitor", text: p.text });
      b.setAttribute("data-id", p.id);
      b.setAttribute("data-sent", "false");
      p.el = b;
      var st = css(el("div", "krake-sent", "sending…"), "font-size:11px;color:" + C.muted + ";margin:.1rem .4rem 0");
      b.parentNode.appendChild(st);
      p.status = st;
    }

    function customerShow(msg) {
      if (typeof msg.seq === "number") {
        if (cs.seen[msg.seq]) return;
        cs.seen[msg.seq] = true;
      }
      ui.typing(false);
      customerBubble(msg);
    }

    function customerWelcome(m) {
      cs.welcomed = true;
      if (m.visitor) { cs.visitor = m.visitor; customerStore(tokenKey, m.visitor); }
      cs.agent = m.agent || "";
      cs.title = m.title || m.workspace || "";
      ui.title.textContent = [cs.agent, cs.title].filter(Boolean).join(" · ") || "Chat";
      ui.sub.textContent = "● online";
      ui.root.setAttribute("data-state", "ready");
      ui.root.setAttribute("data-workspace", m.workspace || "");
      // The history replaces the log; then what is still unacknowledged is shown and resent.
      ui.log.textContent = "";
      cs.seen = {};
      (m.history || []).forEach(customerShow);
      if (!(m.history || []).length && cs.agent) {
        var hi = css(el("p", "krake-hello", "Hi! I'm " + cs.agent + ". How can I help?"), "margin:auto 0 0;color:" + C.muted + ";font-size:13px");
        ui.log.appendChild(hi);
      }
      cs.pending.forEach(function (p) {
        customerMine(p);
        customerSend({ type: "say", id: p.id, text: p.text });
      });
      if (!ui.root.hasAttribute("data-ended")) {
        ui.input.disabled = false;
        ui.send.disabled = false;
      }
    }

    function customerAck(id) {
      cs.pending = cs.pending.filter(function (p) {
        if (p.id !== id) return true;
        if (p.el) p.el.setAttribute("data-sent", "true");
        if (p.status) p.status.textContent = "sent ✓";
        return false;
      });
      customerSavePending();
    }

    function customerError(m) {
      var code = m.code || "";
      if (code === "bad_key" || code === "revoked" || code === "origin") {
        cs.stop = true;
        ui.root.setAttribute("data-ended", code);
        ui.block("ended", m.message || "This chat is not available.");
        ui.sub.textContent = "unavailable";
        if (cs.socket) cs.socket.close();
        return;
      }
      if (code === "rate_limited" || code === "too_long") {
        // The last message was not taken: it goes back in the box to send again.
        var last = cs.pending.pop();
        if (last) {
          if (last.el && last.el.parentNode) last.el.parentNode.remove();
          if (!ui.input.value) ui.input.value = last.text;
          customerSavePending();
        }
      }
      var b = el("div", "krake-msg krake-error", m.message || code);
      ui.bubbleStyle(b, false, "warning");
      ui.row(false, "Notice", b);
    }

    function customerMessage(ev) {
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === "welcome") customerWelcome(m);
      else if (m.type === "message") customerShow(m);
      else if (m.type === "typing") ui.typing(true, (cs.agent || "Someone") + " is typing…");
      else if (m.type === "ack") customerAck(m.id);
      else if (m.type === "error") customerError(m);
    }

    function customerConnect() {
      var s = new WebSocket(wsBase + "/ws/visitor");
      cs.socket = s;
      s.onopen = function () {
        var hello = { type: "hello", key: pubKey };
        if (cs.visitor) hello.visitor = cs.visitor;
        s.send(JSON.stringify(hello));
        ui.root.setAttribute("data-connected", "true");
      };
      s.onmessage = function (ev) { cs.retry = 500; customerMessage(ev); };
      s.onclose = function () {
        ui.root.setAttribute("data-connected", "false");
        ui.typing(false);
        if (cs.stop) return;
        ui.sub.textContent = "reconnecting…";
        // Backoff with jitter, so a restarted server is not hit by every visitor at once.
        setTimeout(customerConnect, cs.retry + Math.floor(Math.random() * cs.retry / 2));
        cs.retry = Math.min(cs.retry * 2, 15000);
      };
    }

    ui.form.addEventListener("submit", function (e) {
      e.preventDefault();
      var text = ui.input.value.trim();
      if (!text || ui.input.disabled) return;
      ui.input.value = "";
      cs.counter += 1;
      customerStore(tokenKey + ":n", String(cs.counter));
      var p = { id: "v" + cs.counter, text: text };
      cs.pending.push(p);
      customerSavePending();
      var hi = ui.log.querySelector(".krake-hello");
      if (hi) hi.remove();
      customerMine(p);
      customerSend({ type: "say", id: p.id, text: text });
    });

    window.KrakeWidget = {
      open: function () { ui.open(true); },
      close: function () { ui.open(false); },
      drop: function () { if (cs.socket) cs.socket.close(); },
      visitor: function () { return cs.visitor; }
    };

    document.body.appendChild(ui.root);
    customerConnect();
  }

  function customerLoad(k, fallback) {
    try { var v = localStorage.getItem(k); return v === null ? fallback : v; } catch (e) { return fallback; }
  }

  function customerStore(k, v) {
    try { localStorage.setItem(k, v); } catch (e) { /* private mode: the chat still works */ }
  }
})();
