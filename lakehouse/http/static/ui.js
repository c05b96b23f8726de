// Lakehouse web UI: the little the pages need beyond HTMX. Everything works without it for reading.
(function () {
  "use strict";
  var HISTORY_KEY = "lakehouse.sql.history";
  var HISTORY_MAX = 25;

  // Console: a job order's card loads its matches each time it is opened (outcomes change them).
  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!(details instanceof HTMLDetailsElement) || !details.open || !details.dataset.matchesUrl) return;
    htmx.ajax("GET", details.dataset.matchesUrl, {target: details.querySelector(".matches-body"), swap: "innerHTML"});
  }, true);

  // Ask: a citation mark opens its source.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.cite");
    if (!link) return;
    var source = document.getElementById("cite-" + link.dataset.cite);
    if (source) source.open = true;
  });

  // SQL: Ctrl+Enter (or Cmd+Enter) runs the query; past queries are kept in this browser.
  function readHistory() {
    try { return JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]").filter(function (q) { return typeof q === "string"; }); }
    catch (e) { return []; }
  }
  function writeHistory(items) {
    try { localStorage.setItem(HISTORY_KEY, JSON.stringify(items.slice(0, HISTORY_MAX))); } catch (e) { /* storage full or off */ }
  }
  function renderHistory() {
    var list = document.getElementById("sql-history");
    if (!list) return;
    list.replaceChildren();
    readHistory().forEach(function (query) {
      var item = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = query;  // text, never markup
      button.title = "Put this query in the editor";
      button.addEventListener("click", function () {
        var editor = document.getElementById("sql");
        editor.value = query;
        editor.focus();
      });
      item.appendChild(button);
      list.appendChild(item);
    });
    document.getElementById("sql-history-panel").hidden = false;
  }
  function remember(query) {
    query = query.trim();
    if (!query) return;
    writeHistory([query].concat(readHistory().filter(function (q) { return q !== query; })));
    renderHistory();
  }

  document.addEventListener("keydown", function (event) {
    if (event.target.id !== "sql" || event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    event.preventDefault();
    event.target.form.requestSubmit();
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.target.id === "sql-form") remember(document.getElementById("sql").value);
  });

  // Upload: progress of the bytes sent.
  document.addEventListener("htmx:xhr:progress", function (event) {
    var bar = document.getElementById("upload-progress");
    if (!bar || event.target.id !== "upload-form" || !event.detail.lengthComputable) return;
    bar.hidden = false;
    bar.value = event.detail.total ? event.detail.loaded / event.detail.total : 0;
  });

  document.addEventListener("DOMContentLoaded", function () {
    renderHistory();
    var clear = document.getElementById("sql-history-clear");
    if (clear) clear.addEventListener("click", function () { writeHistory([]); renderHistory(); });
  });
})();
