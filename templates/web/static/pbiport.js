// pbiport's pages: small enhancements on top of pages that work without JavaScript.
// No framework, no build step, no request to another host. Pages keep working with this file
// blocked; it only adds:
//  - "Open in" menus (<details class="menu">) close on Escape and on a click elsewhere;
//  - [data-dialog-open="ID"] opens <dialog id="ID"> as a modal, [data-dialog-close] closes the
//    dialog it is in (keyboard focus returns to the element that opened it);
//  - forms with data-confirm="question" ask before they are sent;
//  - pbiport.csrfToken(): the token of the page's own forms, for scripts that post to the page;
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
    var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
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

  window.pbiport = {
    csrfToken: function () {
      var field = document.querySelector('input[name="csrf_token"]');
      return field ? field.value : "";
    }
  };
})();
