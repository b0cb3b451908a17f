// Draws an application's diagram on its progress page with the bpmn-js NavigatedViewer (served
// from web/static/vendor, never a CDN) and marks the finished and the current elements.
(function () {
  "use strict";
  var container = document.getElementById("diagram");
  if (!container || typeof window.BpmnJS !== "function") {
    return;
  }
  var ids = function (name) {
    return (container.getAttribute("data-" + name) || "").split(" ").filter(Boolean);
  };
  var failed = function () {
    container.textContent = container.getAttribute("data-failed");
  };
  var viewer = new window.BpmnJS({ container: container });

  fetch(container.getAttribute("data-xml-url"), { credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) {
        throw new Error("diagram answered " + response.status);
      }
      return response.text();
    })
    .then(function (xml) {
      return viewer.importXML(xml);
    })
    .then(function () {
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      // A called process's elements are not in this drawing: mark only what is there.
      var mark = function (id, marker) {
        if (registry.get(id)) {
          canvas.addMarker(id, marker);
        }
      };
      ids("done").forEach(function (id) { mark(id, "done"); });
      ids("current").forEach(function (id) { mark(id, "current"); });
      canvas.zoom("fit-viewport");
    })
    .catch(failed);
})();
