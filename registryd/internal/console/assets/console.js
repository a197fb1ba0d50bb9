// Berth console: progressive enhancement only. Every page works without
// this script; it refreshes the lifecycle policy preview while the
// policy is typed (the Preview button does the same without it).
(function () {
  "use strict";
  var form = document.getElementById("policy-form");
  var pane = document.getElementById("preview-pane");
  if (!form || !pane || !document.getElementById("preview")) {
    return;
  }
  var area = document.getElementById("policy");
  var timer = null;
  var seq = 0;
  function refresh() {
    var mine = ++seq;
    var body = new URLSearchParams(new FormData(form));
    fetch(form.getAttribute("data-preview"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-Console-Fragment": "preview", "X-CSRF-Token": form.elements.csrf.value },
      body: body
    }).then(function (r) { return r.text(); }).then(function (html) {
      if (mine !== seq) {
        return;
      }
      var old = document.getElementById("preview-body");
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.getElementById("preview-body");
      if (old && fresh) {
        old.replaceWith(document.importNode(fresh, true));
      }
    });
  }
  area.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
})();
