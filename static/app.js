// The upload page: checks the photo, lets the person pick the region, runs the job and shows the comparison.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const app = $("app");
  const MAX_BYTES = Math.round(parseFloat(app.dataset.maxMb) * 1000000);
  const MIN_SIDE = parseInt(app.dataset.minSide, 10);
  const MAX_PIXELS = parseInt(app.dataset.maxPixels, 10);
  const SCALE = parseInt(app.dataset.scale, 10);
  const POLL_MS = 500;
  // The divider moves by this many percent of the image per arrow key, and ten times as far per page key.
  const KEY_STEP = 2;
  const FORMAT_NAMES = { png: "PNG", webp: "WebP", jpeg: "JPEG" };
  // With API keys on and no page session (page_session false) the page asks for a key, kept in this browser.
  const NEEDS_KEY = app.dataset.needsKey === "true";
  const KEY_STORE = "zssr-api-key";

  const state = {
    file: null, url: null, width: 0, height: 0, region: null, jobId: null, timer: null, busy: false,
    // The comparison: what is left of the divider ("bicubic", "original") or all side by side ("side"); where the
    // divider is, in percent of the image's width; the zoom (0 fits the card, else screen pixels per image pixel).
    view: "bicubic", percent: 50, zoom: 0, outputWidth: 0, dragging: null,
  };

  function show(id, visible) { $(id).hidden = !visible; }

  function apiKey() {
    if (!NEEDS_KEY) return "";
    try { return localStorage.getItem(KEY_STORE) || ""; } catch (e) { return $("api-key").value.trim(); }
  }

  function saveKey() {
    try { localStorage.setItem(KEY_STORE, $("api-key").value.trim()); } catch (e) { /* read from the field */ }
  }

  // fetch() on the API, with the key as the API takes it when the page has one.
  function api(url, options = {}) {
    const headers = new Headers(options.headers || {});
    const key = apiKey();
    if (key) headers.set("Authorization", "Bearer " + key);
    return fetch(url, { ...options, headers });
  }

  // An image of the API as a URL for <img> and <a>: itself, or with a key (which an <img> cannot send) a blob.
  async function imageUrl(url) {
    if (!apiKey()) return url;
    const response = await api(url);
    if (!response.ok) throw new Error(`The server answered ${response.status} for the image.`);
    return URL.createObjectURL(await response.blob());
  }

  function showError(message) {
    $("error").textContent = message;
    show("error", true);
  }

  function clearError() { show("error", false); }

  function megabytes(bytes) {
    return bytes < 1000000 ? Math.max(1, Math.round(bytes / 1000)) + " KB" : (bytes / 1000000).toFixed(1) + " MB";
  }

  function cropSize() { return parseInt($("crop-size").value, 10); }

  // The region actually enlarged: the chosen size, shrunk to the photo.
  function regionSize() {
    const size = cropSize();
    return { width: Math.min(size, state.width), height: Math.min(size, state.height) };
  }

  async function isJpeg(file) {
    const head = new Uint8Array(await file.slice(0, 3).arrayBuffer());
    return head.length === 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff;
  }

  async function choose(file) {
    clearError();
    if (!file) return;
    if (file.size > MAX_BYTES) {
      showError(`That file is ${megabytes(file.size)}; photos up to ${megabytes(MAX_BYTES)} are accepted.`);
      return;
    }
    if (!(await isJpeg(file))) {
      showError("That file is not a JPG photo. Please choose a .jpg file.");
      return;
    }
    if (state.url) URL.revokeObjectURL(state.url);
    state.file = file;
    state.url = URL.createObjectURL(file);
    state.region = null;
    const thumb = $("thumb");
    thumb.onload = () => {
      state.width = thumb.naturalWidth;
      state.height = thumb.naturalHeight;
      if (Math.min(state.width, state.height) < MIN_SIDE) {
        showError(`That photo is ${state.width} × ${state.height} pixels; it needs at least ${MIN_SIDE} on each side.`);
        return;
      }
      if (state.width * state.height > MAX_PIXELS) {
        showError(`That photo has ${state.width} × ${state.height} pixels, more than the ${MAX_PIXELS.toLocaleString()} accepted.`);
        return;
      }
      $("photo-info").textContent = `${file.name || "Photo"}: ${state.width} × ${state.height} px, ${megabytes(file.size)}`;
      drawRegion(null);
      show("pick", false);
      show("result", false);
      show("setup", true);
    };
    thumb.onerror = () => showError("That file could not be read as a photo. It may be damaged.");
    thumb.src = state.url;
  }

  // Draws the region on the thumbnail in percentages, so it follows the thumbnail's displayed size.
  function drawRegion(box) {
    const rect = $("crop-rect");
    if (!box) {
      rect.hidden = true;
      $("region-info").textContent = "Region: chosen at random. Click the photo to choose it yourself.";
      return;
    }
    rect.style.left = (100 * box.x / state.width) + "%";
    rect.style.top = (100 * box.y / state.height) + "%";
    rect.style.width = (100 * box.width / state.width) + "%";
    rect.style.height = (100 * box.height / state.height) + "%";
    rect.hidden = false;
    $("region-info").textContent = `Region: ${box.width} × ${box.height} px at (${box.x}, ${box.y}).`;
  }

  function pickRegion(event) {
    const thumb = $("thumb");
    const bounds = thumb.getBoundingClientRect();
    const size = regionSize();
    const cx = (event.clientX - bounds.left) / bounds.width * state.width;
    const cy = (event.clientY - bounds.top) / bounds.height * state.height;
    const clamp = (v, hi) => Math.max(0, Math.min(hi, Math.round(v)));
    state.region = {
      x: clamp(cx - size.width / 2, state.width - size.width),
      y: clamp(cy - size.height / 2, state.height - size.height),
      width: size.width, height: size.height,
    };
    drawRegion(state.region);
  }

  async function readJson(response) {
    try { return await response.json(); } catch (e) { return null; }
  }

  async function start() {
    clearError();
    if (NEEDS_KEY && !apiKey()) return showError("This service needs an API key: enter it at the top of the page.");
    const form = new FormData();
    form.append("image", state.file, state.file.name || "photo.jpg");
    form.append("scale", $("scale").value);
    form.append("format", $("format").value);
    if ($("region-kind").value === "whole") {
      form.append("region", "whole");
    } else {
      form.append("crop", String(cropSize()));
      if (state.region) {
        form.append("x", String(state.region.x));
        form.append("y", String(state.region.y));
      }
    }
    setBusy(true);
    show("result", false);
    show("running", true);
    setProgress(0, "Sending the photo…");
    let response;
    try {
      response = await api("/api/jobs", { method: "POST", body: form });
    } catch (e) {
      return fail("The server could not be reached. Please check your connection and try again.");
    }
    const body = await readJson(response);
    if (response.status !== 202 || !body) {
      return fail(body && body.message ? capitalise(body.message) + "." : `The server answered ${response.status}.`);
    }
    state.jobId = body.id;
    update(body);
  }

  // While a job runs the photo and its region stay in view, but cannot be changed.
  function setBusy(busy) {
    state.busy = busy;
    for (const id of ["start", "random-region", "other-photo", "crop-size"]) $(id).disabled = busy;
  }

  function capitalise(text) { return text.charAt(0).toUpperCase() + text.slice(1); }

  function fail(message) {
    stopPolling();
    setBusy(false);
    show("running", false);
    show("setup", true);
    showError(message);
  }

  function stopPolling() {
    if (state.timer) clearTimeout(state.timer);
    state.timer = null;
  }

  async function poll() {
    let response;
    try {
      response = await api(`/api/jobs/${state.jobId}`, { cache: "no-store" });
    } catch (e) {
      state.timer = setTimeout(poll, POLL_MS * 4);  // a blip in the connection: keep trying
      return;
    }
    const body = await readJson(response);
    if (!response.ok || !body) {
      return fail(body && body.message ? capitalise(body.message) + "." : `The server answered ${response.status}.`);
    }
    update(body);
  }

  function setProgress(fraction, text) {
    $("bar").value = fraction;
    $("bar").textContent = Math.round(fraction * 100) + "%";
    $("status-line").textContent = text;
  }

  function describe(job) {
    const p = job.progress;
    if (job.status === "queued") {
      const ahead = job.queue_position - 1;
      return ahead > 0 ? `Waiting in line: ${ahead} job${ahead > 1 ? "s" : ""} ahead.` : "Starting…";
    }
    if (job.cancel_requested) return "Stopping…";
    if (!p.step) return "Starting…";
    const parts = [`Step ${p.step} of ${p.steps}`];
    parts.push(p.phase === "enlarging" ? "enlarging" : `training, iteration ${p.iteration}`);
    if (p.eta_s !== null && p.eta_s !== undefined) parts.push(`about ${Math.max(1, Math.round(p.eta_s))} s left`);
    return parts.join(" · ");
  }

  function update(job) {
    stopPolling();
    if (job.status === "done") {
      setProgress(1, "Done.");
      return showResult(job.result).catch((e) => fail(e.message));
    }
    if (job.status === "failed") {
      return fail(job.error ? capitalise(job.error.message) + "." : "The enlargement failed.");
    }
    if (job.status === "cancelled") {
      return fail("Cancelled. Nothing was kept.");
    }
    if (!state.region) drawRegion(job.crop);  // a random region, chosen by the server
    setProgress(job.progress.fraction, describe(job));
    state.timer = setTimeout(poll, POLL_MS);
  }

  // Which gradual steps enlarged as the median over the 8 rotations and flips of their input (self-ensemble).
  function describeEnsemble(ensembled, steps) {
    if (!ensembled) return "";
    const which = ensembled >= steps ? (steps === 1 ? "the step" : "every step") :
      ensembled === 1 ? "step 1" : `steps 1–${ensembled}`;
    return `; ${which} as the median of 8 rotated and flipped passes`;
  }

  // The input profile: the settings made for this kind of input, and what chose them.
  const PROFILE_NAMES = {
    photo: "photo", blurry_photo: "blurry photo", lossless: "lossless image",
    kernel_given: "blur kernel given", kernel_estimated: "blur kernel estimated",
  };
  function describeProfile(profile) {
    if (!profile || !profile.name) return "none (the config's settings as they are)";
    return `${PROFILE_NAMES[profile.name] || profile.name} settings, chosen by ${profile.chosen_by}`;
  }

  async function showResult(result) {
    const [before, after, download] = await Promise.all(
      [result.bicubic, result.image, result.image + "?download=1"].map(imageUrl));
    setBusy(false);
    show("running", false);
    const crop = result.crop;
    state.region = { x: crop.x, y: crop.y, width: crop.width, height: crop.height };
    drawRegion(state.region);
    $("before").src = before;
    $("after").src = after;
    drawOriginal(result);
    nameViews(result.scale);
    state.outputWidth = result.width;
    // The link has no name of its own: the file is called what the server's Content-Disposition says (a blob,
    // fetched with the key, is named after the result instead).
    $("download").href = download;
    if (download.startsWith("blob:")) $("download").download = `zssr-${result.scale}x.${result.format === "jpeg" ? "jpg" : result.format}`;
    $("download").textContent = `Download ${FORMAT_NAMES[result.format] || result.format.toUpperCase()}`;
    $("result").dataset.cropWidth = crop.width;
    $("result").dataset.cropHeight = crop.height;
    const facts = [
      ["Learned from", `${result.learned_from.what}, ${result.photo.width} × ${result.photo.height} px` +
        (result.learned_from.width !== result.photo.width ? ` (seen at ${result.learned_from.width} × ${result.learned_from.height})` : "")],
      ["Enlarged", `${result.enlarged.what}: ${crop.width} × ${crop.height} px at (${crop.x}, ${crop.y}) → ${result.width} × ${result.height} px (${result.scale}×)` +
        (result.enlarged.context ? `, inside ${result.enlarged.context.width} × ${result.enlarged.context.height} px of the photo around it (cut away after)` : "") +
        describeEnsemble(result.ensembled_steps, result.iterations_per_step.length)],
      ["Training", `${result.iterations} iterations (${result.iterations_per_step.join(" + ")} over the ${result.iterations_per_step.length} steps)` +
        (result.budget_exhausted ? ", stopped when the time budget was spent" : "")],
      ["Started from", (result.weights ? `pre-trained weights ${result.weights}` : "scratch (no pre-trained weights)") +
        (result.weights_chosen_by ? `, chosen by ${result.weights_chosen_by}` : "") +
        (result.later_weights ? `; steps after the first from ${result.later_weights}` : "")],
      ["Profile", describeProfile(result.profile)],
      ["Network", result.network || "unknown"],
      ["Learning from this photo", describeLearning(result.learning, result.degradation, result.learning_share)],
      ["Read from the photo", describeDegradation(result.degradation)],
      ["Self-check", describeSelfCheck(result.self_check, result.fallback)],
      ["Time", `${result.seconds.toFixed(1)} s on ${result.device}`],
    ];
    const list = $("facts");
    list.replaceChildren();
    for (const [term, text] of facts) {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = text;
      list.append(dt, dd);
    }
    show("setup", true);
    show("result", true);
    setZoom(state.zoom);
  }

  // The region as uploaded, enlarged to the result's size by repeating pixels (what the network started from).
  // Drawn from the thumbnail, which is the uploaded photo turned as its EXIF says, like the server sees it.
  function drawOriginal(result) {
    const canvas = $("original");
    canvas.width = result.width;
    canvas.height = result.height;
    const context = canvas.getContext("2d");
    context.imageSmoothingEnabled = false;
    const crop = result.crop;
    context.drawImage($("thumb"), crop.x, crop.y, crop.width, crop.height, 0, 0, result.width, result.height);
  }

  function nameViews(scale) {
    $("original-caption").textContent = `Original, nearest ${scale}×`;
    $("before-caption").textContent = `Bicubic ${scale}×`;
    $("after-caption").textContent = `ZSSR ${scale}×`;
    $("before").alt = `Bicubic ${scale}× of the region`;
    $("after").alt = `ZSSR ${scale}× of the region`;
  }

  // What the training examples were made to go through, in words: the photo's JPEG and noise.
  function describeDegradation(degradation) {
    if (!degradation) return "nothing";
    const parts = [];
    if (degradation.jpeg) {
      parts.push(`JPEG quality about ${degradation.jpeg.quality} (${degradation.jpeg.subsampling}), reused on the training examples`);
    }
    const noise = (degradation.noise_std * 255).toFixed(1);
    parts.push(degradation.noise_estimated ? `noise ${noise}/255 (measured)` : `noise ${noise}/255 (set)`);
    if (degradation.kernel) {
      parts.push(degradation.kernel.kind === "gaussian"
        ? `blur estimated as a Gaussian of ${degradation.kernel.sigma} px (${degradation.kernel.size} × ${degradation.kernel.size})`
        : "blur estimated as bicubic");
    }
    if (degradation.blur_std != null) {
      parts.push(`blur read as a Gaussian of ${degradation.blur_std} px` +
        (degradation.blurry ? ", blurrier than its own smaller copies" : ""));
    }
    return parts.join("; ");
  }

  // What share of each step's test-time learning is kept, what it added on a strip of the photo held out of
  // training, and whether it was kept.
  function describeLearning(learning, degradation, share) {
    if (degradation && degradation.blurry) {
      return "skipped: the photo is blurrier than its own smaller copies, which would teach the network to " +
        "sharpen less than its pre-trained weights do";
    }
    if (learning && !learning.length) return "no step trained (the time budget was spent)";
    const kept = share < 1 ? `${Math.round(share * 100)} % of each step's learning kept, blended with the ` +
      "weights it started from; " : "";
    if (!learning) return kept + "not judged (no strip of the photo was held out)";
    return kept + learning.map((s) => {
      const gain = `${s.gain_db >= 0 ? "+" : "−"}${Math.abs(s.gain_db).toFixed(2)} dB`;
      return `step ${s.step}: ${gain} on held-out details, ` +
        (s.kept ? "kept" : "not kept (the step's starting weights did better)");
    }).join("; ");
  }

  // The photo's own test of what was learned, in plain words.
  function describeSelfCheck(check, fallback) {
    if (!check) return "not measured (training stopped before it)";
    const gain = check.zssr_db - check.bicubic_db;
    if (fallback) {
      return `on this photo's own details the learned network was ${(-gain).toFixed(1)} dB behind bicubic ` +
        `(${check.zssr_db.toFixed(1)} against ${check.bicubic_db.toFixed(1)} dB), so the result shown is bicubic's`;
    }
    if (gain <= 0) {
      return `on this photo's own details the learned network was not ahead of bicubic ` +
        `(${check.zssr_db.toFixed(1)} against ${check.bicubic_db.toFixed(1)} dB)`;
    }
    return `on this photo's own details the learned network is ${gain.toFixed(1)} dB closer than bicubic ` +
      `(${check.zssr_db.toFixed(1)} against ${check.bicubic_db.toFixed(1)} dB)`;
  }

  function setSlider(percent) {
    state.percent = Math.max(0, Math.min(100, percent));
    $("after-pane").style.clipPath = `inset(0 0 0 ${state.percent}%)`;
    const divider = $("divider");
    divider.style.left = state.percent + "%";
    const left = state.view === "original" ? "the original" : "bicubic";
    divider.setAttribute("aria-valuenow", String(Math.round(state.percent)));
    divider.setAttribute("aria-valuetext", `${Math.round(state.percent)}% ${left}, the rest ZSSR`);
    divider.setAttribute("aria-label", `Divider: ${left} on its left, ZSSR on its right`);
  }

  // Under the pointer, wherever it is on the image (or beyond it, while dragging: then at the nearer edge).
  function slideTo(event) {
    const bounds = $("compare").getBoundingClientRect();
    setSlider(100 * (event.clientX - bounds.left) / bounds.width);
  }

  function startDrag(event) {
    if (state.view === "side" || event.button !== 0) return;
    // Zoomed in, a finger on the image pans it; only the divider itself is dragged.
    if (state.zoom && event.pointerType !== "mouse" && event.target !== $("divider")) return;
    event.preventDefault();
    $("compare").setPointerCapture(event.pointerId);
    state.dragging = event.pointerId;
    $("divider").focus({ preventScroll: true });
    slideTo(event);
  }

  function endDrag(event) {
    if (event.pointerId === state.dragging) state.dragging = null;
  }

  function slideByKey(event) {
    const moves = {
      ArrowLeft: -KEY_STEP, ArrowDown: -KEY_STEP, ArrowRight: KEY_STEP, ArrowUp: KEY_STEP,
      PageDown: -10 * KEY_STEP, PageUp: 10 * KEY_STEP, Home: -100, End: 100,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    setSlider(state.percent + moves[event.key]);
    keepDividerInView();
  }

  // Zoomed in, the box scrolls sideways to keep the divider in sight as the keys move it.
  function keepDividerInView() {
    if (!state.zoom) return;
    const box = $("compare-box");
    const x = state.percent / 100 * $("compare").offsetWidth;
    if (x < box.scrollLeft || x > box.scrollLeft + box.clientWidth) box.scrollLeft = x - box.clientWidth / 2;
  }

  function setView(view) {
    state.view = view;
    const compare = $("compare");
    compare.classList.toggle("slider", view !== "side");
    compare.classList.toggle("side", view === "side");
    compare.classList.toggle("left-original", view === "original");
    for (const [id, name] of [["view-slider", "bicubic"], ["view-original", "original"], ["view-side", "side"]]) {
      $(id).classList.toggle("active", view === name);
      $(id).setAttribute("aria-pressed", String(view === name));
    }
    show("compare-hint", view !== "side");
    setSlider(state.percent);
  }

  // Zoomed in, every image is drawn at a whole number of screen pixels per image pixel, without smoothing, in a
  // box that scrolls (by keyboard too, once focused); it opens on the divider, half way down.
  function setZoom(zoom) {
    state.zoom = zoom;
    const box = $("compare-box");
    box.classList.toggle("zoomed", zoom > 0);
    for (const [id, level] of [["zoom-fit", 0], ["zoom-1", 1], ["zoom-2", 2]]) {
      $(id).classList.toggle("active", zoom === level);
      $(id).setAttribute("aria-pressed", String(zoom === level));
    }
    if (!zoom) {
      for (const name of ["role", "tabindex", "aria-label"]) box.removeAttribute(name);
      $("compare").style.removeProperty("--pane-width");
      return;
    }
    box.setAttribute("role", "region");
    box.setAttribute("aria-label", "The comparison, zoomed in: scroll to see the rest");
    box.tabIndex = 0;
    $("compare").style.setProperty("--pane-width", state.outputWidth * zoom + "px");
    centreZoomed();
  }

  function centreZoomed() {
    if (!state.zoom) return;
    const box = $("compare-box");
    const x = state.view === "side" ? 0 : state.percent / 100 * $("compare").offsetWidth;
    box.scrollLeft = x - box.clientWidth / 2;
    box.scrollTop = (box.scrollHeight - box.clientHeight) / 2;
  }

  async function cancel() {
    if (!state.jobId) return;
    $("status-line").textContent = "Stopping…";
    try {
      await api(`/api/jobs/${state.jobId}`, { method: "DELETE" });
    } catch (e) { /* the next poll tells */ }
  }

  async function loadExample() {
    clearError();
    try {
      const response = await fetch($("example").dataset.src);
      if (!response.ok) throw new Error(String(response.status));
      const blob = await response.blob();
      choose(new File([blob], "example.jpg", { type: "image/jpeg" }));
    } catch (e) {
      showError("The example photo could not be loaded.");
    }
  }

  $("file").addEventListener("change", (event) => choose(event.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    choose(event.dataTransfer.files[0]);
  });
  $("thumb").addEventListener("click", (event) => { if (!state.busy) pickRegion(event); });
  $("crop-size").addEventListener("change", () => {
    if (!state.region) return;
    // Keep the region's centre, with the new size.
    const size = regionSize();
    const cx = state.region.x + state.region.width / 2, cy = state.region.y + state.region.height / 2;
    state.region = {
      x: Math.max(0, Math.min(state.width - size.width, Math.round(cx - size.width / 2))),
      y: Math.max(0, Math.min(state.height - size.height, Math.round(cy - size.height / 2))),
      width: size.width, height: size.height,
    };
    drawRegion(state.region);
  });
  $("random-region").addEventListener("click", () => { state.region = null; drawRegion(null); });
  $("other-photo").addEventListener("click", () => {
    show("setup", false); show("result", false); show("pick", true); $("file").value = "";
  });
  $("start").addEventListener("click", start);
  $("again").addEventListener("click", () => { show("result", false); state.region = null; drawRegion(null); });
  $("cancel").addEventListener("click", cancel);
  const compare = $("compare");
  compare.addEventListener("pointerdown", startDrag);
  compare.addEventListener("pointermove", (event) => { if (event.pointerId === state.dragging) slideTo(event); });
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) compare.addEventListener(type, endDrag);
  compare.addEventListener("dragstart", (event) => event.preventDefault());
  $("divider").addEventListener("keydown", slideByKey);
  $("after").addEventListener("load", centreZoomed);  // a new result, zoomed in as the last one was
  $("view-slider").addEventListener("click", () => setView("bicubic"));
  $("view-original").addEventListener("click", () => setView("original"));
  $("view-side").addEventListener("click", () => setView("side"));
  $("zoom-fit").addEventListener("click", () => setZoom(0));
  $("zoom-1").addEventListener("click", () => setZoom(1));
  $("zoom-2").addEventListener("click", () => setZoom(2));
  $("example").addEventListener("click", loadExample);
  if (NEEDS_KEY) {
    $("api-key").value = apiKey();
    $("api-key").addEventListener("change", saveKey);
  }
  setSlider(50);
})();
