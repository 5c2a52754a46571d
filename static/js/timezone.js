// The time-zone box (accounts/fields.py): a text input with a <datalist> of "City (UTC+h)"
// labels, which works without this script. The script only helps: on a new form it fills in
// the browser's own zone, and it selects the text on focus so typing a city replaces it.
(function () {
  "use strict";
  var inputs = document.querySelectorAll("input[data-timezone-input]");
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    zone = "";
  }
  Array.prototype.forEach.call(inputs, function (input) {
    input.addEventListener("focus", function () {
      input.select();
    });
    if (!zone || !input.hasAttribute("data-timezone-suggest") || !input.list) {
      return;
    }
    var option = Array.prototype.find.call(input.list.options, function (candidate) {
      var aliases = (candidate.getAttribute("data-aliases") || "").split(" ");
      return candidate.getAttribute("data-zone") === zone || aliases.indexOf(zone) !== -1;
    });
    if (!option || input.value === option.value) {
      return;
    }
    input.value = option.value;
    var note = document.createElement("span");
    note.className = "helptext timezone-note";
    note.textContent = "Suggested from your browser.";
    input.insertAdjacentElement("afterend", note);
  });
})();
