// Idle time-out warning. The server ends a session after the idle timeout
// (authn); this script counts from the last page load, warns before the end
// and then sends the browser to log-off, so a screen is not left open.
(function () {
  "use strict";
  var body = document.body;
  var idle = parseInt(body.getAttribute("data-idle"), 10);
  if (!(idle > 0)) { return; }
  var text = body.getAttribute("data-idle-text") || "%s";
  var lead = Math.min(120, Math.floor(idle / 2));
  var box = document.getElementById("idle-warning");
  var label = document.getElementById("idle-text");
  var stay = document.getElementById("idle-stay");
  var deadline, warnTimer, endTimer, tick;

  function fmt(s) {
    var m = Math.floor(s / 60), r = s % 60;
    return m + ":" + (r < 10 ? "0" : "") + r;
  }
  function show() {
    if (!box) { return; }
    box.hidden = false;
    var update = function () {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      label.textContent = text.replace("%s", fmt(left));
    };
    update();
    tick = window.setInterval(update, 1000);
    if (stay) { stay.focus(); }
  }
  function end() {
    window.location.assign("/logoff?idle=1");
  }
  function start() {
    window.clearTimeout(warnTimer);
    window.clearTimeout(endTimer);
    window.clearInterval(tick);
    if (box) { box.hidden = true; }
    deadline = Date.now() + idle * 1000;
    warnTimer = window.setTimeout(show, (idle - lead) * 1000);
    endTimer = window.setTimeout(end, idle * 1000);
  }
  if (stay) {
    stay.addEventListener("click", function () {
      // A request refreshes the server's idle timer.
      fetch("/keepalive", { credentials: "same-origin", cache: "no-store" }).then(function (r) {
        if (r.ok) { start(); } else { end(); }
      }, end);
    });
  }
  start();
})();
