// glasspane live updates: on a run (or task) page of a run that is not over, follow the run's
// events (/api/runs/<id>/events, server-sent) and update what the page shows.
//
// The stream may replay events the page already shows (it starts at data-last-seq, 0 when the
// page cannot know): applying an event only sets a state, so replaying is harmless.
"use strict";

(function () {
  var OUTPUT_LIMIT = 64 * 1024; // per task and stream, as the engine streams at most
  var TERMINAL = ["succeeded", "failed", "upstream_failed", "cancelled", "crashed", "timed_out"];
  var SWAPPED = [
    "run-counts", "run-ended", "run-duration", "run-metrics-body", "run-output-body",
    "run-counts-live", "run-graph", "graph-groups", "run-timeline", "task-table"
  ];

  var root, runId, onlyNode, source;
  var latest = {}; // node -> {state, cached}: the newest state the events gave
  var output = {}; // node -> {stdout, stderr, log}
  var refreshTimer = null, refreshing = false, finished = false;

  function byData(container, name, value) {
    if (!container) return [];
    return container.querySelectorAll("[" + name + '="' + CSS.escape(value) + '"]');
  }

  function setClassState(el, state) {
    Array.prototype.slice.call(el.classList).forEach(function (name) {
      if (name.indexOf("state-") === 0) el.classList.remove(name);
    });
    el.classList.add("state-" + state);
    el.setAttribute("data-state", state);
  }

  function setBadge(badge, state) {
    setClassState(badge, state);
    badge.textContent = state.replace(/_/g, " ");
  }

  // Set a node's state in the graph and the task table; false if the page does not show it.
  function showState(node, state, cached) {
    var shown = false;
    byData(document.getElementById("run-graph"), "data-node", node).forEach(function (el) {
      if (!el.classList.contains("node")) return;
      setClassState(el, state);
      if (cached !== undefined) {
        el.classList.toggle("cached", cached);
        el.setAttribute("data-cached", cached ? "true" : "false");
      }
      shown = true;
    });
    byData(document.getElementById("task-table"), "data-node", node).forEach(function (row) {
      if (row.tagName !== "TR") return;
      row.setAttribute("data-state", state);
      var badge = row.querySelector(".badge");
      if (badge) setBadge(badge, state);
      shown = true;
    });
    return shown;
  }

  function taskState(node, state, cached) {
    latest[node] = { state: state, cached: cached };
    if (!showState(node, state, cached)) scheduleRefresh(); // e.g. a map's new element
  }

  // ---- redrawing the graph, timeline, table and counts from the server ----------------------
  function scheduleRefresh() {
    if (onlyNode || finished || refreshTimer !== null) return;
    later(refresh);
  }

  function later(work) {
    refreshTimer = window.setTimeout(work, 1000);
  }

  function refresh() {
    refreshTimer = null;
    if (refreshing) return later(refresh);
    refreshing = true;
    var params = new URLSearchParams(window.location.search);
    params.set("partial", "live");
    fetch(window.location.pathname + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.text();
      })
      .then(function (html) {
        // our own server-rendered, autoescaped fragment: parsed, never executed
        var doc = new DOMParser().parseFromString(html, "text/html");
        SWAPPED.forEach(function (id) {
          var fresh = doc.getElementById(id), old = document.getElementById(id);
          if (fresh && old) old.replaceWith(document.adoptNode(fresh));
        });
        Object.keys(latest).forEach(function (node) {
          showState(node, latest[node].state, latest[node].cached);
        });
        if (window.glasspane) window.glasspane.refreshTimes(document);
      })
      .catch(function () {})
      .then(function () { refreshing = false; });
  }

  // ---- captured output of running tasks ------------------------------------------------------
  function fillOutput(container) {
    (container || document).querySelectorAll("[data-live-output]").forEach(function (section) {
      var streams = output[section.getAttribute("data-live-output")] || {};
      Object.keys(streams).forEach(function (stream) {
        var box = section.querySelector('.stream[data-stream="' + stream + '"]');
        var pre = section.querySelector('pre[data-stream-text="' + stream + '"]');
        if (!box || !pre) return;
        var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.textContent = streams[stream];
        box.hidden = false;
        var none = section.querySelector("[data-no-output]");
        if (none) none.hidden = true;
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      });
    });
  }

  function addOutput(event) {
    var streams = output[event.node] || (output[event.node] = {});
    var text = (streams[event.stream] || "") + event.text;
    if (text.length > OUTPUT_LIMIT) text = text.slice(text.length - OUTPUT_LIMIT);
    streams[event.stream] = text;
    byData(document, "data-live-output", event.node).forEach(function (section) {
      fillOutput(section.parentNode);
    });
  }

  // ---- the run itself ------------------------------------------------------------------------
  function runState(state) {
    var badge = document.getElementById("run-state");
    if (badge) setBadge(badge, state);
    if (root) root.setAttribute("data-run-state", state);
  }

  function stop() {
    finished = true;
    if (source) source.close();
  }

  // The run is over: show it in place (a reload would lose what the user is looking at), and
  // offer a reload for what only a full page has (the retry form). On a task's own page,
  // reload once: the reloaded page of a finished task does not follow the run.
  function finish(state) {
    if (finished) return;
    stop();
    if (onlyNode) return window.location.reload();
    if (state) runState(state);
    if (refreshTimer !== null) window.clearTimeout(refreshTimer);
    refreshTimer = null;
    refresh();
    var cancel = document.getElementById("cancel-form");
    if (cancel) cancel.hidden = true;
    var notice = document.getElementById("run-finished-notice");
    if (notice) notice.hidden = false;
  }

  var handlers = {
    run_started: function () {
      // a queued run's page has no graph yet: its process has just recorded one, so show it
      if (root.getAttribute("data-run-state") === "queued" && !onlyNode) {
        stop();
        return window.location.reload();
      }
      runState("running");
    },
    task_started: function (e) { taskState(e.node, "running"); },
    attempt_finished: function (e) { taskState(e.node, "retrying"); },
    task_finished: function (e) {
      taskState(e.node, e.state, !!e.cached);
      if (onlyNode === e.node) finish();
      else scheduleRefresh();
    },
    task_skipped: function (e) {
      taskState(e.node, e.state);
      if (onlyNode === e.node) finish();
      else scheduleRefresh();
    },
    output_logged: addOutput,
    run_finished: function (e) { finish(e.state); }
  };

  function follow() {
    root = document.querySelector("[data-live-run]");
    if (!root || !window.EventSource) return;
    runId = root.getAttribute("data-live-run");
    onlyNode = root.getAttribute("data-live-node");
    var after = parseInt(root.getAttribute("data-last-seq") || "0", 10) || 0;
    source = new EventSource("/api/runs/" + encodeURIComponent(runId) + "/events?after=" + after);
    Object.keys(handlers).forEach(function (kind) {
      source.addEventListener(kind, function (message) {
        var event;
        try { event = JSON.parse(message.data); } catch (err) { return; }
        if (!onlyNode || !event.node || event.node === onlyNode) handlers[kind](event);
      });
    });
    source.addEventListener("error", function () {
      // The stream ended without run_finished (a crashed run) or the server went away: ask
      // whether the run is over before letting the browser reconnect again.
      if (finished) return;
      fetch("/api/runs/" + encodeURIComponent(runId), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (run) {
          if (run && TERMINAL.indexOf(run.state) >= 0) finish(run.state);
        })
        .catch(function () {});
    });
  }

  window.glasspaneLive = { fillOutput: fillOutput };
  document.addEventListener("DOMContentLoaded", follow);
})();
