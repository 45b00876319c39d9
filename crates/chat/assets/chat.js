// gyre chat: the page's script. Plain JavaScript, no build step.
//
// One protocol over three transports (docs/chat.md): WebSocket first, then
// Server-Sent Events with POST, then long polling. `?transport=ws|sse|poll`
// forces one. Every room keeps the last message id shown (`lastId`): a
// reconnect asks for what came after it, duplicates are dropped, and a jump
// in ids fetches the missing messages before showing later ones.
//
// User data is only ever put in the page with textContent.
'use strict';

(() => {
  // ---------------------------------------------------------------- rules
  // The server's rules (docs/chat.md, crates/chat/src/model.rs): a nickname
  // is 1 to 24 letters (Unicode alphanumerics), digits, _, - or .; a room
  // 1 to 32 lowercase ASCII letters, digits, - or _; a text 1 to 2000 bytes
  // after trimming, no control characters but newline and tab.
  const NICK_RE = /^[\p{Alphabetic}\p{N}_.\-]{1,24}$/u;
  const ROOM_RE = /^[a-z0-9_-]{1,32}$/;
  const CONTROL_RE = /[\p{Cc}]/gu;
  const MAX_TEXT_BYTES = 2000;
  const NICK_RULE = 'A nickname is 1 to 24 letters, digits, _, - or .';
  const ROOM_RULE = 'A room name is 1 to 32 lowercase letters, digits, - or _';

  const TRANSPORTS = ['ws', 'sse', 'poll'];
  const TRANSPORT_NAMES = { ws: 'WebSocket', sse: 'Server-Sent Events', poll: 'long polling' };
  const BACKOFF_MIN = 500;
  const BACKOFF_MAX = 5000;
  const READY_TIMEOUT = 15000; // a connection that has not delivered history by then failed
  const POLL_WAIT = 25;
  const ROOMS_REFRESH = 4000;
  const MAX_ROOMS_SHOWN = 100;
  const MAX_SHOWN = 1000; // messages kept in the page per room
  // Refusals that retrying cannot fix. Others (too_many_rooms, rate_limited,
  // unavailable) are retried with backoff.
  const FATAL_CODES = new Set(['invalid_nick', 'invalid_room', 'bad_request']);
  const STORE_NICK = 'gyre.chat.nick';

  const params = new URLSearchParams(location.search);
  const forced = TRANSPORTS.includes(params.get('transport')) ? params.get('transport') : null;

  // ---------------------------------------------------------------- state
  const state = {
    nick: null,
    room: null,
    views: new Map(), // room -> view (see viewOf)
    transport: forced || (typeof WebSocket === 'function' ? 'ws'
      : typeof EventSource === 'function' ? 'sse' : 'poll'),
    failures: 0, // consecutive connections that failed before delivering history
    lastChance: false, // the server answered: one more immediate try before falling back
    attempt: 0, // reconnect attempts since the last good connection
    conn: null, // the live connection, if any
    everConnected: false,
    reason: null, // why the server closed us, when it said
    retryTimer: null,
    retryAt: 0,
    countdownTimer: null,
    refs: 0,
    pending: new Map(), // ref -> pending entry
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $('status'), statusText: $('status-text'), retryNow: $('retry-now'),
    me: $('me'), sideToggle: $('side-toggle'),
    roomForm: $('room-form'), roomInput: $('room-input'), roomError: $('room-error'), rooms: $('rooms'),
    roomTitle: $('room-title'), transportLabel: $('transport-label'), trimmed: $('trimmed'),
    stream: $('stream'), empty: $('empty'), messages: $('messages'), pendingList: $('pending'),
    composer: $('composer'), text: $('text'), send: $('send'), error: $('error'),
    people: $('people'), peopleCount: $('people-count'),
    nickOverlay: $('nick-overlay'), nickForm: $('nick-form'), nick: $('nick'),
    nickError: $('nick-error'), nickCancel: $('nick-cancel'),
  };

  // Makes an element; `text` goes in as text, never as HTML.
  function h(tag, attrs, text) {
    const e = document.createElement(tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v; else e.setAttribute(k, v === true ? '' : String(v));
    }
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function store(key, value) {
    try { if (value === null) localStorage.removeItem(key); else localStorage.setItem(key, value); } catch (_) { /* private mode */ }
  }
  function load(key) {
    try { return localStorage.getItem(key); } catch (_) { return null; }
  }

  const roomPath = (room) => `/api/rooms/${encodeURIComponent(room)}`;
  const validNick = (n) => typeof n === 'string' && NICK_RE.test(n);
  const validRoom = (r) => typeof r === 'string' && ROOM_RE.test(r);

  // The text as the server will store it, or an error message.
  function checkText(raw) {
    const t = raw.trim();
    if (!t) return { error: 'The message is empty.' };
    const bytes = new TextEncoder().encode(t).length;
    if (bytes > MAX_TEXT_BYTES) return { error: `The message is too long (${bytes} bytes, at most ${MAX_TEXT_BYTES}).` };
    const controls = (t.match(CONTROL_RE) || []).filter((c) => c !== '\n' && c !== '\t');
    if (controls.length) return { error: 'The message holds control characters.' };
    return { text: t };
  }

  function hue(nick) {
    let x = 0;
    for (const c of nick) x = (x * 31 + c.codePointAt(0)) >>> 0;
    return x % 360;
  }

  // ---------------------------------------------------------------- status
  function setStatus(s, text) {
    ui.status.dataset.state = s;
    ui.status.dataset.transport = state.transport;
    ui.statusText.textContent = text;
    ui.status.classList.toggle('idle', s === 'disconnected' && !state.room);
    document.body.dataset.conn = s;
    ui.retryNow.hidden = !(s === 'disconnected' && state.room && !state.conn);
    ui.transportLabel.textContent = state.room ? `via ${TRANSPORT_NAMES[state.transport]}${forced ? ' (forced)' : ''}` : '';
    updateComposer();
  }

  function updateComposer() {
    const inRoom = !!(state.room && state.nick);
    ui.text.disabled = !inRoom;
    ui.send.disabled = !inRoom;
  }

  function showError(msg) { ui.error.textContent = msg || ''; }

  // ---------------------------------------------------------------- views
  // A room as the page knows it: the last id shown, its list element
  // (swapped into the page when the room is shown), people, and messages
  // that arrived after a gap, waiting for the missing ones.
  function viewOf(room) {
    let v = state.views.get(room);
    if (!v) {
      const list = h('ol', { class: 'messages', 'data-testid': 'messages', role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages', id: 'messages' });
      v = { room, lastId: 0, synced: false, jumpOk: false, list, people: [], trimmed: false, buffer: new Map(), filling: false };
      state.views.set(room, v);
    }
    return v;
  }

  function nearBottom() {
    const s = ui.stream;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }
  function scrollDown() { ui.stream.scrollTop = ui.stream.scrollHeight; }

  // Runs `f` (which adds to the stream) keeping the view at the bottom when it was there.
  function appending(view, f) {
    const shown = view.room === state.room;
    const stick = shown && nearBottom();
    f();
    while (view.list.children.length > MAX_SHOWN) view.list.firstElementChild.remove();
    if (stick) scrollDown();
  }

  function timeOf(ts) {
    const d = new Date(typeof ts === 'number' ? ts : Date.now());
    const now = new Date();
    const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const same = d.toDateString() === now.toDateString();
    return { label: same ? hm : `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${hm}`, iso: d.toISOString(), full: d.toLocaleString() };
  }

  function messageElement(m) {
    const t = timeOf(m.ts);
    const li = h('li', { class: 'msg' + (m.nick === state.nick ? ' mine' : ''), 'data-testid': 'message', 'data-id': m.id });
    const meta = h('div', { class: 'meta' });
    const nick = h('span', { class: 'nick', 'data-testid': 'message-nick' }, m.nick);
    nick.style.setProperty('--h', hue(String(m.nick)));
    meta.append(nick, h('time', { datetime: t.iso, title: t.full, 'data-testid': 'message-time' }, t.label));
    li.append(meta, h('div', { class: 'text', 'data-testid': 'message-text' }, m.text));
    return li;
  }

  function notice(view, text, testid) {
    appending(view, () => view.list.append(h('li', { class: 'notice', 'data-testid': testid || 'notice' }, text)));
  }

  function setTrimmed(view) {
    if (!view.trimmed) notice(view, 'older messages were trimmed', 'trimmed-notice');
    view.trimmed = true;
    view.jumpOk = true; // the next message may start after a hole: nothing to fetch
    if (view.room === state.room) ui.trimmed.hidden = false;
  }

  function show(view, m) {
    appending(view, () => view.list.append(messageElement(m)));
    view.lastId = m.id;
    view.jumpOk = false;
    settlePendingFor(m);
  }

  function validMessage(m) {
    return m && typeof m === 'object' && Number.isSafeInteger(m.id) && m.id > 0 && typeof m.text === 'string' && typeof m.nick === 'string';
  }

  // Messages the server sent as history (or as an answer to "after"): in order,
  // the ones not shown yet.
  function acceptBatch(view, messages) {
    if (!Array.isArray(messages)) return;
    const sorted = messages.filter(validMessage).sort((a, b) => a.id - b.id);
    for (const m of sorted) if (m.id > view.lastId) show(view, m);
    drainBuffer(view, false);
  }

  // One live message: a duplicate is dropped, a gap is filled first.
  function acceptLive(view, m) {
    if (!validMessage(m)) return;
    if (m.id <= view.lastId) return; // duplicate
    if (view.synced && !view.jumpOk && (m.id > view.lastId + 1 || view.filling)) {
      view.buffer.set(m.id, m);
      fillGap(view);
      return;
    }
    show(view, m);
    drainBuffer(view, false);
  }

  function drainBuffer(view, force) {
    const ids = [...view.buffer.keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const m = view.buffer.get(id);
      if (id <= view.lastId) { view.buffer.delete(id); continue; }
      if (id === view.lastId + 1 || view.jumpOk || force) { view.buffer.delete(id); show(view, m); continue; }
      break;
    }
  }

  // Asks for the messages after the last one shown, until the waiting
  // messages follow on (or the server has nothing more to give).
  async function fillGap(view) {
    if (view.filling) return;
    view.filling = true;
    let tries = 0;
    try {
      while (view.buffer.size && tries < 6) {
        tries++;
        const before = view.lastId;
        let body;
        try {
          const res = await fetch(`${roomPath(view.room)}/messages?after=${view.lastId}`, { cache: 'no-store' });
          body = await res.json();
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
        } catch (_) {
          await sleep(500 * tries);
          continue;
        }
        if (body.trimmed) setTrimmed(view);
        acceptBatch(view, body.messages);
        if (view.lastId === before && view.buffer.size) {
          // The server has nothing between: those messages are gone.
          break;
        }
      }
    } finally {
      view.filling = false;
      drainBuffer(view, true);
    }
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // ---------------------------------------------------------------- people
  function setPeople(view, people) {
    view.people = Array.isArray(people) ? people.filter((p) => typeof p === 'string') : [];
    if (view.room === state.room) renderPeople();
  }

  function renderPeople() {
    const view = state.room ? viewOf(state.room) : null;
    const people = view ? view.people : [];
    const items = people.map((p) => {
      const li = h('li', { 'data-testid': 'person', 'data-nick': p }, p);
      if (p === state.nick) li.append(' ', h('span', { class: 'you' }, '(you)'));
      return li;
    });
    if (!items.length) items.push(h('li', { class: 'empty-list' }, view ? 'nobody yet' : 'not in a room'));
    ui.people.replaceChildren(...items);
    ui.peopleCount.textContent = view ? `(${people.length})` : '';
  }

  function onPresence(conn, p) {
    conn.sawPresence = true;
    const view = viewOf(conn.room);
    setPeople(view, p.people);
    // Our own comings and goings are told by the status line.
    // Changes come in batches: `joined` and `left` are lists of nicknames.
    for (const n of [].concat(p.joined || [])) if (n !== conn.nick) notice(view, `${n} joined`, 'presence-notice');
    for (const n of [].concat(p.left || [])) if (n !== conn.nick) notice(view, `${n} left`, 'presence-notice');
  }

  // ---------------------------------------------------------------- rooms list
  let roomsTimer = null;
  let roomsList = [];

  async function refreshRooms() {
    clearTimeout(roomsTimer);
    try {
      const res = await fetch('/api/rooms', { cache: 'no-store' });
      const body = await res.json();
      if (res.ok && Array.isArray(body.rooms)) { roomsList = body.rooms; renderRooms(); }
    } catch (_) { /* the status line says it already */ }
    roomsTimer = setTimeout(refreshRooms, ROOMS_REFRESH);
  }

  function renderRooms() {
    const rooms = roomsList.filter((r) => r && typeof r.name === 'string').slice();
    if (state.room && !rooms.some((r) => r.name === state.room)) rooms.push({ name: state.room, people: viewOf(state.room).people.length });
    rooms.sort((a, b) => (b.people || 0) - (a.people || 0) || a.name.localeCompare(b.name));
    // The busiest rooms (and ours); the rest can be joined by name.
    const shown = rooms.slice(0, MAX_ROOMS_SHOWN);
    if (state.room && !shown.some((r) => r.name === state.room)) shown.push(rooms.find((r) => r.name === state.room));
    const items = shown.map((r) => {
      const li = h('li', { 'data-testid': 'room', 'data-room': r.name });
      const b = h('button', { type: 'button', 'aria-current': r.name === state.room ? 'true' : null, title: `Join ${r.name}` });
      const n = Number.isFinite(r.people) ? r.people : 0;
      b.append(h('span', { class: 'room-name' }, r.name), h('span', { class: 'count', 'aria-label': `${n} present` }, String(n)));
      b.addEventListener('click', () => joinRoom(r.name));
      li.append(b);
      return li;
    });
    if (!items.length) items.push(h('li', { class: 'empty-list' }, 'No rooms yet: create one.'));
    if (rooms.length > shown.length) items.push(h('li', { class: 'empty-list' }, `and ${rooms.length - shown.length} more: type a name to join one`));
    ui.rooms.replaceChildren(...items);
  }

  // ---------------------------------------------------------------- connecting
  const live = (conn) => conn && conn === state.conn && !conn.closed;

  function connect() {
    clearRetry();
    if (!state.room || !state.nick) { setStatus('disconnected', 'not in a room'); return; }
    const room = state.room;
    const view = viewOf(room);
    const t = state.transport;
    const conn = { t, room, nick: state.nick, ready: false, closed: false, sawPresence: false, timers: [], cleanup: [] };
    state.conn = conn;
    setStatus('connecting', `${state.everConnected ? 'reconnecting' : 'connecting'} via ${TRANSPORT_NAMES[t]}…`);
    const after = view.lastId > 0 ? view.lastId : null;
    conn.after = after;
    conn.timers.push(setTimeout(() => { if (live(conn) && !conn.ready) down(conn, 'timed out'); }, READY_TIMEOUT));
    if (t === 'ws') openWs(conn, after);
    else if (t === 'sse') openSse(conn, after);
    else openPoll(conn);
  }

  function closeConn(conn) {
    if (!conn || conn.closed) return;
    conn.closed = true;
    conn.timers.forEach(clearTimeout);
    for (const f of conn.cleanup) { try { f(); } catch (_) { /* already closed */ } }
    if (state.conn === conn) state.conn = null;
  }

  function onReady(conn) {
    if (conn.ready) return;
    conn.ready = true;
    const view = viewOf(conn.room);
    view.synced = true;
    const was = state.everConnected;
    state.everConnected = true;
    state.failures = 0;
    state.lastChance = false;
    state.attempt = 0;
    state.reason = null;
    setStatus('connected', `connected via ${TRANSPORT_NAMES[conn.t]}`);
    if (was && conn.reconnect) notice(view, 'reconnected', 'connection-notice');
    if (conn.reconnect && conn.t !== 'poll') checkRestart(conn, conn.after);
    // WebSocket and SSE announce who is here with a presence event; if none
    // came, ask once.
    if (conn.t !== 'poll') conn.timers.push(setTimeout(() => { if (live(conn) && !conn.sawPresence) fetchPeople(conn); }, 1500));
    refreshRooms();
  }

  // Message ids live in the server's memory: a restarted server numbers from
  // 1 again, and everything new would look like a duplicate. When the room's
  // last id is below the one we resumed after, start the room over.
  async function checkRestart(conn, after) {
    try {
      const res = await fetch(`${roomPath(conn.room)}/messages?after=${after}`, { cache: 'no-store' });
      const body = await res.json();
      if (res.ok && live(conn)) noticeRestart(conn, body.last_id, after);
    } catch (_) { /* the next reconnect checks again */ }
  }

  function noticeRestart(conn, serverLastId, after) {
    if (!Number.isSafeInteger(serverLastId) || !(serverLastId < after)) return false;
    const view = viewOf(conn.room);
    notice(view, 'the server restarted: the conversation starts over', 'restart-notice');
    view.lastId = 0;
    view.synced = false;
    view.jumpOk = false;
    view.trimmed = false;
    view.buffer.clear();
    if (view.room === state.room) ui.trimmed.hidden = true;
    closeConn(conn);
    connect();
    return true;
  }

  async function fetchPeople(conn) {
    try {
      const res = await fetch(`${roomPath(conn.room)}/messages?after=${viewOf(conn.room).lastId}`, { cache: 'no-store' });
      const body = await res.json();
      if (live(conn) && !conn.sawPresence && res.ok && Array.isArray(body.people)) setPeople(viewOf(conn.room), body.people);
    } catch (_) { /* next time */ }
  }

  // A connection ended. Reconnect with backoff; fall back to the next
  // transport when this one fails twice in a row before delivering history
  // while the server answers plain HTTP.
  //
  // `serverSide`: the server answered and said why (rooms full, shutting
  // down, ...): not the transport's fault, so no fallback for it.
  function down(conn, reason, serverSide) {
    if (!live(conn)) return;
    const wasReady = conn.ready;
    closeConn(conn);
    failUnconfirmed(conn);
    state.reason = serverSide ? reason : null;
    if (wasReady) {
      state.failures = 0;
      const view = viewOf(conn.room);
      notice(view, `connection lost (${reason})`, 'connection-notice');
    } else if (!serverSide) {
      state.failures++;
    }
    if (!forced && !wasReady && state.failures >= 2 && state.transport !== 'poll') {
      setStatus('connecting', `${TRANSPORT_NAMES[state.transport]} failed; checking the server…`);
      serverAnswers().then((ok) => {
        if (state.conn || state.room !== conn.room || state.nick !== conn.nick) return; // moved on meanwhile
        if (ok && state.lastChance) {
          state.transport = state.transport === 'ws' && typeof EventSource === 'function' ? 'sse' : 'poll';
          state.failures = 0;
          state.lastChance = false;
          state.attempt = 0;
          connect();
        } else if (ok) {
          // The failures may date from a network outage that just ended:
          // try this transport once more at once before giving it up.
          state.lastChance = true;
          state.failures = 1;
          connect();
        } else {
          // The server is out of reach: not this transport's fault.
          state.lastChance = false;
          state.failures = 0;
          scheduleRetry(wasReady);
        }
      });
      return;
    }
    scheduleRetry(wasReady);
  }

  async function serverAnswers() {
    try {
      const res = await fetch('/api/rooms', { cache: 'no-store' });
      return res.ok;
    } catch (_) {
      return false;
    }
  }

  // The server refused us (bad nickname or room): no automatic retry.
  function fatal(conn, message, code) {
    if (!live(conn)) return;
    closeConn(conn);
    failUnconfirmed(conn);
    setStatus('disconnected', `refused: ${message}`);
    showError(message);
    if (code === 'invalid_nick' || /nick/i.test(message)) openNick(message);
  }

  function scheduleRetry(wasReady) {
    clearRetry();
    const base = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** state.attempt);
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    state.attempt++;
    state.retryAt = Date.now() + delay;
    state.retryTimer = setTimeout(() => { state.retryTimer = null; connect(); }, delay);
    const lead = (wasReady || state.everConnected ? 'connection lost' : 'cannot connect') + (state.reason ? ` (${state.reason})` : '');
    const tick = () => {
      const left = Math.max(0, state.retryAt - Date.now());
      const secs = left < 1000 ? (left / 1000).toFixed(1) : String(Math.round(left / 1000));
      setStatus('disconnected', `${lead}, retrying in ${secs} s`);
    };
    tick();
    state.countdownTimer = setInterval(tick, 250);
  }

  function clearRetry() {
    clearTimeout(state.retryTimer);
    clearInterval(state.countdownTimer);
    state.retryTimer = null;
    state.countdownTimer = null;
  }

  function retryNow() {
    if (state.room && state.nick && !state.conn) { clearRetry(); state.attempt = 0; connect(); }
  }

  // ------------------------------------------------------------- WebSocket
  function openWs(conn, after) {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let url = `${proto}//${location.host}${roomPath(conn.room)}/ws?nick=${encodeURIComponent(conn.nick)}`;
    if (after !== null) url += `&after=${after}`;
    conn.reconnect = after !== null;
    let ws;
    try { ws = new WebSocket(url); } catch (e) { setTimeout(() => down(conn, 'cannot open'), 0); return; }
    conn.ws = ws;
    conn.cleanup.push(() => ws.close(1000, 'bye'));
    conn.send = (text, ref) => {
      if (ws.readyState !== WebSocket.OPEN || !conn.ready) return false;
      ws.send(JSON.stringify({ type: 'say', text, ref }));
      return true;
    };
    ws.onmessage = (ev) => {
      if (!live(conn) || typeof ev.data !== 'string') return;
      let m;
      try { m = JSON.parse(ev.data); } catch (_) { return; }
      const view = viewOf(conn.room);
      switch (m.type) {
        case 'history':
          if (m.trimmed) setTrimmed(view);
          acceptBatch(view, m.messages);
          onReady(conn);
          break;
        case 'message': acceptLive(view, m); break;
        case 'presence': onPresence(conn, m); break;
        case 'ack': onAck(m); break;
        case 'error': onSayError(m); break;
        default: break;
      }
    };
    ws.onclose = (ev) => {
      if (!live(conn)) return;
      // 1008 before the history: the nickname or room was refused. After
      // it (e.g. "too slow to keep up"), and 1011/1013 (server trouble, try
      // again later): reconnect, but it is not the transport failing.
      if (ev.code === 1008 && !conn.ready) { fatal(conn, ev.reason || 'the server refused the connection', null); return; }
      const serverSide = [1008, 1011, 1013].includes(ev.code) || (ev.code === 1001 && !!ev.reason);
      down(conn, ev.code === 1006 ? 'closed abnormally' : (ev.reason || `closed, code ${ev.code}`), serverSide);
    };
  }

  // ------------------------------------------------------------------- SSE
  function openSse(conn, after) {
    let url = `${roomPath(conn.room)}/events?nick=${encodeURIComponent(conn.nick)}`;
    if (after !== null) url += `&after=${after}`;
    conn.reconnect = after !== null;
    let es;
    try { es = new EventSource(url); } catch (e) { setTimeout(() => down(conn, 'cannot open'), 0); return; }
    conn.cleanup.push(() => es.close());
    conn.send = null; // HTTP POST
    const data = (ev) => { try { return JSON.parse(ev.data); } catch (_) { return null; } };
    const view = viewOf(conn.room);
    es.addEventListener('message', (ev) => {
      if (!live(conn)) return;
      const m = data(ev);
      if (!m) return;
      if (conn.ready) acceptLive(view, m); else acceptBatch(view, [m]);
    });
    es.addEventListener('trimmed', () => { if (live(conn)) setTrimmed(view); });
    es.addEventListener('presence', (ev) => { const p = data(ev); if (live(conn) && p) onPresence(conn, p); });
    es.addEventListener('ready', () => { if (live(conn)) onReady(conn); });
    es.onerror = () => {
      if (!live(conn)) return;
      es.close(); // we reconnect ourselves, with after=lastId
      if (conn.ready) { down(conn, 'stream ended'); return; }
      // EventSource hides the HTTP answer: ask the same question with a plain
      // GET to tell a refusal (bad nickname, ...) from a failing transport.
      explainRefusal(conn, es.url).then((err) => {
        if (!live(conn)) return;
        if (!err) down(conn, 'event stream failed');
        else if (FATAL_CODES.has(err.code)) fatal(conn, err.message, err.code);
        else down(conn, err.message, true);
      });
    };
  }

  async function explainRefusal(conn, url) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 5000);
    try {
      const res = await fetch(url, { cache: 'no-store', signal: ac.signal, headers: { accept: 'text/event-stream' } });
      if (res.ok) return null; // the stream opens: EventSource itself is the trouble
      const body = await res.json();
      const e = body && body.error;
      return e && typeof e.code === 'string' ? { code: e.code, message: e.message || e.code } : null;
    } catch (_) {
      return null;
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
  }

  // ---------------------------------------------------------- long polling
  async function openPoll(conn) {
    conn.send = null; // HTTP POST
    const view = viewOf(conn.room);
    conn.reconnect = view.lastId > 0;
    let first = true;
    let known = null; // people at the last answer, to tell who joined or left
    while (live(conn)) {
      let q;
      const sentAfter = first && !view.synced && view.lastId === 0 ? null : view.lastId;
      if (sentAfter === null) q = `?nick=${encodeURIComponent(conn.nick)}`; // the last 50
      else q = `?after=${view.lastId}${first ? '' : `&wait=${POLL_WAIT}`}&nick=${encodeURIComponent(conn.nick)}`;
      const ac = new AbortController();
      const abort = () => ac.abort();
      conn.cleanup.push(abort);
      const timer = setTimeout(abort, (POLL_WAIT + 15) * 1000);
      let res, body;
      try {
        res = await fetch(`${roomPath(conn.room)}/messages${q}`, { cache: 'no-store', signal: ac.signal });
        body = await res.json().catch(() => null);
      } catch (e) {
        clearTimeout(timer);
        if (live(conn)) down(conn, ac.signal.aborted ? 'poll timed out' : 'network error');
        return;
      }
      clearTimeout(timer);
      conn.cleanup = conn.cleanup.filter((f) => f !== abort);
      if (!live(conn)) return;
      if (!res.ok || !body) {
        const e = body && body.error;
        if (e && FATAL_CODES.has(e.code)) fatal(conn, e.message || e.code, e.code);
        else down(conn, e ? (e.message || e.code) : `HTTP ${res.status}`, !!e);
        return;
      }
      if (sentAfter !== null && noticeRestart(conn, body.last_id, sentAfter)) return;
      if (body.trimmed) setTrimmed(view);
      acceptBatch(view, body.messages);
      if (!view.synced && view.lastId === 0 && Number.isSafeInteger(body.last_id) && body.last_id > 0 && !(body.messages || []).length) {
        view.lastId = body.last_id; // an empty page of a room whose messages were all trimmed
      }
      if (Array.isArray(body.people)) {
        conn.sawPresence = true;
        if (known) {
          const now = new Set(body.people);
          for (const p of body.people) if (!known.has(p) && p !== conn.nick) notice(view, `${p} joined`, 'presence-notice');
          for (const p of known) if (!now.has(p) && p !== conn.nick) notice(view, `${p} left`, 'presence-notice');
        }
        known = new Set(body.people);
        setPeople(view, body.people);
      }
      if (first) onReady(conn);
      first = false;
    }
  }

  // ---------------------------------------------------------------- sending
  function pendingElement(p) {
    const li = h('li', { class: 'msg mine pending', 'data-testid': 'pending-message', 'data-ref': p.ref });
    const meta = h('div', { class: 'meta' });
    const nick = h('span', { class: 'nick' }, state.nick);
    nick.style.setProperty('--h', hue(state.nick));
    p.stateEl = h('span', { class: 'state', 'data-testid': 'pending-state' }, 'sending…');
    p.actions = h('span', { class: 'actions' });
    meta.append(nick, p.stateEl, p.actions);
    li.append(meta, h('div', { class: 'text' }, p.text));
    return li;
  }

  function addPending(room, text) {
    const ref = `c${++state.refs}`;
    const p = { ref, room, text, id: null, failed: false, conn: null };
    p.el = pendingElement(p);
    state.pending.set(ref, p);
    ui.pendingList.append(p.el);
    scrollDown(); // the sender wants to see what they sent
    return p;
  }

  function removePending(p) {
    state.pending.delete(p.ref);
    p.el.remove();
  }

  function failPending(p, message) {
    p.failed = true;
    p.el.classList.add('failed');
    p.el.classList.remove('pending');
    p.stateEl.textContent = `not sent: ${message}`;
    const retry = h('button', { type: 'button', class: 'secondary', 'data-testid': 'pending-retry' }, 'retry');
    retry.addEventListener('click', () => { removePending(p); sendText(p.text); });
    const drop = h('button', { type: 'button', class: 'secondary', 'aria-label': 'Dismiss' }, '×');
    drop.addEventListener('click', () => removePending(p));
    p.actions.replaceChildren(retry, drop);
  }

  // A message of ours arrived: its pending copy goes.
  function settlePendingFor(m) {
    for (const p of state.pending.values()) {
      if (p.room !== m.room) continue;
      if (p.id === m.id) { removePending(p); return; }
      // Sent over a connection that dropped before the ack: if it shows up
      // (in the history after reconnecting), it was stored after all.
      if (p.unconfirmed && m.nick === state.nick && m.text === p.text) { removePending(p); return; }
    }
  }

  function onAck(a) {
    const p = state.pending.get(a.ref);
    if (!p) return;
    p.id = a.id;
    const view = viewOf(p.room);
    if (Number.isSafeInteger(a.id) && a.id <= view.lastId) removePending(p); // already shown
    else p.stateEl.textContent = 'sent';
  }

  function describe(code, message) {
    if (code === 'rate_limited') return `Slow down: ${message || 'too many messages'}`;
    return message || code || 'error';
  }

  function onSayError(e) {
    const text = describe(e.code, e.message);
    showError(text);
    const p = e.ref ? state.pending.get(e.ref) : null;
    if (p) failPending(p, e.code || 'error');
  }

  // Pending messages of a connection that dropped before their ack.
  function failUnconfirmed(conn) {
    for (const p of state.pending.values()) {
      if (p.conn === conn && !p.failed && p.id === null) {
        p.unconfirmed = true;
        failPending(p, 'connection lost before the server confirmed it');
      }
    }
  }

  function sendText(raw) {
    showError('');
    if (!state.room || !state.nick) { showError('Join a room first.'); return false; }
    const checked = checkText(raw);
    if (checked.error) { showError(checked.error); return false; }
    const conn = state.conn;
    if (state.transport === 'ws') {
      if (!conn || !conn.ready || !conn.send) { showError('Not connected: the message was not sent. Reconnecting…'); return false; }
      const p = addPending(state.room, checked.text);
      p.conn = conn;
      try {
        if (!conn.send(checked.text, p.ref)) throw new Error('closed');
      } catch (_) {
        failPending(p, 'not connected');
      }
      return true;
    }
    postText(state.room, checked.text);
    return true;
  }

  async function postText(room, text) {
    const p = addPending(room, text);
    const nick = state.nick;
    let res, body;
    try {
      res = await fetch(`${roomPath(room)}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ nick, text }),
      });
      body = await res.json().catch(() => null);
    } catch (_) {
      failPending(p, 'network error');
      showError('Network error: the message was not sent.');
      return;
    }
    if (res.ok && body) {
      const m = body.message && typeof body.message === 'object' ? body.message : body;
      removePending(p);
      const view = viewOf(room);
      // Show it now unless the stream has not delivered the history yet (then
      // the history will hold it).
      if (validMessage(m) && view.synced) acceptLive(view, m);
      return;
    }
    const e = (body && body.error) || { code: `http_${res.status}`, message: `HTTP ${res.status}` };
    failPending(p, e.code);
    showError(describe(e.code, e.message));
    if (e.code === 'invalid_nick') openNick(e.message);
  }

  // ---------------------------------------------------------------- rooms
  function joinRoom(room) {
    if (!validRoom(room)) { ui.roomError.textContent = ROOM_RULE + '.'; ui.roomError.hidden = false; return; }
    ui.roomError.hidden = true;
    if (location.hash !== `#room=${room}`) history.replaceState(null, '', `#room=${room}`);
    if (room === state.room && state.conn) { document.body.classList.remove('side-open'); syncToggle(); return; }
    closeConn(state.conn);
    clearRetry();
    for (const p of [...state.pending.values()]) removePending(p);
    showError('');
    state.room = room;
    state.attempt = 0;
    state.failures = 0;
    const view = viewOf(room);
    ui.messages.replaceWith(view.list);
    ui.messages = view.list;
    ui.empty.hidden = true;
    ui.trimmed.hidden = !view.trimmed;
    ui.roomTitle.textContent = `# ${room}`;
    document.title = `#${room} · gyre chat`;
    renderPeople();
    renderRooms();
    document.body.classList.remove('side-open');
    syncToggle();
    scrollDown();
    connect();
    if (!matchMedia('(max-width: 760px)').matches) ui.text.focus();
  }

  function roomFromHash() {
    const m = /^#room=([^&]*)/.exec(location.hash);
    if (!m) return null;
    try { return decodeURIComponent(m[1]); } catch (_) { return null; }
  }

  // ---------------------------------------------------------------- nickname
  function openNick(serverMessage) {
    ui.nick.value = state.nick || load(STORE_NICK) || '';
    ui.nickCancel.hidden = !state.nick;
    ui.nickError.textContent = serverMessage ? `The server says: ${serverMessage}` : '';
    ui.nickError.hidden = !serverMessage;
    ui.nickOverlay.hidden = false;
    ui.nick.focus();
    ui.nick.select();
  }

  function setNick(nick) {
    const changed = nick !== state.nick;
    state.nick = nick;
    store(STORE_NICK, nick);
    ui.me.hidden = false;
    ui.me.textContent = nick;
    ui.me.title = 'Your nickname (click to change)';
    ui.nickOverlay.hidden = true;
    updateComposer();
    if (changed && state.room) {
      closeConn(state.conn);
      for (const p of [...state.pending.values()]) removePending(p);
      state.attempt = 0;
      state.failures = 0;
      connect();
    } else if (!state.room) {
      const r = roomFromHash();
      if (r && validRoom(r)) joinRoom(r);
    }
  }

  function syncToggle() {
    ui.sideToggle.setAttribute('aria-expanded', document.body.classList.contains('side-open') ? 'true' : 'false');
  }

  // ---------------------------------------------------------------- wiring
  ui.nickForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const n = ui.nick.value.trim();
    if (!validNick(n)) { ui.nickError.textContent = NICK_RULE + '.'; ui.nickError.hidden = false; ui.nick.focus(); return; }
    setNick(n);
  });
  ui.nickCancel.addEventListener('click', () => { if (state.nick) ui.nickOverlay.hidden = true; });
  ui.nick.addEventListener('input', () => { ui.nickError.hidden = true; });
  ui.me.addEventListener('click', () => openNick(null));

  ui.roomForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const r = ui.roomInput.value.trim().toLowerCase();
    if (!validRoom(r)) { ui.roomError.textContent = ROOM_RULE + '.'; ui.roomError.hidden = false; return; }
    if (!state.nick) { openNick(null); return; }
    ui.roomInput.value = '';
    joinRoom(r);
  });
  ui.roomInput.addEventListener('input', () => { ui.roomError.hidden = true; });

  ui.composer.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (sendText(ui.text.value)) { ui.text.value = ''; autosize(); }
    ui.text.focus();
  });
  ui.text.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); ui.composer.requestSubmit(); }
  });
  function autosize() {
    ui.text.style.height = 'auto';
    ui.text.style.height = `${Math.min(ui.text.scrollHeight + 2, 150)}px`;
  }
  ui.text.addEventListener('input', () => { autosize(); if (ui.error.textContent && ui.text.value) showError(''); });

  ui.sideToggle.addEventListener('click', () => { document.body.classList.toggle('side-open'); syncToggle(); });
  ui.retryNow.addEventListener('click', retryNow);
  window.addEventListener('online', retryNow);
  window.addEventListener('hashchange', () => {
    const r = roomFromHash();
    if (r && r !== state.room && state.nick) joinRoom(r);
  });
  window.addEventListener('pagehide', () => closeConn(state.conn));

  // ---------------------------------------------------------------- start
  setStatus('disconnected', 'not in a room');
  renderPeople();
  refreshRooms();
  const saved = load(STORE_NICK);
  const hashRoom = roomFromHash();
  if (!hashRoom) document.body.classList.add('side-open'); // on phones, show the rooms first
  syncToggle();
  if (validNick(saved)) setNick(saved);
  else openNick(null);
})();
