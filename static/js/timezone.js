// Suggest the browser's time zone on forms that ask for one (progressive enhancement: the
// select works without it). Only selects marked data-timezone-suggest are changed, and only
// when the browser's zone is one of the offered choices.
(function () {
  "use strict";
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (error) {
    return;
  }
  if (!zone) {
    return;
  }
  var selects = document.querySelectorAll("select[data-timezone-suggest]");
  Array.prototype.forEach.call(selects, function (select) {
    var option = Array.prototype.find.call(select.options, function (candidate) {
      return candidate.value === zone;
    });
    if (!option || select.value === zone) {
      return;
    }
    select.value = zone;
    var note = document.createElement("span");
    note.className = "helptext timezone-note";
    note.textContent = "Suggested from your browser: " + option.textContent + ".";
    select.insertAdjacentElement("afterend", note);
  });
})();
