// The ops page's live progress bars: poll /ops/runs.json every 2 s and move each running
// run's bar and numbers; when a run finishes or a new one starts, reload the page.
(function () {
  "use strict";
  var script = document.currentScript;
  var path = script && script.getAttribute("data-runs");
  if (!path || !window.fetch || !window.URL) { return; }
  // Absolute, from the origin: Chromium refuses a relative fetch on a page whose address
  // carries a user name and password (http://admin:token@host/ops).
  var url = new URL(path, window.location.origin).href;
  function shown() {
    return Array.prototype.map.call(
      document.querySelectorAll("#running-runs tr[data-run]"),
      function (row) { return row.getAttribute("data-run"); }
    );
  }
  function text(row, selector, value) {
    var cell = row.querySelector(selector);
    if (cell) { cell.textContent = value; }
  }
  function update(data) {
    var ids = data.running.map(function (run) { return String(run.id); });
    var before = shown();
    if (ids.length !== before.length || ids.some(function (id) { return before.indexOf(id) < 0; })) {
      window.location.reload();
      return;
    }
    data.running.forEach(function (run) {
      var row = document.querySelector('#running-runs tr[data-run="' + run.id + '"]');
      if (!row) { return; }
      ["sent", "failed", "queued"].forEach(function (part) {
        var seg = row.querySelector(".seg." + part);
        if (seg) { seg.style.width = run.percent[part].toFixed(2) + "%"; }
        text(row, ".counts ." + part, run[part]);
      });
      text(row, ".rate", run.per_minute === null ? "-" : Math.round(run.per_minute) + "/min");
      text(row, ".eta", run.eta || "-");
    });
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (data) { if (data) { update(data); } })
      .catch(function () { /* the next poll, or the page's own refresh, tries again */ });
  }
  window.setInterval(poll, 2000);
})();
