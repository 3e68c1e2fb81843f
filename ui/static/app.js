// glasspane pages: the run page's task side panel, relative times, the compare picker.
// Every link keeps working without this file; it only adds the side panel and niceties.
"use strict";

(function () {
  // ---- relative times ("5 min ago"), kept fresh --------------------------------------------
  function relative(date, now) {
    var seconds = (now - date) / 1000;
    var ahead = seconds < 0;
    seconds = Math.abs(seconds);
    var text;
    if (seconds < 5) return "just now";
    if (seconds < 60) text = Math.floor(seconds) + " s";
    else if (seconds < 3600) text = Math.floor(seconds / 60) + " min";
    else if (seconds < 86400) text = Math.floor(seconds / 3600) + " h";
    else if (seconds < 86400 * 60) {
      var days = Math.floor(seconds / 86400);
      text = days + (days > 1 ? " days" : " day");
    } else return date.toISOString().slice(0, 10);
    return ahead ? "in " + text : text + " ago";
  }

  function refreshTimes(root) {
    var now = Date.now();
    (root || document).querySelectorAll("time[data-relative]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (!isNaN(date)) el.textContent = relative(date, now);
    });
  }

  // ---- the task side panel -----------------------------------------------------------------
  var panel, body, fullLink, selected = null;

  function isTaskLink(link) {
    if (!link || !link.getAttribute) return false;
    var href = link.getAttribute("href") || "";
    // only our own task pages; group nodes link to ?expand=... and navigate as usual
    return href.indexOf("/runs/") === 0 && href.indexOf("/tasks/") > 0;
  }

  function select(node) {
    if (selected) selected.classList.remove("selected");
    selected = null;
    if (!node) return;
    var graph = document.getElementById("run-graph");
    if (!graph) return;
    var el = graph.querySelector('g.node[data-node="' + CSS.escape(node) + '"]');
    if (el) {
      el.classList.add("selected");
      selected = el;
    }
  }

  function openPanel(href) {
    var url = href + (href.indexOf("?") >= 0 ? "&" : "?") + "partial=1";
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (!response.ok || type.indexOf("text/html") !== 0) throw new Error(response.status);
        return response.text();
      })
      .then(function (html) {
        // server-rendered, autoescaped HTML from our own endpoint: safe to insert as HTML
        body.innerHTML = html;
        fullLink.setAttribute("href", href);
        panel.hidden = false;
        var detail = body.querySelector("[data-node]");
        select(detail ? detail.getAttribute("data-node") : null);
        refreshTimes(body);
        if (window.glasspaneLive) window.glasspaneLive.fillOutput(body);
        panel.focus();
      })
      .catch(function () {
        window.location.assign(href); // the full page says what went wrong
      });
  }

  function closePanel() {
    if (!panel) return;
    panel.hidden = true;
    body.innerHTML = "";
    select(null);
  }

  function setUpPanel() {
    var page = document.getElementById("run-page");
    panel = document.getElementById("task-panel");
    if (!page || !panel || panel.tagName !== "ASIDE") return;
    body = document.getElementById("task-panel-body");
    fullLink = document.getElementById("task-panel-full");
    panel.setAttribute("tabindex", "-1");
    page.addEventListener("click", function (event) {
      if (event.defaultPrevented || event.button !== 0) return;
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      var link = event.target.closest("a");
      if (!link || panel.contains(link) || !isTaskLink(link)) return;
      event.preventDefault();
      openPanel(link.getAttribute("href"));
    });
    document.getElementById("task-panel-close").addEventListener("click", closePanel);
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && !panel.hidden) closePanel();
    });
  }

  // ---- the runs list: pick two runs to compare ---------------------------------------------
  function setUpCompare() {
    var form = document.getElementById("compare-form");
    if (!form) return;
    var button = document.getElementById("compare-button");
    var picks = Array.prototype.slice.call(document.querySelectorAll("input.compare-pick"));
    var order = [];
    function update() {
      button.disabled = order.length !== 2;
    }
    picks.forEach(function (box) {
      if (box.checked) order.push(box);
      box.addEventListener("change", function () {
        order = order.filter(function (other) { return other !== box; });
        if (box.checked) order.push(box);
        while (order.length > 2) order.shift().checked = false;
        update();
      });
    });
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpPanel();
    setUpCompare();
    window.setInterval(refreshTimes, 30000);
  });
  window.glasspane = { refreshTimes: refreshTimes, closePanel: closePanel };
})();
