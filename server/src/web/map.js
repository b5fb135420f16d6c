// fieldsync back office maps (Leaflet). Reads the JSON in #map-data and draws it into #map.
// Markers are vector layers (SVG), so they show even when no tile can load.
(function () {
  "use strict";
  function draw() {
    var el = document.getElementById("map");
    var src = document.getElementById("map-data");
    if (!el || !src) return;
    if (typeof L === "undefined") {
      el.setAttribute("data-state", "no-leaflet");
      el.textContent = "Leaflet did not load.";
      return;
    }
    var data = JSON.parse(src.textContent);
    var map = L.map(el, { preferCanvas: false });
    L.tileLayer(data.tiles, { maxZoom: 19, attribution: "&copy; OpenStreetMap" }).addTo(map);
    var points = [];
    if (data.kind === "visit") {
      var ref = data.reference;
      if (ref) {
        L.circleMarker([ref.lat, ref.lon], {
          radius: 9, color: "#1b5e20", weight: 2, fillColor: "#43a047", fillOpacity: 0.9,
          className: "fs-ref"
        }).bindTooltip(ref.label).addTo(map);
        points.push([ref.lat, ref.lon]);
      }
      data.fixes.forEach(function (f, i) {
        if (f.accuracy_m > 0) {
          L.circle([f.lat, f.lon], {
            radius: f.accuracy_m, color: "#fb8c00", weight: 1, fillOpacity: 0.08,
            className: "fs-accuracy"
          }).addTo(map);
        }
        L.circleMarker([f.lat, f.lon], {
          radius: 7, color: "#e65100", weight: 2, fillColor: "#fb8c00", fillOpacity: 0.9,
          className: "fs-fix"
        }).bindTooltip(f.label).addTo(map);
        points.push([f.lat, f.lon]);
        if (i === 0 && ref) {
          var line = L.polyline([[ref.lat, ref.lon], [f.lat, f.lon]], {
            color: "#e53935", weight: 2, dashArray: "6 4", className: "fs-deviation"
          }).addTo(map);
          if (data.distance_label) line.bindTooltip(data.distance_label, { permanent: true });
        }
      });
      var prev = data.previous;
      if (prev) {
        L.circleMarker([prev.lat, prev.lon], {
          radius: 8, color: "#4a148c", weight: 2, fillColor: "#8e24aa", fillOpacity: 0.9,
          className: "fs-previous"
        }).bindTooltip(prev.title).addTo(map);
        points.push([prev.lat, prev.lon]);
        if (data.fixes.length > 0) {
          var first = data.fixes[0];
          L.polyline([[prev.lat, prev.lon], [first.lat, first.lon]], {
            color: "#8e24aa", weight: 2, dashArray: "2 6", className: "fs-travel"
          }).bindTooltip(prev.label, { permanent: true }).addTo(map);
        }
      }
    } else {
      data.visits.forEach(function (v) {
        L.circleMarker([v.lat, v.lon], {
          radius: v.flagged ? 10 : 8, color: v.flagged ? "#b71c1c" : "#333",
          weight: v.flagged ? 4 : 1, fillColor: v.color, fillOpacity: 0.9,
          className: "fs-visit fs-band-" + v.band + (v.flagged ? " fs-flagged" : "")
        }).bindPopup('<a href="' + encodeURI(v.href) + '"></a>')
          .on("popupopen", function (e) {
            var a = e.popup.getElement().querySelector("a");
            if (a) a.textContent = v.label;
          })
          .addTo(map);
        points.push([v.lat, v.lon]);
      });
    }
    if (points.length > 1) map.fitBounds(points, { padding: [30, 30], maxZoom: 18 });
    else if (points.length === 1) map.setView(points[0], 17);
    else map.setView([50.45, 30.52], 11);
    el.setAttribute("data-state", "drawn");
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
