// The gallery: one row per case (prompt, reference images, each model's poster and scores),
// built from the JSON in <script id="gallery-data">. Filter by category and model, sort by any
// metric, search the prompt; rows are added 24 at a time as the page scrolls, and a poster
// becomes a <video> only when clicked, so 180 cases x 10 models stay light. No library.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("gallery-data").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var rowsBox = $("gallery-rows"), countBox = $("gallery-count");
  var CHUNK = 24, shown = [], rendered = 0;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function fmt(v) {
    if (v === null || v === undefined) return "\u2014";
    var a = Math.abs(v);
    return a !== 0 && (a < 0.001 || a >= 10000) ? v.toExponential(2) : v.toFixed(4);
  }
  function selectedModels() {
    return Array.prototype.filter.call(document.querySelectorAll("input.model-toggle"), function (box) {
      return box.checked;
    }).map(function (box) { return parseInt(box.value, 10); });
  }
  function sortValue(c, metric, who, models) {
    var m = data.metrics.indexOf(metric);
    var picks = who === "mean" ? models : [parseInt(who, 10)];
    var sum = 0, n = 0;
    picks.forEach(function (i) {
      var v = c.cells[i] ? c.cells[i].s[m] : null;
      if (v !== null && v !== undefined) { sum += v; n += 1; }
    });
    return n ? sum / n : null;
  }
  function apply() {
    var category = $("filter-category").value;
    var query = $("filter-search").value.trim().toLowerCase();
    var metric = $("sort-metric").value, who = $("sort-model").value;
    var descending = $("sort-order").value === "desc";
    var models = selectedModels();
    shown = data.cases.filter(function (c) {
      if (category && c.category !== category) return false;
      if (query && (c.prompt + " " + c.id).toLowerCase().indexOf(query) < 0) return false;
      return true;
    });
    if (metric) {
      var keyed = shown.map(function (c) { return [sortValue(c, metric, who, models), c]; });
      keyed.sort(function (a, b) {
        if (a[0] === null) return b[0] === null ? 0 : 1;
        if (b[0] === null) return -1;
        return descending ? b[0] - a[0] : a[0] - b[0];
      });
      shown = keyed.map(function (k) { return k[1]; });
    }
    document.querySelectorAll("#gallery-head .model-col").forEach(function (th) {
      th.hidden = models.indexOf(parseInt(th.getAttribute("data-model"), 10)) < 0;
    });
    rowsBox.textContent = "";
    rendered = 0;
    countBox.textContent = shown.length + " of " + data.cases.length + " cases";
    more();
  }
  function play(button, model, c) {
    var video = el("video", {controls: "", autoplay: "", muted: "", loop: "", playsinline: "", preload: "auto",
                             poster: button.getAttribute("data-poster") || "", "class": "clip"});
    video.muted = true;
    video.src = model.video + encodeURIComponent(c.id) + ".mp4";
    video.addEventListener("error", function () {
      var note = el("div", {"class": "reason"}, "video cannot be played here: " + video.src);
      if (video.parentNode) video.parentNode.replaceChild(note, video);
    });
    button.parentNode.replaceChild(video, button);
    var started = video.play();
    if (started && started.catch) started.catch(function () { /* the controls still work */ });
  }
  function cell(c, i) {
    var model = data.models[i], info = c.cells[i];
    var td = el("td", {"class": "model-col", "data-model": String(i)});
    if (!info) { td.appendChild(el("div", {"class": "reason"}, "not run on this case")); return td; }
    if (info.v) {
      var button = el("button", {"class": "poster", type: "button", title: "play " + model.name + " / " + c.id});
      if (info.p) {
        var src = model.poster + encodeURIComponent(c.id) + ".jpg";
        button.setAttribute("data-poster", src);
        button.appendChild(el("img", {src: src, loading: "lazy", alt: model.name + " " + c.id}));
      } else {
        button.appendChild(el("span", {"class": "noposter"}, "no poster"));
      }
      button.appendChild(el("span", {"class": "play"}, "\u25B6"));
      button.addEventListener("click", function () { play(button, model, c); });
      td.appendChild(button);
    } else {
      td.appendChild(el("div", {"class": "reason failed"}, info.g ? "generation failed: " + info.g : "no video"));
    }
    var list = el("dl", {"class": "scores"});
    data.metrics.forEach(function (metric, m) {
      var v = info.s[m], why = info.r && info.r[metric];
      if ((v === null || v === undefined) && !why) return;
      list.appendChild(el("dt", null, metric));
      var kind = why ? why.split(":")[0] : "";
      var dd = el("dd", why ? {"class": "reason " + kind.replace(/ /g, "-"), title: why} : null,
                  v === null || v === undefined ? why : fmt(v));
      list.appendChild(dd);
    });
    td.appendChild(list);
    return td;
  }
  function row(c, models) {
    var tr = el("tr", {"data-case": c.id, "data-category": c.category});
    var info = el("td", {"class": "case"});
    info.appendChild(el("div", {"class": "case-id"}, c.id));
    info.appendChild(el("div", {"class": "category"}, c.category));
    info.appendChild(el("p", {"class": "prompt"}, c.prompt || "(prompt unknown: the suite could not be loaded)"));
    var refs = el("div", {"class": "refs"});
    (c.refs || []).forEach(function (ref) {
      var figure = el("figure");
      if (ref[0]) figure.appendChild(el("img", {src: ref[0], loading: "lazy", alt: ref[2] || ref[1]}));
      else figure.appendChild(el("div", {"class": "reason"}, "image missing"));
      figure.appendChild(el("figcaption", null, [ref[1], ref[2]].filter(Boolean).join(": ")));
      refs.appendChild(figure);
    });
    info.appendChild(refs);
    tr.appendChild(info);
    data.models.forEach(function (_, i) {
      var td = cell(c, i);
      td.hidden = models.indexOf(i) < 0;
      tr.appendChild(td);
    });
    return tr;
  }
  function more() {
    var models = selectedModels(), stop = Math.min(rendered + CHUNK, shown.length);
    var fragment = document.createDocumentFragment();
    for (; rendered < stop; rendered++) fragment.appendChild(row(shown[rendered], models));
    rowsBox.appendChild(fragment);
  }
  ["filter-category", "sort-metric", "sort-model", "sort-order"].forEach(function (id) {
    $(id).addEventListener("change", apply);
  });
  $("filter-search").addEventListener("input", apply);
  document.querySelectorAll("input.model-toggle").forEach(function (box) { box.addEventListener("change", apply); });
  var sentinel = $("gallery-more");
  if ("IntersectionObserver" in window) {
    new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; }) && rendered < shown.length) more();
    }, {rootMargin: "800px"}).observe(sentinel);
  }
  sentinel.addEventListener("click", more);
  apply();
})();
