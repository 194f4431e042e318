// The agent video console: plain JavaScript, no build step. It signs in
// with an access token, keeps a signaling WebSocket (GET /v1/rtc), rings,
// answers with camera and microphone through the gateway's relay, and
// shows the ticket's live timeline (GET /v1/stream?ticket=) beside the call.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const wsBase = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
  const st = { token: "", ws: null, call: null, ring: null, pc: null, local: null, dc: null,
               feed: null, muted: { audio: false, video: false }, pending: [], retry: 0 };
  window.sbConsole = st; // for the browser test and for debugging

  function send(msg) { if (st.ws && st.ws.readyState === 1) st.ws.send(JSON.stringify(msg)); }

  $("signin").addEventListener("submit", (e) => {
    e.preventDefault();
    st.token = $("token").value.trim();
    sessionStorage.setItem("sb-token", st.token);
    connect();
  });
  const saved = sessionStorage.getItem("sb-token");
  if (saved) { $("token").value = saved; }

  function connect() {
    if (st.ws) st.ws.close();
    const ws = new WebSocket(wsBase + "/v1/rtc?access_token=" + encodeURIComponent(st.token));
    st.ws = ws;
    ws.onopen = () => {
      st.retry = 0;
      $("conn").textContent = "online"; $("conn").className = "pill online";
      $("status").disabled = false;
      send({ type: "status", status: $("status").value });
    };
    ws.onclose = (e) => {
      $("conn").textContent = "offline (" + e.code + ")"; $("conn").className = "pill";
      $("status").disabled = true;
      if (st.ws !== ws || e.code === 4001 || e.code === 1008) return;
      // Reconnect with backoff (node restart 1012, network change); an
      // ongoing call rejoins and restarts ICE.
      st.retry = Math.min(st.retry + 1, 5);
      setTimeout(() => { connect(); if (st.call) rejoin(); }, 500 * st.retry);
    };
    ws.onmessage = (e) => onSignal(JSON.parse(e.data));
  }
  setInterval(() => send({ type: "ping" }), 20000);

  $("status").addEventListener("change", () => send({ type: "status", status: $("status").value }));

  function onSignal(m) {
    switch (m.type) {
      case "status": if (m.agent) $("status").value = m.agent.status; break;
      case "ring": showRing(m.call); break;
      case "ring_end": hideRing(); break;
      case "call":
        if (m.call && m.call.state === "active" && st.ring && m.call.id === st.ring.id) { hideRing(); startCall(m.call); }
        break;
      case "joined":
        // The server's STUN/TURN servers, with short-lived credentials, for
        // agents behind NAT; set before the offer so ICE gathers with them.
        if (st.pc && m.ice_servers && m.ice_servers.length) {
          try { st.pc.setConfiguration({ iceServers: m.ice_servers }); } catch (e) { console.warn("ice servers", e); }
        }
        negotiate(false);
        break;
      case "answer": st.pc && st.pc.setRemoteDescription({ type: "answer", sdp: m.sdp }).then(flushCandidates); break;
      case "candidate":
        if (!st.pc || !m.candidate) break;
        if (!m.candidate.candidate) break;
        if (!st.pc.remoteDescription) st.pending.push(m.candidate); else st.pc.addIceCandidate(m.candidate).catch(() => {});
        break;
      case "mute": $("peer-state").textContent = "customer " + (m.mute.audio ? "muted" : "unmuted") + (m.mute.video ? ", camera off" : ""); break;
      case "peer": $("peer-state").textContent = "customer " + m.peer; break;
      case "hangup": endCall(); break;
      case "error": console.warn("signal refused", m.code, m.detail); break;
    }
  }

  let tone = null;
  function showRing(call) {
    st.ring = call;
    $("ring-text").textContent = "Incoming " + call.media + " call (" + call.skill + ") on ticket " + call.ticket_id;
    $("ring").hidden = false;
    try {
      const ac = new AudioContext(); const o = ac.createOscillator(); o.frequency.value = 440;
      o.connect(ac.destination); o.start(); tone = () => { o.stop(); ac.close(); };
    } catch (_) { tone = null; }
    follow(call.ticket_id);
  }
  function hideRing() { $("ring").hidden = true; if (tone) { tone(); tone = null; } }

  $("answer").addEventListener("click", () => { if (st.ring) send({ type: "answer", call_id: st.ring.id }); });
  $("decline").addEventListener("click", () => { if (st.ring) send({ type: "decline", call_id: st.ring.id }); hideRing(); st.ring = null; });

  async function startCall(call) {
    st.call = call; st.ring = null;
    $("call-state").textContent = "connecting";
    const video = call.media === "video";
    try {
      st.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: video });
    } catch (e) { st.local = new MediaStream(); console.warn("no camera or microphone", e); }
    $("local").srcObject = st.local;
    const pc = new RTCPeerConnection({ iceServers: [] });
    st.pc = pc;
    const remote = new MediaStream();
    $("remote").srcObject = remote;
    pc.ontrack = (e) => { remote.addTrack(e.track); };
    pc.onicecandidate = (e) => send({ type: "candidate", call_id: call.id, candidate: e.candidate ? e.candidate.toJSON() : { candidate: "" } });
    pc.onconnectionstatechange = () => { $("call-state").textContent = pc.connectionState; };
    for (const kind of video ? ["audio", "video"] : ["audio"]) {
      const track = st.local.getTracks().find((t) => t.kind === kind);
      if (track) pc.addTransceiver(track, { direction: "sendrecv", streams: [st.local] });
      else pc.addTransceiver(kind, { direction: "recvonly" });
    }
    st.dc = pc.createDataChannel("diagnostics");
    st.dc.binaryType = "arraybuffer";
    st.dc.onmessage = (e) => {
      // Apps send diagnostics as text or as binary UTF-8 JSON.
      const text = typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data);
      const d = $("diag"); d.textContent = (text + "\n" + d.textContent).slice(0, 8000);
    };
    for (const b of ["mute-audio", "mute-video", "hangup"]) $(b).disabled = false;
    send({ type: "join", call_id: call.id });
  }

  function rejoin() { send({ type: "join", call_id: st.call.id }); }

  async function negotiate() {
    const pc = st.pc; if (!pc) return;
    const restart = pc.connectionState === "failed" || pc.connectionState === "disconnected" || !!pc.remoteDescription;
    const offer = await pc.createOffer({ iceRestart: restart });
    await pc.setLocalDescription(offer);
    send({ type: "offer", call_id: st.call.id, sdp: offer.sdp });
  }
  function flushCandidates() { for (const c of st.pending.splice(0)) st.pc.addIceCandidate(c).catch(() => {}); }

  $("mute-audio").addEventListener("click", () => toggle("audio"));
  $("mute-video").addEventListener("click", () => toggle("video"));
  function toggle(kind) {
    st.muted[kind] = !st.muted[kind];
    if (st.local) st.local.getTracks().filter((t) => t.kind === kind).forEach((t) => { t.enabled = !st.muted[kind]; });
    $("mute-" + kind).textContent = kind === "audio" ? (st.muted.audio ? "Unmute" : "Mute") : (st.muted.video ? "Camera on" : "Camera off");
    send({ type: "mute", call_id: st.call.id, mute: st.muted });
  }
  $("hangup").addEventListener("click", () => { if (st.call) send({ type: "hangup", call_id: st.call.id }); endCall(); });

  function endCall() {
    hideRing();
    if (st.pc) st.pc.close();
    if (st.local) st.local.getTracks().forEach((t) => t.stop());
    st.pc = null; st.local = null; st.call = null; st.dc = null;
    $("call-state").textContent = "ended"; $("peer-state").textContent = "";
    for (const b of ["mute-audio", "mute-video", "hangup"]) $(b).disabled = true;
  }

  // The ticket's live timeline, photos and diagnostics beside the call.
  function follow(ticket) {
    if (st.feed) st.feed.close();
    $("ticket-id").textContent = ticket; $("timeline").textContent = ""; $("photos").textContent = "";
    const feed = new WebSocket(wsBase + "/v1/stream?ticket=" + encodeURIComponent(ticket) + "&after=0&access_token=" + encodeURIComponent(st.token));
    st.feed = feed;
    feed.onmessage = (e) => {
      const ev = JSON.parse(e.data);
      const li = document.createElement("li");
      const type = document.createElement("span"); type.className = "type"; type.textContent = ev.type;
      const when = document.createElement("time"); when.textContent = " " + new Date(ev.time).toLocaleTimeString() + " ";
      const body = document.createElement("span"); body.textContent = summary(ev);
      li.append(type, when, body);
      $("timeline").prepend(li);
      if (ev.type === "photo_added" && ev.payload && ev.payload.photo_id) photo(ev.payload.photo_id);
    };
  }
  function summary(ev) {
    const p = ev.payload || {};
    if (p.text) return p.text;
    if (ev.type === "diagnostic") return (p.fault_codes || []).join(",") + " " + JSON.stringify(p.readings || {});
    return JSON.stringify(p).slice(0, 200);
  }
  async function photo(id) {
    const r = await fetch("/v1/photos/" + encodeURIComponent(id) + "/thumbnail", { headers: { Authorization: "Bearer " + st.token } });
    if (!r.ok) return;
    const img = document.createElement("img"); img.alt = "photo " + id;
    img.src = URL.createObjectURL(await r.blob());
    $("photos").append(img);
  }
})();
