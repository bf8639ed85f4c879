// The holdings editor's "Add row": copies the formset's empty row into the table and counts it in
// TOTAL_FORMS, so the server reads it like any other row. Without this script the page keeps its
// "Add rows" button, which asks the server for more rows instead.
(function () {
  "use strict";
  var place = document.getElementById("holdings-add-row");
  var template = document.getElementById("holdings-empty-row");
  var rows = document.getElementById("holdings-rows");
  var total = document.getElementById("id_holdings-TOTAL_FORMS");
  var maximum = document.getElementById("id_holdings-MAX_NUM_FORMS");
  if (!place || !template || !rows || !total || !maximum) {
    return;
  }
  var button = document.createElement("button");
  button.type = "button";
  button.className = "secondary";
  button.textContent = "Add row";
  var limit = document.createElement("span");
  limit.className = "muted";
  limit.setAttribute("role", "status");

  function showLimit() {
    var full = parseInt(total.value, 10) >= parseInt(maximum.value, 10);
    button.disabled = full;
    limit.textContent = full ? "At most " + maximum.value + " rows can be saved at once." : "";
    return full;
  }

  button.addEventListener("click", function () {
    if (showLimit()) {
      return;
    }
    var index = parseInt(total.value, 10);
    var html = template.innerHTML.replace(/__prefix__/g, String(index)).replace(/__row__/g, String(index + 1));
    rows.insertAdjacentHTML("beforeend", html);
    total.value = String(index + 1);
    var first = rows.lastElementChild.querySelector("input");
    if (first) {
      first.focus();
    }
    showLimit();
  });

  place.appendChild(button);
  place.appendChild(limit);
  var fallback = document.querySelector("[data-add-rows]");
  if (fallback) {
    fallback.remove();
  }
  showLimit();
})();
