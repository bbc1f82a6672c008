// Baton: the pages work without this; it only makes them nicer.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Confirm destructive actions.
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  });

  function ready(fn) { if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); } }

  ready(function () {
    // When: show only the fields of the chosen trigger, and the next times live.
    var form = document.getElementById("schedule-form");
    if (form) {
      var radios = form.querySelectorAll("input[name=trigger_type]");
      var showTrigger = function () {
        var chosen = form.querySelector("input[name=trigger_type]:checked");
        var t = chosen ? chosen.value : "manual";
        form.querySelectorAll(".trig").forEach(function (el) { el.style.display = el.classList.contains("trig-" + t) ? "" : "none"; });
      };
      radios.forEach(function (r) { r.addEventListener("change", function () { showTrigger(); previewTrigger(); }); });
      showTrigger();
      var hint = document.getElementById("trigger-preview");
      var timer = null;
      var previewTrigger = function () {
        if (!hint) { return; }
        var t = (form.querySelector("input[name=trigger_type]:checked") || {}).value || "manual";
        var trig = { type: t };
        if (t === "cron") { trig.expr = form.cron_expr.value; trig.time_zone = form.cron_zone.value || null; }
        if (t === "interval") { trig.seconds = parseInt(form.interval_seconds.value, 10) || 0; }
        if (t === "once") { trig.at = form.once_at.value; }
        fetch("/trigger-preview", { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": hint.dataset.csrf }, body: JSON.stringify({ trigger: trig, env: hint.dataset.env }) })
          .then(function (r) { return r.json(); })
          .then(function (j) {
            hint.textContent = j.error ? j.error : (j.description + (j.next.length ? " · Next: " + j.next.join(", ") : ""));
          })
          .catch(function () {});
      };
      ["cron_expr", "cron_zone", "interval_seconds", "once_at"].forEach(function (n) {
        var el = form.elements[n];
        if (el) { el.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(previewTrigger, 300); }); }
      });

      // Kind help follows the select.
      var kind = document.getElementById("kind");
      var help = document.getElementById("kind-help");
      if (kind && help) {
        kind.addEventListener("change", function () {
          var o = kind.options[kind.selectedIndex];
          help.textContent = "Parameters: " + o.dataset.params + " (* required) · outputs: " + o.dataset.outputs;
        });
      }

      // + add parameter: clone the last row with the next index.
      var add = document.getElementById("add-param");
      if (add) {
        add.addEventListener("click", function () {
          var body = document.getElementById("param-rows");
          var rows = body.querySelectorAll("tr.param-row");
          var last = rows[rows.length - 1];
          var next = rows.length;
          var clone = last.cloneNode(true);
          clone.querySelectorAll("input").forEach(function (i) {
            i.name = i.name.replace(/^p\d+_/, "p" + next + "_");
            if (i.type === "checkbox") { i.checked = false; } else if (i.type !== "hidden") { i.value = ""; }
          });
          clone.querySelectorAll("input[type=hidden], .secret, .field-error").forEach(function (el) { el.remove(); });
          body.appendChild(clone);
        });
      }

      // Run another task: the chain list follows the environment; the advanced JSON follows
      // the fields (unless it was edited by hand).
      form.querySelectorAll(".hop").forEach(function (hop) {
        var env = hop.querySelector(".hop-env");
        var chain = hop.querySelector(".hop-chain");
        var accepts = hop.querySelector(".accepts");
        if (!env || !chain) { return; }
        var filter = function () {
          Array.prototype.forEach.call(chain.options, function (o) { if (o.value) { o.hidden = o.dataset.env !== env.value; } });
          var sel = chain.options[chain.selectedIndex];
          if (sel && sel.value && sel.dataset.env !== env.value) { chain.value = ""; }
        };
        env.addEventListener("change", filter);
        chain.addEventListener("change", function () {
          var sel = chain.options[chain.selectedIndex];
          if (accepts) { accepts.textContent = sel && sel.value ? "→ accepts: " + sel.dataset.settable : ""; }
          var list = document.getElementById("settable-" + hop.dataset.hop);
          if (list && sel) {
            list.innerHTML = "";
            (sel.dataset.settable || "").split(", ").forEach(function (s) { if (s) { var o = document.createElement("option"); o.value = s; list.appendChild(o); } });
          }
        });
        filter();
      });
      var json = document.getElementById("chain_json");
      var original = form.elements.chain_json_original;
      var compose = function () {
        if (!json || json.value.trim() !== (original ? original.value.trim() : "")) { return; }
        var hops = [];
        form.querySelectorAll(".hop").forEach(function (hop) {
          var j = hop.dataset.hop;
          var name = form.elements["h" + j + "_chain"].value;
          if (!name) { return; }
          var h = {};
          var envName = form.elements["h" + j + "_env"].value;
          if (envName !== document.getElementById("trigger-preview").dataset.env) { h.customerId = envName; }
          h.name = name;
          var params = [];
          for (var k = 0; form.elements["h" + j + "_p" + k + "_name"]; k++) {
            var pn = form.elements["h" + j + "_p" + k + "_name"].value;
            if (!pn) { continue; }
            var sealed = form.elements["h" + j + "_p" + k + "_sealed"] || form.elements["h" + j + "_p" + k + "_carry"];
            var v = form.elements["h" + j + "_p" + k + "_value"].value;
            var p = { name: pn, value: (sealed && !v) ? null : v };
            if (sealed && !v) { p.is_set = true; }
            if (form.elements["h" + j + "_p" + k + "_encrypt"].checked || sealed) { p.encrypt = true; }
            params.push(p);
          }
          if (params.length) { h.params = params; }
          var when = form.elements["h" + j + "_when"].value;
          if (when !== "success") { h.when = when; }
          hops.push(h);
        });
        var text = hops.length === 0 ? "" : JSON.stringify(hops.length === 1 ? hops[0] : hops, null, 2);
        json.value = text;
        if (original) { original.value = text; }
      };
      form.querySelectorAll(".hop input, .hop select").forEach(function (el) { el.addEventListener("input", compose); el.addEventListener("change", compose); });
    }

    // A running run's log updates live.
    var log = document.getElementById("log");
    if (log && log.dataset.live === "true") {
      var after = parseInt(log.dataset.after, 10) || 0;
      var poll = function () {
        fetch(log.dataset.url + "?after=" + after)
          .then(function (r) { return r.json(); })
          .then(function (j) {
            j.lines.forEach(function (l) {
              var s = document.createElement("span");
              s.className = "l-" + l.stream;
              s.textContent = l.at.substring(11, 23) + " [" + l.stream + "] " + l.text + "\n";
              log.appendChild(s);
              after = l.seq;
            });
            var badge = document.getElementById("run-state");
            if (badge) { badge.textContent = j.state; }
            if (j.state === "queued" || j.state === "running") { setTimeout(poll, 1000); }
            else { var live = document.getElementById("live"); if (live) { live.textContent = "(finished — reload for outputs)"; } }
          })
          .catch(function () { setTimeout(poll, 3000); });
      };
      setTimeout(poll, 1000);
    }
  });
})();
