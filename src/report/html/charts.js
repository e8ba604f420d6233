// Draws report.html's charts as SVG from the JSON embedded in the page (the
// application/json script element with id "squall-charts"): no library, no network. Every figure was computed by
// squall; this script only lays it out, and adds a tooltip on hover.
(function () {
  "use strict";

  var NS = "http://www.w3.org/2000/svg";
  // Okabe–Ito: told apart with every common kind of colour blindness.
  var COLORS = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#555555", "#000000"];
  var FAULT_COLORS = ["#e69f00", "#cc79a7", "#56b4e9", "#009e73", "#d55e00", "#7f7f7f"];
  // Charts are drawn in a 960-unit-wide box and scaled to the page's width.
  var WIDTH = 960;
  var LEFT = 72;
  var RIGHT = 24;
  var PLOT_W = WIDTH - LEFT - RIGHT;
  // A chart in one of two columns.
  var HALF_WIDTH = 470;

  // ---- small helpers -------------------------------------------------------------

  function el(parent, tag, attrs, text) {
    var e = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      e.setAttribute(k, attrs[k]);
    });
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function newSvg(box, height, label) {
    var svg = el(null, "svg", {
      viewBox: "0 0 " + WIDTH + " " + height,
      role: "img",
      "aria-label": label,
      class: "plot"
    });
    box.appendChild(svg);
    return svg;
  }

  function trim(s) {
    return s.indexOf(".") < 0 ? s : s.replace(/\.?0+$/, "");
  }

  function fmtNum(v) {
    var a = Math.abs(v);
    if (a >= 1e9) return trim((v / 1e9).toFixed(1)) + "G";
    if (a >= 1e6) return trim((v / 1e6).toFixed(1)) + "M";
    if (a >= 1e4) return trim((v / 1e3).toFixed(1)) + "k";
    return trim(v.toFixed(a >= 100 || v === Math.round(v) ? 0 : 2));
  }

  function fmtCount(v) {
    return Math.round(v).toLocaleString("en-US");
  }

  function fmtMs(ms) {
    if (ms === 0) return "0";
    if (ms < 1) return trim((ms * 1000).toFixed(0)) + " µs";
    if (ms < 1000) return trim(ms.toPrecision(3)) + " ms";
    return trim((ms / 1000).toPrecision(3)) + " s";
  }

  // "99.9%" for 3 nines; as many decimals as the nines need.
  function fmtPercentile(nines) {
    var p = 100 * (1 - Math.pow(10, -nines));
    var digits = Math.min(8, Math.max(0, Math.ceil(nines - 1e-9) - 1));
    return trim(p.toFixed(digits)) + "%";
  }

  // A round axis from lo (at most 0) to above hi, with about `count` ticks.
  function axis(lo, hi, count) {
    lo = Math.min(0, isFinite(lo) ? lo : 0);
    hi = isFinite(hi) && hi > lo ? hi : lo + 1;
    var raw = (hi - lo) / count;
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var norm = raw / mag;
    var step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
    var first = Math.floor(lo / step + 1e-9);
    var last = Math.ceil(hi / step - 1e-9);
    var ticks = [];
    for (var i = first; i <= last; i++) ticks.push(i * step);
    return { lo: first * step, hi: last * step, ticks: ticks };
  }

  function finiteMax(arrays) {
    var m = -Infinity;
    arrays.forEach(function (a) {
      a.forEach(function (v) {
        if (isFinite(v) && v > m) m = v;
      });
    });
    return m;
  }

  function finiteMin(arrays) {
    var m = Infinity;
    arrays.forEach(function (a) {
      a.forEach(function (v) {
        if (isFinite(v) && v < m) m = v;
      });
    });
    return m;
  }

  // Keys drawn in a row from (x, y); returns the x after the last one.
  function legend(g, x, y, items) {
    items.forEach(function (item) {
      el(g, "rect", { x: x, y: y - 6, width: 14, height: 4, rx: 1, fill: item.color, class: "key" });
      var t = el(g, "text", { x: x + 19, y: y, class: "legend" }, item.label);
      x += 19 + t.getComputedTextLength() + 18;
    });
    return x;
  }

  // Gridlines and labels of a value axis over a plot `width` wide (the page's by default).
  function yAxis(g, ax, top, height, fmt, width) {
    var right = LEFT + (width || PLOT_W);
    var y = function (v) {
      return top + height - ((v - ax.lo) / (ax.hi - ax.lo)) * height;
    };
    ax.ticks.forEach(function (v) {
      el(g, "line", { x1: LEFT, x2: right, y1: y(v), y2: y(v), class: v === 0 ? "zero" : "grid" });
      el(g, "text", { x: LEFT - 8, y: y(v) + 4, class: "tick", "text-anchor": "end" }, fmt(v));
    });
    return y;
  }

  function axisTitle(g, x, y, text, vertical) {
    var attrs = { x: x, y: y, class: "axis-title", "text-anchor": "middle" };
    if (vertical) attrs.transform = "rotate(-90 " + x + " " + y + ")";
    el(g, "text", attrs, text);
  }

  // ---- tooltip -------------------------------------------------------------------

  var tip = document.createElement("div");
  tip.className = "tooltip";
  tip.hidden = true;
  document.body.appendChild(tip);

  function showTip(evt, title, rows) {
    tip.textContent = "";
    var head = document.createElement("div");
    head.className = "tip-title";
    head.textContent = title;
    tip.appendChild(head);
    rows.forEach(function (r) {
      var line = document.createElement("div");
      line.className = "tip-row";
      var key = document.createElement("span");
      key.className = "swatch";
      if (r.color) key.style.background = r.color;
      line.appendChild(key);
      var label = document.createElement("span");
      label.className = "tip-label";
      label.textContent = r.label;
      line.appendChild(label);
      var value = document.createElement("span");
      value.className = "tip-value";
      value.textContent = r.value;
      line.appendChild(value);
      tip.appendChild(line);
    });
    tip.hidden = false;
    var x = evt.clientX + 16;
    var y = evt.clientY + 16;
    if (x + tip.offsetWidth > window.innerWidth - 8) x = evt.clientX - tip.offsetWidth - 16;
    if (y + tip.offsetHeight > window.innerHeight - 8) y = evt.clientY - tip.offsetHeight - 16;
    tip.style.left = Math.max(4, x) + "px";
    tip.style.top = Math.max(4, y) + "px";
  }

  function hideTip() {
    tip.hidden = true;
  }

  // The pointer's x in the chart's 960-wide coordinates.
  function pointerX(svg, evt) {
    var r = svg.getBoundingClientRect();
    return ((evt.clientX - r.left) * WIDTH) / (r.width || WIDTH);
  }

  // ---- timeline ------------------------------------------------------------------

  function drawTimeline(box, d) {
    var HEADER = 26;
    var PLOT_H = 112;
    var GAP = 14;
    var LABEL_ROW = 17;
    var t = d.t;
    var end = d.end_s > 0 ? d.end_s : 1;
    var sx = function (s) {
      return LEFT + (Math.max(0, Math.min(end, s)) / end) * PLOT_W;
    };

    // Fault labels go in rows above the panels, a row lower whenever two would overlap.
    var probe = newSvg(box, 10, "");
    var labels = [];
    var rowEnds = [];
    d.faults.forEach(function (f, i) {
      var x = sx(f.windows[0][0]);
      var text = el(probe, "text", { class: "fault-label" }, f.label);
      var w = text.getComputedTextLength() + 12;
      var row = 0;
      while (row < rowEnds.length && rowEnds[row] > x) row++;
      rowEnds[row] = x + w;
      labels.push({ x: x, row: row, fault: f, color: FAULT_COLORS[i % FAULT_COLORS.length] });
    });
    box.removeChild(probe);

    var top = 8 + rowEnds.length * LABEL_ROW;
    var panelTop = function (i) {
      return top + i * (HEADER + PLOT_H + GAP);
    };
    var bottom = panelTop(d.panels.length) - GAP;
    var height = bottom + 44;
    var svg = newSvg(box, height, "Timeline of the run, per second, with fault windows shaded");
    // Grids under the bands, bands under the lines.
    var grid = el(svg, "g", { class: "grid-layer" });
    labels.forEach(function (l) {
      l.fault.windows.forEach(function (w) {
        var x0 = sx(w[0]);
        var width = sx(w[1]) - x0;
        // A window too short to shade (a reset fires once) is drawn as a solid line.
        var instant = width < 3;
        var band = el(svg, "rect", {
          x: instant ? x0 - 1 : x0,
          y: top,
          width: instant ? 2.5 : width,
          height: bottom - top,
          fill: l.color,
          class: instant ? "fault-band instant" : "fault-band"
        });
        el(band, "title", {}, l.fault.label + ": " + fmtNum(w[0]) + " s – " + fmtNum(w[1]) + " s");
      });
      var y = 8 + l.row * LABEL_ROW + 11;
      el(svg, "rect", { x: l.x, y: y - 9, width: 4, height: 11, fill: l.color });
      el(svg, "text", { x: l.x + 7, y: y, class: "fault-label" }, l.fault.label);
    });

    // Time ticks, shared by every panel.
    var xt = axis(0, end, 10);
    d.panels.forEach(function (p, i) {
      var g = el(svg, "g", { class: "panel" });
      var y0 = panelTop(i) + HEADER;
      var tx = el(g, "text", { x: LEFT, y: panelTop(i) + 16, class: "panel-title" }, p.title);
      var colors = p.series.map(function (s, k) {
        return COLORS[k % COLORS.length];
      });
      legend(g, LEFT + tx.getComputedTextLength() + 24, panelTop(i) + 16, p.series.map(function (s, k) {
        return { label: s.label, color: colors[k] };
      }));
      var values = p.series.map(function (s) {
        return s.values;
      });
      var ax = axis(finiteMin(values), finiteMax(values), 4);
      if (ax.hi <= 0) ax = axis(0, 1, 4);
      var y = yAxis(grid, ax, y0, PLOT_H, fmtNum);
      axisTitle(g, 18, y0 + PLOT_H / 2, p.unit, true);
      xt.ticks.forEach(function (s) {
        if (s > end) return;
        el(grid, "line", { x1: sx(s), x2: sx(s), y1: y0, y2: y0 + PLOT_H, class: "grid" });
      });
      el(g, "rect", { x: LEFT, y: y0, width: PLOT_W, height: PLOT_H, class: "frame" });
      p.series.forEach(function (s, k) {
        var path = "";
        var pen = false;
        s.values.forEach(function (v, j) {
          if (!isFinite(v)) {
            pen = false;
            return;
          }
          path += (pen ? "L" : "M") + sx(t[j]).toFixed(1) + " " + y(v).toFixed(1);
          if (p.step) path += "L" + sx(t[j] + 1).toFixed(1) + " " + y(v).toFixed(1);
          pen = true;
        });
        // Later series are thinner, so one drawn over an equal one still lets it show.
        el(g, "path", { d: path, stroke: colors[k], class: "series s" + Math.min(k, 3) });
        if (!p.step && s.values.length === 1) {
          el(g, "circle", { cx: sx(t[0]), cy: y(s.values[0]), r: 3.5, fill: colors[k] });
        }
      });
      p.colors = colors;
    });

    var axisY = bottom + 18;
    xt.ticks.forEach(function (s) {
      if (s > end) return;
      el(svg, "text", { x: sx(s), y: axisY, class: "tick", "text-anchor": "middle" }, fmtNum(s));
    });
    axisTitle(svg, LEFT + PLOT_W / 2, axisY + 20, "seconds since the start", false);

    // Hover: the second under the pointer, its figures and the faults active then.
    var mark = el(svg, "rect", { x: 0, y: top, width: 0, height: bottom - top, class: "hover", visibility: "hidden" });
    var overlay = el(svg, "rect", { x: LEFT, y: top, width: PLOT_W, height: bottom - top, class: "overlay" });
    overlay.addEventListener("mousemove", function (evt) {
      var s = ((pointerX(svg, evt) - LEFT) / PLOT_W) * end;
      var i = rowAt(t, s);
      if (i < 0) return hideTip();
      mark.setAttribute("x", sx(t[i]));
      mark.setAttribute("width", Math.max(1, sx(t[i] + 1) - sx(t[i])));
      mark.setAttribute("visibility", "visible");
      var rows = [];
      d.panels.forEach(function (p) {
        p.series.forEach(function (ser, k) {
          rows.push({ color: p.colors[k], label: ser.label, value: fmtCount(ser.values[i]) });
        });
      });
      var active = d.active[i] || [];
      rows.push({ label: "faults active", value: active.length ? active.join(", ") : "none" });
      showTip(evt, "second " + t[i] + " – " + (t[i] + 1), rows);
    });
    overlay.addEventListener("mouseleave", function () {
      mark.setAttribute("visibility", "hidden");
      hideTip();
    });
  }

  // The row whose second holds s (rows sorted by t), or -1.
  function rowAt(t, s) {
    var lo = 0;
    var hi = t.length - 1;
    var found = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (t[mid] <= s) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found >= 0 && s < t[found] + 1 ? found : -1;
  }

  // ---- percentile curves ---------------------------------------------------------

  function drawCurves(box, d) {
    var TOP = 40;
    var PLOT_H = 300;
    var height = TOP + PLOT_H + 56;
    var svg = newSvg(box, height, "Latency by percentile");
    var maxX = 0;
    d.curves.forEach(function (c) {
      c.points.forEach(function (p) {
        if (isFinite(p[0]) && p[0] > maxX) maxX = p[0];
      });
    });
    var nines = Math.max(2, Math.ceil(maxX - 1e-9));
    var sx = function (x) {
      return LEFT + (x / nines) * PLOT_W;
    };
    var ys = d.curves.map(function (c) {
      return c.points.map(function (p) {
        return p[1];
      });
    });
    var ax = axis(0, finiteMax(ys), 6);
    var y = yAxis(svg, ax, TOP, PLOT_H, fmtMs);
    for (var k = 0; k <= nines; k++) {
      el(svg, "line", { x1: sx(k), x2: sx(k), y1: TOP, y2: TOP + PLOT_H, class: "grid" });
      el(svg, "text", { x: sx(k), y: TOP + PLOT_H + 18, class: "tick", "text-anchor": "middle" }, fmtPercentile(k));
    }
    el(svg, "rect", { x: LEFT, y: TOP, width: PLOT_W, height: PLOT_H, class: "frame" });
    axisTitle(svg, LEFT + PLOT_W / 2, TOP + PLOT_H + 40, "percentile (log scale of nines)", false);
    axisTitle(svg, 18, TOP + PLOT_H / 2, d.y_label, true);
    var colors = d.curves.map(function (c, i) {
      return COLORS[i % COLORS.length];
    });
    legend(svg, LEFT, 20, d.curves.map(function (c, i) {
      return { label: c.label + " (" + fmtCount(c.count) + " samples)", color: colors[i] };
    }));
    d.curves.forEach(function (c, i) {
      var path = c.points
        .map(function (p, j) {
          return (j ? "L" : "M") + sx(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1);
        })
        .join("");
      el(svg, "path", { d: path, stroke: colors[i], class: "series" + (i === 0 ? " total" : "") });
      if (c.points.length === 1) {
        el(svg, "circle", { cx: sx(c.points[0][0]), cy: y(c.points[0][1]), r: 4, fill: colors[i] });
      }
    });

    var cursor = el(svg, "line", { x1: 0, x2: 0, y1: TOP, y2: TOP + PLOT_H, class: "cursor", visibility: "hidden" });
    var overlay = el(svg, "rect", { x: LEFT, y: TOP, width: PLOT_W, height: PLOT_H, class: "overlay" });
    overlay.addEventListener("mousemove", function (evt) {
      var x = Math.max(0, Math.min(nines, ((pointerX(svg, evt) - LEFT) / PLOT_W) * nines));
      cursor.setAttribute("x1", sx(x));
      cursor.setAttribute("x2", sx(x));
      cursor.setAttribute("visibility", "visible");
      var rows = d.curves.map(function (c, i) {
        // The value at this percentile: the first point at or beyond it.
        var at = null;
        for (var j = 0; j < c.points.length; j++) {
          if (c.points[j][0] >= x - 1e-9) {
            at = c.points[j][1];
            break;
          }
        }
        return { color: colors[i], label: c.label, value: at === null ? "beyond max" : fmtMs(at) };
      });
      showTip(evt, "p" + fmtPercentile(x).replace("%", ""), rows);
    });
    overlay.addEventListener("mouseleave", function () {
      cursor.setAttribute("visibility", "hidden");
      hideTip();
    });
  }

  // ---- bars ----------------------------------------------------------------------

  function drawBars(box, d) {
    var TOP = d.series.length > 1 ? 40 : 22;
    var PLOT_H = 220;
    var lines = d.categories.reduce(function (m, c) {
      return Math.max(m, c.split("\n").length);
    }, 1);
    var height = TOP + PLOT_H + 28 + lines * 15 + 20;
    var n = Math.max(1, d.categories.length);
    var m = Math.max(1, d.series.length);
    // A few bars stay narrow and close, in half the page's width: bar charts sit in
    // pairs. One with many bars takes the whole row, at the scale of the other charts.
    var band = Math.min(PLOT_W / n, 40 + 36 * m);
    var plotW = band * n;
    var width = Math.max(LEFT + plotW + RIGHT, HALF_WIDTH);
    var svg = newSvg(box, height, "Bar chart");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    if (width > HALF_WIDTH) {
      box.parentNode.classList.add("wide");
      svg.style.width = ((100 * width) / WIDTH).toFixed(2) + "%";
    }
    var barW = Math.min(56, (band * 0.78) / m);
    var values = d.series.map(function (s) {
      return s.values;
    });
    var max = finiteMax(values);
    var y;
    if (d.log) {
      // Powers of ten from 1; a bar of 1 still shows, rising from half a sample.
      var decades = Math.max(1, Math.ceil(Math.log10(Math.max(1, max)) - 1e-9));
      var lo = Math.log10(0.5);
      y = function (v) {
        if (!(v > 0)) return TOP + PLOT_H;
        return TOP + PLOT_H - ((Math.log10(v) - lo) / (decades - lo)) * PLOT_H;
      };
      for (var k = 0; k <= decades; k++) {
        var v = Math.pow(10, k);
        el(svg, "line", { x1: LEFT, x2: LEFT + plotW, y1: y(v), y2: y(v), class: "grid" });
        el(svg, "text", { x: LEFT - 8, y: y(v) + 4, class: "tick", "text-anchor": "end" }, fmtNum(v));
      }
    } else {
      y = yAxis(svg, axis(0, max, 4), TOP, PLOT_H, fmtNum, plotW);
    }
    axisTitle(svg, 18, TOP + PLOT_H / 2, d.y_label + (d.log ? " (log scale)" : ""), true);
    var colors = d.series.map(function (s, i) {
      return COLORS[(d.series.length > 1 ? i + 1 : 0) % COLORS.length];
    });
    if (d.series.length > 1) {
      legend(svg, LEFT, 20, d.series.map(function (s, i) {
        return { label: s.label, color: colors[i] };
      }));
    }
    var totals = d.series.map(function (s) {
      return s.values.reduce(function (a, b) {
        return a + (isFinite(b) ? b : 0);
      }, 0);
    });
    var labelEvery = Math.ceil(22 / band);
    d.categories.forEach(function (cat, i) {
      var x0 = LEFT + i * band + (band - barW * m) / 2;
      d.series.forEach(function (s, j) {
        var v = s.values[i];
        var top = y(v);
        var rect = el(svg, "rect", {
          x: x0 + j * barW,
          y: top,
          width: Math.max(1, barW - 2),
          height: Math.max(0, TOP + PLOT_H - top),
          fill: colors[j],
          class: "bar"
        });
        var share = totals[j] > 0 ? " (" + trim(((100 * v) / totals[j]).toFixed(2)) + "%)" : "";
        el(rect, "title", {}, s.label + " · " + d.x_label + " " + cat.replace("\n", " ") + ": " + fmtCount(v) + share);
        if (barW >= 18 && v > 0) {
          el(svg, "text", { x: x0 + j * barW + barW / 2 - 1, y: top - 4, class: "bar-value", "text-anchor": "middle" }, fmtNum(v));
        }
      });
      if (i % labelEvery === 0) {
        var text = el(svg, "text", { x: LEFT + i * band + band / 2, y: TOP + PLOT_H + 18, class: "tick", "text-anchor": "middle" });
        cat.split("\n").forEach(function (line, k) {
          el(text, "tspan", { x: LEFT + i * band + band / 2, dy: k ? 14 : 0 }, line);
        });
      }
    });
    el(svg, "line", { x1: LEFT, x2: LEFT + plotW, y1: TOP + PLOT_H, y2: TOP + PLOT_H, class: "zero" });
    axisTitle(svg, LEFT + plotW / 2, height - 8, d.x_label, false);
  }

  // ---- main ----------------------------------------------------------------------

  var DRAW = { timeline: drawTimeline, curves: drawCurves, bars: drawBars };
  var data = JSON.parse(document.getElementById("squall-charts").textContent);
  var drawn = 0;
  document.querySelectorAll("[data-chart]").forEach(function (box) {
    var chart = data.charts[box.getAttribute("data-chart")];
    try {
      if (!chart || !DRAW[chart.type]) throw new Error("no data for chart " + box.id);
      DRAW[chart.type](box, chart);
      box.setAttribute("data-drawn", "true");
      drawn++;
    } catch (e) {
      // One broken chart must not take the others down; the guard shows the error.
      console.error("chart " + box.id + ": " + (e && e.stack ? e.stack : e));
    }
  });
  document.documentElement.setAttribute("data-charts-drawn", String(drawn));
})();
