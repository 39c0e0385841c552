/* The demo host page: write every relay:* event the widget's element receives into the log. */
(function () {
  "use strict";

  var NAMES = ["relay:ready", "relay:status", "relay:progress", "relay:done", "relay:error"];
  var widget = document.getElementById("demo-widget");
  var log = document.getElementById("event-log");
  var empty = document.getElementById("event-log-empty");

  function summary(name, snapshot) {
    if (!snapshot) return "";
    var parts = [];
    if (snapshot.status) parts.push(snapshot.status);
    if (name === "relay:progress" && snapshot.progress && typeof snapshot.progress.percent === "number") {
      parts.push(Math.round(snapshot.progress.percent) + "%");
    }
    if (name === "relay:done" && snapshot.output) parts.push(JSON.stringify(snapshot.output));
    if (snapshot.error) parts.push(snapshot.error);
    return parts.join(" · ");
  }

  function record(event) {
    var item = document.createElement("li");
    var time = document.createElement("time");
    var name = document.createElement("code");
    var detail = document.createElement("span");
    var now = new Date();
    time.dateTime = now.toISOString();
    time.textContent = now.toLocaleTimeString();
    name.textContent = event.type;
    detail.textContent = summary(event.type, event.detail);
    item.dataset.event = event.type;
    item.append(time, name, detail);
    log.prepend(item);
    empty.hidden = true;
    while (log.children.length > 200) log.lastElementChild.remove();
  }

  NAMES.forEach(function (name) { widget.addEventListener(name, record); });
  document.getElementById("clear-log").addEventListener("click", function () {
    log.innerHTML = "";
    empty.hidden = false;
  });
})();
