// ReelForge studio: live progress from the API's server-sent events, the seed re-roll, and
// confirmations. Pages work without it; it only spares reloads. Text goes in with textContent only.
"use strict";

function watch(card) {
  var id = card.dataset.videoId;
  var bar = card.querySelector("progress");
  var pct = card.querySelector(".pct");
  var statusText = card.querySelector(".status-text");
  var source = new EventSource("/v1/videos/" + encodeURIComponent(id) + "/events");
  source.addEventListener("video", function (event) {
    var video = JSON.parse(event.data);
    bar.value = video.progress;
    bar.textContent = video.progress + "%";
    pct.textContent = video.progress + "%";
    statusText.textContent = video.status.replace("_", " ");
    card.dataset.status = video.status;
    if (video.status === "completed") {
      source.close();
      card.querySelector(".progress-wrap").hidden = true;
      var result = card.querySelector(".result");
      var player = result.querySelector("video");
      player.src = player.dataset.src;
      result.hidden = false;
    } else if (video.status === "failed") {
      source.close();
      statusText.textContent = "failed: " + (video.error ? video.error.message : "unknown error");
    }
  });
  source.addEventListener("deleted", function () { source.close(); card.remove(); });
  source.addEventListener("error", function (event) {
    if (event.data) {  // the server's own error event (signed out, suspended): stop, do not retry
      source.close();
      statusText.textContent = JSON.parse(event.data).error.message;
    }
  });
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".card[data-status='queued'], .card[data-status='in_progress']").forEach(watch);

  var reroll = document.getElementById("reroll");
  if (reroll) {
    reroll.addEventListener("click", function () {
      var words = new Uint32Array(1);
      window.crypto.getRandomValues(words);
      document.getElementById("seed").value = words[0] % 2147483648;
    });
  }

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
});
