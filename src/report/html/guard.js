// Runs before anything else on the page. A script error is shown on the page and kept in
// the `data-errors` attribute of <html> (squall's browser test reads it), instead of being
// lost in a console nobody opens. A blocked request (the page must need no network) counts
// as an error too.
(function () {
  "use strict";
  var root = document.documentElement;
  function show() {
    var box = document.getElementById("script-errors");
    var errors = root.getAttribute("data-errors");
    if (box && errors) {
      box.hidden = false;
      box.textContent = "Some charts could not be drawn: " + errors;
    }
  }
  function report(text) {
    var errors = root.getAttribute("data-errors");
    root.setAttribute("data-errors", (errors ? errors + "\n" : "") + text);
    show();
  }
  window.addEventListener("error", function (e) {
    report((e.message || "script error") + (e.filename ? " (" + e.filename + ":" + e.lineno + ")" : ""));
  });
  window.addEventListener("unhandledrejection", function (e) {
    report("unhandled rejection: " + e.reason);
  });
  document.addEventListener("securitypolicyviolation", function (e) {
    report("blocked by the page's policy: " + e.blockedURI + " (" + e.violatedDirective + ")");
  });
  document.addEventListener("DOMContentLoaded", show);
  var consoleError = console.error;
  console.error = function () {
    report(Array.prototype.map.call(arguments, String).join(" "));
    return consoleError.apply(console, arguments);
  };
})();
