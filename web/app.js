/* The residents' map (住民向け地図): draws what the hub decides (/api/v1/…) and follows its live stream.
   No framework, no build step, no request outside this server (the background tiles are optional). */
"use strict";

(function () {
  var TEXT = {
    ja: {
      title: "防災情報マップ", skip: "警戒情報の一覧へ移動", connecting: "接続中…", live: "ライブ配信中",
      offline: "接続が切れています（再接続を試みています）", dataTime: "データ時刻", received: "受信",
      mapHeading: "地図", mapLabel: "市町村ごとの警戒状況と観測所の地図", layers: "表示する情報",
      layerAlerts: "市町村ごとの警戒状況", layerRain: "雨量計（1時間雨量 mm）", layerRiver: "水位計（水位 m）",
      layerLandslideAlert: "土砂災害警戒情報の対象市町村（気象庁）", layerFlood: "浸水想定区域",
      layerLandslide: "土砂災害警戒区域", legend: "凡例", alertsHeading: "現在の警戒情報",
      noAlerts: "現在、公開中の警戒情報はありません。", stationsHeading: "観測所の最新値", colStation: "観測所",
      colMunicipality: "市町村", colValue: "観測値", colTime: "観測時刻", creditsHeading: "出典",
      atom: "Atom フィード（CAP 1.2）", alertsGeojson: "警戒情報 GeoJSON", stationsGeojson: "観測所 GeoJSON",
      leafletLicense: "Leaflet のライセンス", since: "発生", updated: "更新", expires: "終了予定", source: "発表元",
      cap: "CAP メッセージ（XML）", count: "件", rain1h: "1時間雨量", rain24h: "24時間雨量", level: "水位",
      stage: "水位の段階", missing: "欠測", noData: "データなし", all: "全域", jst: "（日本時間）",
      landslideLegend: "土砂災害警戒情報の対象（気象庁）", alertsIn: "件の警戒情報", rainUnit: "mm",
      hubNoteIntro: "「防災データ連携基盤」の情報は、観測値に基づく情報です（気象庁の警報ではありません）。気象庁の発表は「気象庁」と表示します。",
      lang: "English", langCode: "en", otherLang: "English"
    },
    en: {
      title: "Disaster information map", skip: "Skip to the list of alerts", connecting: "Connecting…", live: "Live",
      offline: "Disconnected (reconnecting)", dataTime: "Data as of", received: "received",
      mapHeading: "Map", mapLabel: "Map of alerts by municipality and of gauges", layers: "Show on the map",
      layerAlerts: "Alerts by municipality", layerRain: "Rain gauges (1-hour rainfall, mm)", layerRiver: "River gauges (level, m)",
      layerLandslideAlert: "Landslide alert information areas (JMA)", layerFlood: "Flood inundation areas",
      layerLandslide: "Landslide warning areas", legend: "Legend", alertsHeading: "Current alerts",
      noAlerts: "No public alerts at present.", stationsHeading: "Latest values of the gauges", colStation: "Gauge",
      colMunicipality: "Municipality", colValue: "Value", colTime: "Observed", creditsHeading: "Credits",
      atom: "Atom feed (CAP 1.2)", alertsGeojson: "Alerts GeoJSON", stationsGeojson: "Gauges GeoJSON",
      leafletLicense: "Leaflet licence", since: "Since", updated: "Updated", expires: "Ends", source: "Issued by",
      cap: "CAP message (XML)", count: "", rain1h: "1 h", rain24h: "24 h", level: "Level",
      stage: "Stage", missing: "missing", noData: "no data", all: "All", jst: " JST",
      landslideLegend: "Landslide alert information (JMA)", alertsIn: "alert(s)", rainUnit: "mm",
      hubNoteIntro: "Information from the \u201cbosai hub\u201d is based on observations (not a JMA warning). Reports of the Japan Meteorological Agency are marked \u201cJMA\u201d.",
      lang: "日本語", langCode: "ja", otherLang: "日本語"
    }
  };

  var state = {
    lang: "ja", config: null, alerts: {}, municipalities: {}, stations: {}, landslide: [],
    dataTime: null, lastMessage: 0, lastChange: null, version: null
  };
  var map, layers = {}, muniLayers = {}, stationMarkers = {}, source;

  function t(key) { return TEXT[state.lang][key] || key; }
  function pick(text) { return text ? (text[state.lang] || text.ja || "") : ""; }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); } });
    return node;
  }
  function formatTime(ms) {
    if (ms === null || ms === undefined) { return "—"; }
    var opts = { timeZone: "Asia/Tokyo", month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false };
    if (state.lang === "ja") { return new Intl.DateTimeFormat("ja-JP", opts).format(new Date(ms)) + t("jst"); }
    opts.month = "short";
    return new Intl.DateTimeFormat("en-GB", opts).format(new Date(ms)) + t("jst");
  }
  function isoJst(ms) { return new Date(ms).toISOString(); }
  function number(value, unit) { return value === null || value === undefined ? t("missing") : value.toFixed(1) + " " + unit; }

  // -- static text -------------------------------------------------------------------------------
  function applyLanguage() {
    document.documentElement.lang = state.lang;
    document.title = t("title") + (state.lang === "ja" ? "（公開情報）" : " (public information)");
    document.querySelectorAll("[data-i18n]").forEach(function (node) { node.textContent = t(node.getAttribute("data-i18n")); });
    document.querySelectorAll("[data-i18n-label]").forEach(function (node) { node.setAttribute("aria-label", t(node.getAttribute("data-i18n-label"))); });
    var toggle = document.getElementById("lang-toggle");
    toggle.textContent = t("otherLang");
    toggle.setAttribute("lang", t("langCode"));
    document.getElementById("hub-note").textContent = t("hubNoteIntro");
    renderCredits(); renderLegend(); renderRegions(); renderAlerts(); renderStations(); renderStatus(); renderMunicipalities();
  }

  function renderCredits() {
    var list = document.getElementById("credits");
    list.textContent = "";
    ((state.config && state.config.credits) || []).forEach(function (c) { list.appendChild(el("li", { text: pick(c) })); });
  }

  function renderLegend() {
    var list = document.getElementById("legend-list");
    list.textContent = "";
    ((state.config && state.config.tones) || []).forEach(function (tone) {
      list.appendChild(el("li", {}, [el("span", { "class": "swatch tone-" + tone.key, "aria-hidden": "true" }), pick(tone.label)]));
    });
    list.appendChild(el("li", {}, [el("span", { "class": "swatch landslide-swatch", "aria-hidden": "true" }), t("landslideLegend")]));
    list.appendChild(el("li", {}, [el("span", { "class": "swatch swatch-flood", "aria-hidden": "true" }), t("layerFlood")]));
    list.appendChild(el("li", {}, [el("span", { "class": "swatch swatch-landslide", "aria-hidden": "true" }), t("layerLandslide")]));
  }

  function renderRegions() {
    var box = document.getElementById("region-buttons");
    box.textContent = "";
    var regions = (state.config && state.config.regions) || [];
    if (regions.length < 2 || !map) { return; }
    regions.forEach(function (region) {
      var button = el("button", { type: "button", text: region.prefecture_name || region.name });
      button.addEventListener("click", function () { map.fitBounds(region.bounds); });
      box.appendChild(button);
    });
    var all = el("button", { type: "button", text: t("all") });
    all.addEventListener("click", fitAll);
    box.appendChild(all);
  }

  // -- live status -------------------------------------------------------------------------------
  function renderStatus() {
    var badge = document.getElementById("live");
    var heartbeat = ((state.config && state.config.heartbeat_s) || 10) * 1000;
    var live = source && source.readyState === 1 && Date.now() - state.lastMessage < 2 * heartbeat + 5000;
    var stateName = live ? "live" : (state.lastMessage ? "offline" : "connecting");
    badge.setAttribute("data-state", stateName);
    badge.textContent = t(stateName === "connecting" ? "connecting" : stateName);
    document.body.setAttribute("data-live", live ? "true" : "false");
    var text = t("dataTime") + " " + formatTime(state.dataTime);
    if (state.lastChange) {
      text += " · " + t("received") + " " + new Intl.DateTimeFormat(state.lang === "ja" ? "ja-JP" : "en-GB",
        { timeZone: "Asia/Tokyo", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }).format(state.lastChange);
    }
    document.getElementById("updated").textContent = text;
  }

  // -- the list ------------------------------------------------------------------------------------
  function alertItem(item) {
    var level = el("span", { "class": "level tone-" + item.tone, text: pick(item.level) });
    var heading = el("h3", {}, [level, el("span", { text: pick(item.area) })]);
    var what = pick(item.what) !== pick(item.level) ? el("p", { "class": "what", text: pick(item.what) }) : null;
    var title = item.title ? el("p", { "class": "title", text: item.title }) : null;
    var details = el("dl", {}, [
      el("dt", { text: t("since") }), el("dd", {}, [el("time", { datetime: isoJst(item.since), text: formatTime(item.since) })]),
      el("dt", { text: t("updated") }), el("dd", {}, [el("time", { datetime: isoJst(item.updated), text: formatTime(item.updated) })]),
      el("dt", { text: t("source") }), el("dd", {}, [pick(item.source.name), el("br"), el("span", { "class": "source-note", text: pick(item.source.note) })])
    ]);
    if (item.expires_jst) {
      details.appendChild(el("dt", { text: t("expires") }));
      details.appendChild(el("dd", { text: formatTime(Date.parse(item.expires_jst)) }));
    }
    var link = el("a", { href: item.cap, text: t("cap") });
    return el("li", { "class": "alert-item source-" + item.source.kind, "data-alert-id": item.id }, [
      el("article", { "aria-label": pick(item.area) + " " + pick(item.level) }, [heading, what, title, el("p", { "class": "headline", text: pick(item.headline) }), details, link])
    ]);
  }

  function renderAlerts() {
    var list = document.getElementById("alert-list");
    var items = Object.keys(state.alerts).map(function (id) { return state.alerts[id]; });
    items.sort(function (a, b) { return b.updated - a.updated || (a.id < b.id ? 1 : -1); });
    list.textContent = "";
    items.forEach(function (item) { list.appendChild(alertItem(item)); });
    document.getElementById("no-alerts").hidden = items.length > 0;
    document.getElementById("alert-count").textContent = items.length ? "（" + items.length + t("count") + "）" : "";
  }

  // -- the map ---------------------------------------------------------------------------------------
  function fitAll() {
    var regions = (state.config && state.config.regions) || [];
    var wanted = new URLSearchParams(location.search).get("region");
    var chosen = regions.filter(function (r) { return r.name === wanted; });
    var boxes = (chosen.length ? chosen : regions).map(function (r) { return r.bounds; });
    if (!boxes.length) { return; }
    var bounds = L.latLngBounds(boxes[0]);
    boxes.slice(1).forEach(function (b) { bounds.extend(b); });
    map.fitBounds(bounds, { padding: [8, 8] });
  }

  function setClass(layer, classes) {
    var node = layer.getElement && layer.getElement();
    if (node) { node.setAttribute("class", classes); }
  }

  function renderMunicipalities() {
    Object.keys(muniLayers).forEach(function (code) {
      var layer = muniLayers[code];
      var status = state.municipalities[code];
      var on = status && document.getElementById("layer-alerts").checked;
      setClass(layer, "leaflet-interactive muni" + (on ? " tone-" + status.tone : ""));
      var node = layer.getElement();
      if (node) { node.setAttribute("data-tone", on ? status.tone : ""); node.setAttribute("data-code", code); }
      layer.unbindTooltip();
      if (on) {
        var label = el("span", {}, [layer.feature.properties.name, el("br"), pick(status.label) + (status.count > 1 ? " +" + (status.count - 1) : "")]);
        layer.bindTooltip(label, { permanent: true, direction: "center", className: "muni-label tone-" + status.tone, interactive: false });
      }
    });
    if (layers.landslideAlert) {
      layers.landslideAlert.clearLayers();
      state.landslide.forEach(function (code) {
        if (muniLayers[code]) { layers.landslideAlert.addData(muniLayers[code].feature); }
      });
    }
  }

  function popupFor(feature) {
    var code = feature.properties.code;
    var own = Object.keys(state.alerts).map(function (id) { return state.alerts[id]; }).filter(function (item) {
      return item.municipalities.some(function (m) { return m.code === code; });
    });
    var box = el("div", {}, [el("strong", { text: (feature.properties.city_name || "") + feature.properties.name })]);
    own.forEach(function (item) { box.appendChild(el("p", { text: pick(item.level) + " — " + pick(item.headline) })); });
    if (!own.length) { box.appendChild(el("p", { text: t("noAlerts") })); }
    return box;
  }

  function stationLabel(s) {
    if (s.kind === "river_level_gauge") { return s.water_level === null || s.water_level === undefined ? "—" : s.water_level.toFixed(2) + " m"; }
    if (s.observed_at === null || s.observed_at === undefined) { return "—"; }
    return s.precipitation_1h === null || s.precipitation_1h === undefined ? "—" : s.precipitation_1h.toFixed(1);
  }

  function stationText(s) {
    if (s.observed_at === null || s.observed_at === undefined) { return t("noData"); }
    if (s.kind === "river_level_gauge") {
      return t("level") + " " + number(s.water_level, "m") + (s.river_stage ? " · " + pick(s.river_stage.label) : "");
    }
    return t("rain1h") + " " + number(s.precipitation_1h, "mm") + " · " + t("rain24h") + " " + number(s.precipitation_24h, "mm");
  }

  function stationIcon(s) {
    var river = s.kind === "river_level_gauge";
    var tone = river ? (s.river_stage ? "stage-" + s.river_stage.key : "rain-missing") : (s.rain_class || "rain-missing");
    var pill = el("span", { "class": "station-pill " + (river ? "river " : "") + tone, text: stationLabel(s) });
    return L.divIcon({ className: "station-icon", html: pill, iconSize: null });
  }

  function renderStations() {
    var body = document.getElementById("station-rows");
    var rows = Object.keys(state.stations).sort().map(function (key) { return state.stations[key]; });
    body.textContent = "";
    rows.forEach(function (s) {
      body.appendChild(el("tr", {}, [
        el("th", { scope: "row", text: pick(s.name) }), el("td", { text: s.municipality || "" }),
        el("td", { text: stationText(s) }), el("td", { text: formatTime(s.observed_at) })
      ]));
      if (!map) { return; }
      var key = s.region + ":" + s.id;
      var group = s.kind === "river_level_gauge" ? layers.river : layers.rain;
      var marker = stationMarkers[key];
      var title = pick(s.name) + ": " + stationText(s);
      if (!marker) {
        marker = L.marker([s.lat, s.lon], { icon: stationIcon(s), title: title, alt: title, keyboard: true, riseOnHover: true, pane: "stations" });
        marker.bindPopup(function () { return el("div", {}, [el("strong", { text: pick(s.name) }), el("p", { text: stationText(stationMarkers[key].station) }), el("p", { text: formatTime(stationMarkers[key].station.observed_at) })]); });
        stationMarkers[key] = marker;
        group.addLayer(marker);
      } else {
        marker.setIcon(stationIcon(s));
      }
      marker.station = s;
      var icon = marker.getElement();
      if (icon) { icon.setAttribute("title", title); icon.setAttribute("aria-label", title); icon.setAttribute("data-station", s.id); }
    });
  }

  function buildMap(boundaries) {
    map = L.map("map", { zoomSnap: 0.25, attributionControl: true });
    map.attributionControl.setPrefix("Leaflet");
    var tiles = state.config.tiles;
    if (tiles && tiles.url) { L.tileLayer(tiles.url, { attribution: tiles.attribution || "", maxZoom: 18 }).addTo(map); }
    map.attributionControl.addAttribution("国土数値情報（行政区域データ）を加工して作成");
    fitAll();  // a view first: Leaflet draws layers only on a map that has one
    layers.municipalities = L.geoJSON(boundaries, {
      style: function () { return { className: "muni" }; },
      onEachFeature: function (feature, layer) {
        muniLayers[feature.properties.code] = layer;
        layer.bindPopup(function () { return popupFor(feature); });
      }
    }).addTo(map);
    renderMunicipalities();
    layers.landslideAlert = L.geoJSON(null, { style: function () { return { className: "landslide-alert", interactive: false }; } }).addTo(map);
    map.createPane("stations").style.zIndex = 660;  // gauges' values above the municipalities' labels (650)
    layers.rain = L.layerGroup().addTo(map);
    layers.river = L.layerGroup().addTo(map);
    bindLayerToggles();
  }

  function bindLayerToggles() {
    document.getElementById("layer-alerts").addEventListener("change", renderMunicipalities);
    [["layer-rain", "rain"], ["layer-river", "river"], ["layer-landslide-alert", "landslideAlert"]].forEach(function (pair) {
      document.getElementById(pair[0]).addEventListener("change", function (e) {
        if (e.target.checked) { layers[pair[1]].addTo(map); } else { map.removeLayer(layers[pair[1]]); }
      });
    });
    [["layer-flood", "flood_inundation", "zone-flood"], ["layer-landslide", "landslide_warning", "zone-landslide"]].forEach(function (z) {
      document.getElementById(z[0]).addEventListener("change", function (e) { toggleZones(z[1], z[2], e.target.checked); });
    });
  }

  var zoneData = null;
  function toggleZones(kind, className, on) {
    if (!on) { if (layers[kind]) { map.removeLayer(layers[kind]); } return; }
    var show = function () {
      if (!layers[kind]) {
        layers[kind] = L.geoJSON(zoneData, {
          filter: function (f) { return f.properties.kind === kind; },
          style: function () { return { className: className }; },
          onEachFeature: function (f, layer) { layer.bindPopup(function () { return el("div", { text: f.properties.name || f.properties.zone_id }); }); }
        });
      }
      layers[kind].addTo(map);
      layers.municipalities.bringToBack();
    };
    if (zoneData) { show(); return; }
    fetch("/api/v1/zones.geojson").then(function (r) { return r.json(); }).then(function (data) { zoneData = data; show(); });
  }

  // -- the live stream ---------------------------------------------------------------------------------
  function applySnapshot(doc) {
    state.alerts = {};
    doc.alerts.forEach(function (item) { state.alerts[item.id] = item; });
    state.municipalities = doc.municipalities || {};
    state.stations = {};
    doc.stations.forEach(function (s) { state.stations[s.region + ":" + s.id] = s; });
    state.landslide = doc.official_landslide || [];
    state.dataTime = doc.data_time;
    document.body.setAttribute("data-version", doc.version);
    renderAlerts(); renderMunicipalities(); renderStations();
  }

  function applyAlerts(doc) {
    doc.alerts.forEach(function (item) { state.alerts[item.id] = item; });
    doc.removed.forEach(function (id) { delete state.alerts[id]; });
    Object.keys(doc.municipalities).forEach(function (code) {
      if (doc.municipalities[code]) { state.municipalities[code] = doc.municipalities[code]; } else { delete state.municipalities[code]; }
    });
    if (doc.official_landslide) { state.landslide = doc.official_landslide; }
    renderAlerts(); renderMunicipalities();
  }

  function applyStations(doc) {
    doc.stations.forEach(function (s) { state.stations[s.region + ":" + s.id] = s; });
    renderStations();
  }

  function listen() {
    source = new EventSource("/api/v1/events");
    var handle = function (apply) {
      return function (event) {
        var doc = JSON.parse(event.data);
        state.lastMessage = Date.now();
        if (apply) { apply(doc); state.lastChange = new Date(); }
        if (doc.data_time) { state.dataTime = doc.data_time; }
        renderStatus();
      };
    };
    source.addEventListener("snapshot", handle(applySnapshot));
    source.addEventListener("alerts", handle(applyAlerts));
    source.addEventListener("stations", handle(applyStations));
    source.addEventListener("heartbeat", handle(null));
    source.addEventListener("open", function () { state.lastMessage = Date.now(); renderStatus(); });
    source.addEventListener("error", renderStatus);
    setInterval(renderStatus, 1000);
  }

  function start() {
    var saved = null;
    try { saved = window.localStorage.getItem("bosai-lang"); } catch (e) { saved = null; }
    var asked = new URLSearchParams(location.search).get("lang");
    state.lang = asked === "en" || asked === "ja" ? asked : (saved === "en" ? "en" : "ja");
    document.getElementById("lang-toggle").addEventListener("click", function () {
      state.lang = state.lang === "ja" ? "en" : "ja";
      try { window.localStorage.setItem("bosai-lang", state.lang); } catch (e) { /* private mode */ }
      applyLanguage();
    });
    Promise.all([
      fetch("/api/v1/config.json").then(function (r) { return r.json(); }),
      fetch("/api/v1/municipalities.geojson").then(function (r) { return r.json(); })
    ]).then(function (loaded) {
      state.config = loaded[0];
      buildMap(loaded[1]);
      applyLanguage();
      listen();
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
}());
