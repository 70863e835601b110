// Sortable tables: click a header of a table.sortable to sort its rows by that column
// (numbers by the cell's data-v, text otherwise; missing values always last; click again to
// reverse). No library, works from file://.
(function () {
  "use strict";
  function key(cell, numeric) {
    if (!cell) return null;
    if (numeric) {
      var v = cell.getAttribute("data-v");
      return v === null || v === "" ? null : parseFloat(v);
    }
    return (cell.getAttribute("data-v") || cell.textContent).trim().toLowerCase();
  }
  function sortBy(table, index, th) {
    var numeric = th.getAttribute("data-type") === "num";
    var descending = th.getAttribute("aria-sort") !== "descending";
    if (!numeric && th.getAttribute("aria-sort") === null) descending = false;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[index], numeric), y = key(b.cells[index], numeric);
      if (x === null || (numeric && isNaN(x))) return 1;
      if (y === null || (numeric && isNaN(y))) return -1;
      if (x < y) return descending ? 1 : -1;
      if (x > y) return descending ? -1 : 1;
      return 0;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) { cell.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }
  function init(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("table.sortable"), function (table) {
      if (table.getAttribute("data-sortable-ready")) return;
      table.setAttribute("data-sortable-ready", "1");
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
        th.tabIndex = 0;
        th.addEventListener("click", function (event) {
          if (event.target.closest && event.target.closest("a")) return;  // a link in the header
          sortBy(table, index, th);
        });
        th.addEventListener("keydown", function (event) {
          if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(table, index, th); }
        });
      });
    });
  }
  window.kbSortable = init;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { init(); });
  else init();
})();
