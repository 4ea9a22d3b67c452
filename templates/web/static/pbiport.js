// pbiport's pages: small enhancements on top of pages that work without JavaScript.
// No framework, no build step, no request to another host. Pages keep working with this file
// blocked; it only adds:
//  - "Open in" menus (<details class="menu">) close on Escape and on a click elsewhere;
//  - [data-dialog-open="ID"] opens <dialog id="ID"> as a modal, [data-dialog-close] closes the
//    dialog it is in (keyboard focus returns to the element that opened it);
//  - forms with data-confirm="question" ask before they are sent (and set their "confirmed" field);
//  - pbiport.csrfToken(): the token of the page's own forms, for scripts that post to the page;
//  - the Power BI modal: "Power BI Web" links (a[data-power-bi-port]) open #power-bi-dialog with the
//    #power-bi-panel of their page; its forms are sent with fetch and what comes back (the form
//    again, or the job's #job-panel after Publish) is shown in the dialog;
//  - a #job-panel follows its job: /api/jobs/{id} is polled, the bar moves, and the panel is
//    fetched again from the job's page whenever the phase or the state changes;
//  - a submit button with data-inline-result="ID" (Test connection) sends its form with fetch and
//    puts the element ID of the answer in place of the page's;
//  - a schedule typed into [data-schedule-input] shows its next runs as it is typed (the page
//    itself answers ?schedule= with them in #schedule-preview) and picks its radio button;
//  - a section [data-reload-while-active="N"] (a run going on) reloads the page every N seconds.
(function () {
  "use strict";

  function closeMenus(except) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (menu !== except) menu.removeAttribute("open");
    });
  }

  document.addEventListener("click", function (event) {
    var inMenu = event.target.closest ? event.target.closest("details.menu") : null;
    closeMenus(inMenu);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = document.querySelector("details.menu[open]");
    if (open) {
      open.removeAttribute("open");
      var summary = open.querySelector("summary");
      if (summary) summary.focus();
    }
  });

  var opener = null;
  document.addEventListener("click", function (event) {
    var openButton = event.target.closest ? event.target.closest("[data-dialog-open]") : null;
    if (openButton) {
      var dialog = document.getElementById(openButton.getAttribute("data-dialog-open"));
      if (dialog && typeof dialog.showModal === "function") {
        event.preventDefault();
        opener = openButton;
        dialog.showModal();
      }
      return;
    }
    var closeButton = event.target.closest ? event.target.closest("[data-dialog-close]") : null;
    if (closeButton) {
      var inDialog = closeButton.closest("dialog");
      if (inDialog) {
        event.preventDefault();
        inDialog.close();
      }
    }
  });
  document.addEventListener("close", function (event) {
    if (event.target.tagName === "DIALOG" && opener) {
      opener.focus();
      opener = null;
    }
  }, true);

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (!question) return;
    if (!window.confirm(question)) event.preventDefault();
    else if (form.elements.confirmed) form.elements.confirmed.value = "yes";
  });

  var scheduleInput = document.querySelector("[data-schedule-input]");
  if (scheduleInput && window.fetch && window.DOMParser) {
    var timer = null, asked = 0;
    scheduleInput.addEventListener("input", function () {
      var radio = document.getElementById(scheduleInput.getAttribute("data-schedule-input"));
      if (radio) radio.checked = true;
      clearTimeout(timer);
      timer = setTimeout(function () {
        var text = scheduleInput.value.trim(), mine = ++asked;
        if (!text) return;
        fetch(location.pathname + "?schedule=" + encodeURIComponent(text), { credentials: "same-origin" })
          .then(function (response) { return response.text(); })
          .then(function (page) {
            var fresh = new DOMParser().parseFromString(page, "text/html").getElementById("schedule-preview");
            var shown = document.getElementById("schedule-preview");
            if (fresh && shown && mine === asked) shown.innerHTML = fresh.innerHTML;
          })
          .catch(function () { /* the preview stays as it was; saving still checks the schedule */ });
      }, 400);
    });
  }

  var active = document.querySelector("[data-reload-while-active]");
  if (active) {
    var seconds = parseInt(active.getAttribute("data-reload-while-active"), 10) || 5;
    setTimeout(function () { location.reload(); }, seconds * 1000);
  }

  // ---- the Power BI modal, live job progress, answers in place ----
  var POLL_MS = 1000;
  var parser = new DOMParser();

  function fetchPage(url, options) {
    var init = { credentials: "same-origin", headers: { Accept: "text/html" } };
    if (options) { init.method = options.method; init.body = options.body; }
    return fetch(url, init).then(function (resp) {
      return resp.text().then(function (text) { return parser.parseFromString(text, "text/html"); });
    });
  }

  function message(text) {
    var p = document.createElement("p");
    p.className = "error-summary";
    p.setAttribute("role", "alert");
    p.textContent = text;
    return p;
  }

  // What the dialog shows of a fetched page: its panel, or an error page's message.
  function panelOf(doc) {
    return doc.getElementById("job-panel") || doc.getElementById("power-bi-panel") ||
      doc.querySelector("main .error-summary") || message("pbiport gave no answer to show: reload the page.");
  }

  function show(dialog, node) {
    var panel = document.importNode(node, true);
    dialog.querySelector("[data-modal-body]").replaceChildren(panel);
    panel.querySelectorAll("[data-modal-href]").forEach(function (a) { a.href = a.getAttribute("data-modal-href"); });
    var heading = panel.querySelector("h2[id]");
    if (heading) {
      dialog.setAttribute("aria-labelledby", heading.id);
      heading.focus();
    }
    if (panel.id === "job-panel") watchJob(panel);
  }

  function load(dialog, url, options) {
    fetchPage(url, options).then(function (doc) { show(dialog, panelOf(doc)); }, function () {
      show(dialog, message("pbiport did not answer: check your network and try again."));
    });
  }

  function openPowerBi(link) {
    var dialog = document.getElementById("power-bi-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return false;
    var menu = link.closest("details.menu");
    if (menu) menu.removeAttribute("open");
    opener = menu ? menu.querySelector("summary") : link;
    var waiting = document.createElement("p");
    waiting.className = "muted";
    waiting.textContent = "Loading…";
    dialog.querySelector("[data-modal-body]").replaceChildren(waiting);
    if (!dialog.open) dialog.showModal();
    load(dialog, link.href);
    return true;
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-power-bi-port]") : null;
    if (link && openPowerBi(link)) event.preventDefault();
  });

  // Coming back from Connect to Power BI: /data-products/{id}#power-bi={port id} opens the dialog again.
  var back = /^#power-bi=([0-9a-f]+)$/.exec(window.location.hash);
  if (back) {
    var backLink = document.querySelector('a[data-power-bi-port="' + back[1] + '"]');
    if (backLink) {
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
      openPowerBi(backLink);
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target, submitter = event.submitter;
    if (event.defaultPrevented || !form.closest) return;
    var inline = submitter && submitter.getAttribute("data-inline-result");
    var dialog = form.closest("dialog");
    if (!inline && !(dialog && dialog.querySelector("[data-modal-body]"))) return;
    event.preventDefault();
    // the attributes: a field named "action" (a button's name) shadows form.action
    var action = form.getAttribute("action") || window.location.pathname;
    var data = new FormData(form);
    if (submitter && submitter.name) data.append(submitter.name, submitter.value);
    if (!inline) {
      if ((form.getAttribute("method") || "get").toLowerCase() === "get") {
        load(dialog, action + "?" + new URLSearchParams(data).toString());
      } else {
        load(dialog, action, { method: "POST", body: data });
      }
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      return;
    }
    var target = document.getElementById(inline);
    submitter.disabled = true;
    if (target) target.setAttribute("aria-busy", "true");
    fetchPage(action, { method: "POST", body: data }).then(function (doc) {
      var fresh = doc.getElementById(inline);
      if (target) target.replaceWith(fresh ? document.importNode(fresh, true) : panelOf(doc));
    }, function () {
      if (target) target.replaceWith(message("pbiport did not answer: try again."));
    }).then(function () { submitter.disabled = false; });
  });

  function ended(state) {
    return state === "succeeded" || state === "failed" || state === "cancelled";
  }

  function watchJob(panel) {
    if (ended(panel.getAttribute("data-job-state"))) return;
    window.setTimeout(function () {
      var dialog = panel.closest("dialog");
      if (!panel.isConnected || (dialog && !dialog.open)) return;   /* gone, or its dialog was closed */
      fetch(panel.getAttribute("data-job-api"), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (resp) {
          if (!resp.ok) throw new Error("HTTP " + resp.status);
          return resp.json();
        })
        .then(function (job) {
          var bar = panel.querySelector("progress");
          if (bar) bar.value = job.progress;
          if (job.state !== panel.getAttribute("data-job-state") ||
              (job.phase || "") !== panel.getAttribute("data-job-phase")) refreshJob(panel);
          else watchJob(panel);
        }, function () { /* the job is gone or pbiport is down: the page's Reload still works */ });
    }, POLL_MS);
  }

  function refreshJob(panel) {
    fetchPage(panel.getAttribute("data-job-page")).then(function (doc) {
      var fresh = doc.getElementById("job-panel");
      if (!fresh || !panel.isConnected) return;
      var node = document.importNode(fresh, true);
      var hadFocus = panel.contains(document.activeElement);
      panel.replaceWith(node);
      if (hadFocus) node.querySelector("h2").focus();
      watchJob(node);
    }, function () { watchJob(panel); });
  }

  var jobPanel = document.getElementById("job-panel");
  if (jobPanel) watchJob(jobPanel);

  window.pbiport = {
    csrfToken: function () {
      var field = document.querySelector('input[name="csrf_token"]');
      return field ? field.value : "";
    }
  };
})();
