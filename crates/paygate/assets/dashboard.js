// The dashboard's filters apply as they change: a form marked data-autosubmit submits when one
// of its drop-downs or date fields changes (the search field still waits for Enter or Apply).
// Without this script the Apply button does the same.
(function () {
  "use strict";
  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.addEventListener("change", function (e) {
      if (e.target.matches("select, input[type=date]")) form.requestSubmit();
    });
  });
})();
