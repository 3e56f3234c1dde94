/* Live updates for the inbox and thread pages (progressive enhancement).
 *
 * Listens to the server's event stream (/events, this origin only) and, when the revision
 * changes, fetches this page again and swaps in the part marked id="live". Nothing but a
 * revision number and a thread id comes over the stream. Without JavaScript the page
 * refreshes itself every minute instead (a <noscript> meta refresh).
 */
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var status = document.getElementById("live-status");
  var shown = live.getAttribute("data-revision");
  var busy = false;
  var again = false;

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(window.location.pathname + window.location.search, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "X-Live-Refresh": "1" }
    }).then(function (response) {
      if (response.status === 401 || response.redirected || !response.ok) {
        window.location.reload();
        return null;
      }
      return response.text();
    }).then(function (html) {
      if (html === null) {
        return;
      }
      var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
      if (!fresh) {
        window.location.reload();
        return;
      }
      var nodes = Array.prototype.slice.call(fresh.childNodes).map(function (node) {
        return document.importNode(node, true);
      });
      live.replaceChildren.apply(live, nodes);
      shown = fresh.getAttribute("data-revision");
      live.setAttribute("data-revision", shown);
      var now = new Date();
      say("Updated at " + now.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" }) + ": something new arrived.");
    }).catch(function () {
      say("Could not update this page. Reload it to see the latest.");
    }).then(function () {
      busy = false;
      if (again) {
        again = false;
        refresh();
      }
    });
  }

  var source = new EventSource("/events");
  source.addEventListener("revision", function (event) {
    var revision;
    try {
      var data = JSON.parse(event.data);
      revision = String(typeof data === "object" && data !== null ? data.revision : data);
    } catch (ignored) {
      revision = String(event.data);
    }
    if (revision !== shown) {
      refresh();
    }
  });
  source.addEventListener("signed-out", function () {
    source.close();
    window.location.reload();
  });
})();
