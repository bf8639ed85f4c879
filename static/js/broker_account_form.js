// The broker account form shows only the fields of the chosen kind. Without this script every
// field stays visible, its label naming its kind, and the server ignores the other kinds' fields.
(function () {
  "use strict";
  var kindSelect = document.querySelector("select[name=kind]");
  if (!kindSelect || !kindSelect.form) {
    return;
  }
  var inputs = kindSelect.form.querySelectorAll("[data-kinds]");

  function showChosenKind() {
    var kind = kindSelect.value;
    inputs.forEach(function (input) {
      var wanted = input.getAttribute("data-kinds").split(" ").indexOf(kind) !== -1;
      var field = input.closest(".field") || input;
      // The stylesheet gives .field a display of its own, which the hidden attribute alone does not override.
      field.hidden = !wanted;
      field.style.display = wanted ? "" : "none";
      // A hidden input is not sent: what was typed into another kind's field stays out of the request.
      input.disabled = !wanted;
    });
  }

  kindSelect.addEventListener("change", showChosenKind);
  showChosenKind();
})();
