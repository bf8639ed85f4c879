// Swagger UI renders an enum parameter as a <select> without a label: each one is named after its
// parameter (the row's name cell), so screen readers announce what it chooses.
(function () {
  "use strict";
  function label(root) {
    root.querySelectorAll(".parameters-col_description select:not([aria-label])").forEach(function (select) {
      var row = select.closest("tr");
      var name = row && row.querySelector(".parameter__name");
      if (name) {
        select.setAttribute("aria-label", name.textContent.replace("*", "").trim());
      }
    });
  }
  new MutationObserver(function () {
    label(document);
  }).observe(document.documentElement, { childList: true, subtree: true });
})();
