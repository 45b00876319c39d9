// The chat page in a real browser (headless Chromium through playwright-core).
//
//   node tests/browser/chat.mjs http://127.0.0.1:PORT/
//
// Two people (two browser contexts, so two localStorages) join one room,
// talk, see each other and reload; once with the page's own choice of
// transport (WebSocket), once each with long polling and SSE forced; then a
// phone-sized window; then pages whose WebSocket (and EventSource) is broken
// must fall back by themselves, and a WebSocket that loses and repeats
// messages must not lose or repeat any on screen; and with each transport a
// page that loses the network must say so, and catch up when it is back.
// Exits 0 when everything held, 1 with the reason when
// not. $CHROMIUM overrides the browser (default /usr/bin/chromium).

import { chromium } from 'playwright-core';
import { randomBytes } from 'node:crypto';

const OVERALL_MS = 120_000;
const WAIT = 20_000; // for anything the page has to do over the network

const arg = process.argv[2];
if (!arg || !/^https?:\/\//.test(arg)) {
  console.error('usage: node tests/browser/chat.mjs BASE_URL   (e.g. http://127.0.0.1:8080/)');
  process.exit(2);
}
const BASE = arg.endsWith('/') ? arg : `${arg}/`;
const started = Date.now();

const overall = setTimeout(() => {
  console.error(`FAIL: the browser test took longer than ${OVERALL_MS / 1000} s (last step: ${step})`);
  process.exit(1);
}, OVERALL_MS);

let step = 'starting';
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
function check(cond, msg) {
  if (!cond) throw new Error(msg);
}
async function stepDo(name, f) {
  step = name;
  log(name);
  try {
    return await f();
  } catch (e) {
    e.message = `${name}: ${e.message}`;
    throw e;
  }
}

const uid = () => randomBytes(4).toString('hex');
const sel = (id) => `[data-testid="${id}"]`;

// Every page reports its uncaught errors; any of them fails the run.
const pageErrors = [];
async function newPage(browser, label, contextOptions = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...contextOptions });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (e) => pageErrors.push(`${label}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/WebSocket|Failed to load resource|net::ERR/i.test(m.text())) {
      pageErrors.push(`${label} console: ${m.text()}`);
    }
  });
  page.label = label;
  return { context, page };
}

async function status(page) {
  return page.locator(sel('status')).evaluate((e) => ({
    state: e.dataset.state, transport: e.dataset.transport, text: e.textContent.trim().replace(/\s+/g, ' '),
  }));
}

async function waitConnected(page, transport) {
  try {
    await page.waitForSelector(`${sel('status')}[data-state="connected"]`, { timeout: WAIT });
  } catch (e) {
    throw new Error(`${page.label} never connected; status: ${JSON.stringify(await status(page))}`);
  }
  const s = await status(page);
  if (transport) check(s.transport === transport, `${page.label}: status data-transport is ${s.transport}, expected ${transport} (${s.text})`);
  return s;
}

async function pickNick(page, nick) {
  await page.locator(sel('nick')).fill(nick);
  await page.locator(sel('nick-submit')).click();
  await page.locator(sel('nick')).waitFor({ state: 'hidden' });
}

/** Both pages open `url`, take the nicknames alice and bob, join `room`, and connect over `transport`. */
async function aliceAndBobJoin(a, b, url, room, transport) {
  await Promise.all([a.page.goto(url), b.page.goto(url)]);
  await pickNick(a.page, 'alice');
  await pickNick(b.page, 'bob');
  await joinRoom(a.page, room);
  await joinRoom(b.page, room);
  await waitConnected(a.page, transport);
  await waitConnected(b.page, transport);
}

async function joinRoom(page, room) {
  await page.locator(sel('room-input')).fill(room);
  await page.locator(sel('room-join')).click();
}

async function say(page, text) {
  await page.locator(sel('text')).fill(text);
  await page.locator(sel('send')).click();
}

// The message element (not a pending copy) whose text is exactly `text`.
function messageWithText(page, text) {
  return page.locator(`${sel('messages')} ${sel('message')}`).filter({
    has: page.locator(sel('message-text'), { hasText: text }),
  });
}

async function expectMessage(page, text, nick) {
  const m = messageWithText(page, text);
  try {
    await m.first().waitFor({ state: 'attached', timeout: WAIT });
  } catch (e) {
    const shown = await page.locator(`${sel('messages')} ${sel('message-text')}`).allTextContents();
    throw new Error(`${page.label} does not show the message ${JSON.stringify(text)}; it shows ${JSON.stringify(shown)}; status ${JSON.stringify(await status(page))}`);
  }
  const info = await m.first().evaluate((e) => ({
    id: e.dataset.id,
    nick: e.querySelector('[data-testid="message-nick"]')?.textContent,
    text: e.querySelector('[data-testid="message-text"]')?.textContent,
  }));
  check(info.text === text, `${page.label}: message text is ${JSON.stringify(info.text)}, expected ${JSON.stringify(text)}`);
  check(/^[1-9][0-9]*$/.test(info.id ?? ''), `${page.label}: message has data-id ${JSON.stringify(info.id)}, expected a positive integer`);
  if (nick) check(info.nick === nick, `${page.label}: message ${JSON.stringify(text)} is from ${info.nick}, expected ${nick}`);
  check(await m.count() === 1, `${page.label}: the message ${JSON.stringify(text)} is shown ${await m.count()} times`);
  return info;
}

async function expectPerson(page, nick) {
  try {
    await page.locator(`${sel('people')} li`).filter({ hasText: nick }).first().waitFor({ state: 'attached', timeout: WAIT });
  } catch (e) {
    const people = await page.locator(`${sel('people')} li`).allTextContents();
    throw new Error(`${page.label} does not list ${nick} among the people; it lists ${JSON.stringify(people)}`);
  }
}

// Ids shown in the page must strictly increase (no duplicates, in order).
async function expectOrderedIds(page) {
  const ids = await page.locator(`${sel('messages')} ${sel('message')}`).evaluateAll((els) => els.map((e) => Number(e.dataset.id)));
  for (let i = 1; i < ids.length; i++) {
    check(ids[i] > ids[i - 1], `${page.label}: message ids are not increasing: ${JSON.stringify(ids)}`);
  }
}

async function conversation(browser, label, query, transport) {
  const room = `room-${uid()}`;
  const url = `${BASE}${query}`;
  const a = await newPage(browser, `alice(${label})`);
  const b = await newPage(browser, `bob(${label})`);
  try {
    await stepDo(`${label}: alice and bob pick nicknames and join ${room}`, async () => {
      await aliceAndBobJoin(a, b, url, room, transport);
      check(new URL(b.page.url()).hash === `#room=${room}`, `bob's URL is ${b.page.url()}, expected the hash #room=${room}`);
    });

    const hello = `hello from alice ${uid()}`;
    await stepDo(`${label}: alice says hello, bob sees it`, async () => {
      await say(a.page, hello);
      const seen = await expectMessage(b.page, hello, 'alice');
      const own = await expectMessage(a.page, hello, 'alice');
      check(seen.id === own.id, `alice's message has id ${own.id} for alice and ${seen.id} for bob`);
      await a.page.locator(sel('pending-message')).first().waitFor({ state: 'detached' }).catch(() => {
        throw new Error('alice\'s message stayed pending');
      });
    });

    await stepDo(`${label}: bob sees alice among the people`, () => expectPerson(b.page, 'alice'));

    const html = `<b>bold</b><script>x</script> ${uid()}`;
    await stepDo(`${label}: HTML in a message shows as text`, async () => {
      await say(a.page, html);
      await expectMessage(b.page, html, 'alice');
      const children = await messageWithText(b.page, html).locator(sel('message-text')).evaluate((e) => e.children.length);
      check(children === 0, `the message text holds ${children} elements: it was parsed as HTML`);
      check(await b.page.locator(`${sel('messages')} b`).count() === 0, 'a <b> element appeared in the message list');
    });

    await stepDo(`${label}: bob answers, alice sees it`, async () => {
      const reply = `hi alice, bob here ${uid()}`;
      await say(b.page, reply);
      await expectMessage(a.page, reply, 'bob');
    });

    await stepDo(`${label}: bob reloads and sees the history`, async () => {
      await b.page.reload();
      await waitConnected(b.page, transport);
      await expectMessage(b.page, hello, 'alice');
      await expectMessage(b.page, html, 'alice');
      await expectPerson(b.page, 'alice');
    });

    await stepDo(`${label}: after the reload bob gets new messages live`, async () => {
      const again = `still there, bob? ${uid()}`;
      await say(a.page, again);
      await expectMessage(b.page, again, 'alice');
      await expectOrderedIds(a.page);
      await expectOrderedIds(b.page);
    });

    if (transport === 'ws') {
      await stepDo(`${label}: the room list shows ${room} with 2 people`, async () => {
        const entry = a.page.locator(`${sel('rooms')} [data-room="${room}"]`);
        await entry.waitFor({ state: 'attached' });
        await a.page.waitForFunction(
          (r) => document.querySelector(`[data-testid="rooms"] [data-room="${r}"]`)?.textContent.includes('2'),
          room, { timeout: WAIT },
        ).catch(async () => {
          throw new Error(`the room list shows ${JSON.stringify(await entry.textContent())}`);
        });
      });
    }
  } finally {
    await a.context.close();
    await b.context.close();
  }
}

// Scripts run in a page before its own: break a transport, or make the
// WebSocket lose and repeat messages, the way real networks and servers can.
const BROKEN_WEBSOCKET = `
  window.WebSocket = class BrokenWebSocket extends EventTarget {
    constructor(url) { super(); this.url = url; this.readyState = 0;
      setTimeout(() => { this.readyState = 3;
        const ev = new CloseEvent('close', { code: 1006, reason: '', wasClean: false });
        if (this.onerror) this.onerror(new Event('error'));
        if (this.onclose) this.onclose(ev); this.dispatchEvent(ev); }, 50); }
    send() { throw new Error('not open'); }
    close() {}
  };
  window.WebSocket.OPEN = 1;`;
const BROKEN_EVENTSOURCE = `
  window.EventSource = class BrokenEventSource extends EventTarget {
    constructor(url) { super(); this.url = new URL(url, location.href).href; this.readyState = 0;
      setTimeout(() => { this.readyState = 2; if (this.onerror) this.onerror(new Event('error')); }, 50); }
    close() { this.readyState = 2; }
  };`;
// Live 'message' frames: the 2nd, 5th, 8th, ... are lost, every 4th comes twice.
const LOSSY_WEBSOCKET = `
  const Real = window.WebSocket;
  window.WebSocket = class LossyWebSocket extends Real {
    set onmessage(f) {
      let n = 0;
      super.onmessage = (ev) => {
        let m = null;
        try { m = JSON.parse(ev.data); } catch (_) {}
        if (m && m.type === 'message') {
          n++;
          if (n % 3 === 2) { window.__lost = (window.__lost || 0) + 1; return; }
          if (n % 4 === 0) f.call(this, ev);
        }
        f.call(this, ev);
      };
    }
    get onmessage() { return super.onmessage; }
  };`;

// Remembers the page's connections so that the test can cut them, and, while
// the network is "down", points new ones at a closed port and fails fetches:
// Chromium's offline emulation does not reliably stop connections to
// 127.0.0.1 (a WebSocket reconnected, and a fetch got through, while offline).
const CUTTABLE = `
  window.__cut = [];
  window.__netDown = false;
  const RealWS = window.WebSocket;
  window.WebSocket = class CuttableWebSocket extends RealWS {
    constructor(url, ...a) { super(window.__netDown ? 'ws://127.0.0.1:1/' : url, ...a);
      window.__cut.push(() => this.close()); }
  };
  const RealES = window.EventSource;
  window.EventSource = class CuttableEventSource extends RealES {
    constructor(url, ...a) { super(window.__netDown ? 'http://127.0.0.1:1/' : url, ...a);
      window.__cut.push(() => { this.close(); if (this.onerror) this.onerror(new Event('error')); }); }
  };
  const realFetch = window.fetch.bind(window);
  window.fetch = (...a) => window.__netDown
    ? Promise.reject(new TypeError('Failed to fetch (network down)'))
    : realFetch(...a);
  window.__cutAll = () => { window.__netDown = true; const c = window.__cut; window.__cut = []; c.forEach((f) => f()); };`;

// Bob loses the network (his connection is cut and new ones fail) while
// alice talks; the status says so; when the network is back he reconnects
// over the same transport and shows what he missed, once, in order.
async function dropAndResume(browser, label, query, transport) {
  const room = `room-${uid()}`;
  const a = await newPage(browser, `alice(${label} drop)`);
  const b = await newPage(browser, `bob(${label} drop)`);
  await b.page.addInitScript(CUTTABLE);
  try {
    await stepDo(`${label} drop: alice and bob join ${room}`, async () => {
      await aliceAndBobJoin(a, b, `${BASE}${query}`, room, transport);
      const before = `before the cut ${uid()}`;
      await say(a.page, before);
      await expectMessage(b.page, before, 'alice');
    });
    const missed = [];
    await stepDo(`${label} drop: bob goes offline and sees it`, async () => {
      await b.context.setOffline(true);
      await b.page.evaluate(() => window.__cutAll());
      for (let i = 1; i <= 3; i++) {
        const t = `while bob was away ${i} ${uid()}`;
        missed.push(t);
        await say(a.page, t);
        await expectMessage(a.page, t, 'alice');
      }
      // (A long poll already sent still gets its answer: the page finds out
      // with the next one.)
      await b.page.waitForSelector(`${sel('status')}[data-state="disconnected"]`, { timeout: WAIT }).catch(async () => {
        throw new Error(`bob's status does not say disconnected: ${JSON.stringify(await status(b.page))}`);
      });
      const s = await status(b.page);
      check(/lost|retrying/i.test(s.text), `bob's status says ${JSON.stringify(s.text)}, expected it to tell the connection was lost`);
      // Let bob's reconnects fail a few times: the server is unreachable, so
      // that is no reason to change transports.
      await b.page.waitForTimeout(2500);
      const after = await status(b.page);
      check(after.state !== 'connected', `bob's status says connected while offline: ${JSON.stringify(after)}`);
      check(after.transport === transport, `bob switched to ${after.transport} while the network was down`);
    });
    await stepDo(`${label} drop: bob is back online, reconnects and catches up`, async () => {
      await b.context.setOffline(false);
      await b.page.evaluate(() => { window.__netDown = false; });
      await waitConnected(b.page, transport);
      for (const t of missed) await expectMessage(b.page, t, 'alice');
      await expectOrderedIds(b.page);
      const back = `welcome back ${uid()}`;
      await say(b.page, back);
      await expectMessage(a.page, back, 'bob');
    });
  } finally {
    await a.context.close();
    await b.context.close();
  }
}

async function fallback(browser) {
  const room = `room-${uid()}`;
  const a = await newPage(browser, 'alice(fallback)');
  const b = await newPage(browser, 'bob(no WebSocket)');
  const c = await newPage(browser, 'carol(no WebSocket, no EventSource)');
  await b.page.addInitScript(BROKEN_WEBSOCKET);
  await c.page.addInitScript(BROKEN_WEBSOCKET + BROKEN_EVENTSOURCE);
  try {
    await stepDo(`fallback: WebSocket fails, then SSE fails: the pages fall back on their own (${room})`, async () => {
      await Promise.all([a.page.goto(BASE), b.page.goto(BASE), c.page.goto(BASE)]);
      await pickNick(a.page, 'alice');
      await pickNick(b.page, 'bob');
      await pickNick(c.page, 'carol');
      for (const x of [a, b, c]) await joinRoom(x.page, room);
      await waitConnected(a.page, 'ws');
      await waitConnected(b.page, 'sse');
      await waitConnected(c.page, 'poll');
    });
    await stepDo('fallback: a message reaches every transport', async () => {
      const hello = `hello all ${uid()}`;
      await say(a.page, hello);
      await expectMessage(b.page, hello, 'alice');
      await expectMessage(c.page, hello, 'alice');
      const fromPoll = `from the poller ${uid()}`;
      await say(c.page, fromPoll);
      await expectMessage(a.page, fromPoll, 'carol');
      await expectMessage(b.page, fromPoll, 'carol');
      await expectPerson(a.page, 'bob');
      await expectPerson(a.page, 'carol');
    });
  } finally {
    for (const x of [a, b, c]) await x.context.close();
  }
}

async function lossy(browser) {
  const room = `room-${uid()}`;
  const a = await newPage(browser, 'alice(lossy)');
  const b = await newPage(browser, 'bob(lossy WebSocket)');
  await b.page.addInitScript(LOSSY_WEBSOCKET);
  try {
    await stepDo(`lossy: bob's WebSocket loses and repeats messages (${room})`, async () => {
      await Promise.all([a.page.goto(BASE), b.page.goto(BASE)]);
      await pickNick(a.page, 'alice');
      await pickNick(b.page, 'bob');
      await joinRoom(a.page, room);
      await joinRoom(b.page, room);
      await waitConnected(a.page, 'ws');
      await waitConnected(b.page, 'ws');
    });
    await stepDo('lossy: bob still shows every message once, in order', async () => {
      const texts = [];
      for (let i = 1; i <= 7; i++) {
        const t = `numbered ${i} ${uid()}`;
        texts.push(t);
        await say(a.page, t);
        await expectMessage(a.page, t, 'alice'); // one at a time: in order, within the rate limit
      }
      for (const t of texts) await expectMessage(b.page, t, 'alice');
      await expectOrderedIds(b.page);
      const lost = await b.page.evaluate(() => window.__lost || 0);
      check(lost >= 2, `the lossy WebSocket dropped only ${lost} messages: the test did not test gaps`);
      const shown = await b.page.locator(`${sel('messages')} ${sel('message-text')}`).allTextContents();
      check(JSON.stringify(shown) === JSON.stringify(texts), `bob shows ${JSON.stringify(shown)}, expected ${JSON.stringify(texts)}`);
    });
    await stepDo('lossy: sending too fast shows the rate limit next to the input', async () => {
      // The server allows bursts of 10 per connection (5 a second after
      // that): 20 at once cannot all pass.
      await a.page.evaluate(() => {
        const text = document.querySelector('[data-testid="text"]');
        const form = text.form;
        for (let i = 0; i < 20; i++) {
          text.value = `flood ${i}`;
          form.requestSubmit();
        }
      });
      await a.page.waitForFunction(() => /slow down|rate/i.test(document.querySelector('[data-testid="error"]').textContent), null, { timeout: WAIT })
        .catch(async () => {
          throw new Error(`no rate-limit error shown; the error area says ${JSON.stringify(await a.page.locator(sel('error')).textContent())}`);
        });
      check(await a.page.locator(sel('error')).isVisible(), 'the error area is not visible');
      const failed = await a.page.locator(`${sel('pending-message')}.failed`).count();
      check(failed > 0, 'no message is marked as not sent');
    });
  } finally {
    await a.context.close();
    await b.context.close();
  }
}

async function phone(browser) {
  const room = `room-${uid()}`;
  const p = await newPage(browser, 'phone', { viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  try {
    await stepDo('phone: an invalid nickname is refused with the rule', async () => {
      await p.page.goto(BASE);
      await p.page.locator(sel('nick')).fill('not valid!');
      await p.page.locator(sel('nick-submit')).click();
      await p.page.locator(sel('nick-error')).waitFor({ state: 'visible' });
      const err = await p.page.locator(sel('nick-error')).textContent();
      check(/nickname/i.test(err), `the nickname error says ${JSON.stringify(err)}`);
    });
    await stepDo(`phone: pick a nickname, join ${room}, the message input is visible`, async () => {
      await pickNick(p.page, 'carol');
      await joinRoom(p.page, room);
      await waitConnected(p.page, 'ws');
      const input = p.page.locator(sel('text'));
      await input.waitFor({ state: 'visible' });
      const box = await input.boundingBox();
      check(box && box.width > 100 && box.x >= 0 && box.x + box.width <= 375 && box.y >= 0 && box.y + box.height <= 667,
        `the message input is not inside the 375x667 window: ${JSON.stringify(box)}`);
      const send = await p.page.locator(sel('send')).boundingBox();
      check(send && send.x + send.width <= 375 && send.y + send.height <= 667, `the send button is off screen: ${JSON.stringify(send)}`);
      const overflow = await p.page.evaluate(() => document.documentElement.scrollWidth);
      check(overflow <= 375, `the page is ${overflow} px wide on a 375 px screen`);
    });
    await stepDo('phone: send a message and see it', async () => {
      const text = `from a phone ${uid()}`;
      await say(p.page, text);
      await expectMessage(p.page, text, 'carol');
      const box = await messageWithText(p.page, text).boundingBox();
      check(box && box.y >= 0 && box.y + box.height <= 667, `the new message is not in view: ${JSON.stringify(box)}`);
    });
    await stepDo('phone: the status is visible', async () => {
      await p.page.locator(sel('status')).waitFor({ state: 'visible' });
    });
  } finally {
    await p.context.close();
  }
}

let browser;
let failed = null;
try {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  step = `launching ${executablePath}`;
  browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
  log(`browser ${browser.version()}, server ${BASE}`);
  await conversation(browser, 'websocket', '', 'ws');
  await conversation(browser, 'long polling', '?transport=poll', 'poll');
  await conversation(browser, 'sse', '?transport=sse', 'sse');
  await phone(browser);
  await fallback(browser);
  await lossy(browser);
  await dropAndResume(browser, 'websocket', '', 'ws');
  await dropAndResume(browser, 'sse', '?transport=sse', 'sse');
  await dropAndResume(browser, 'long polling', '?transport=poll', 'poll');
  check(pageErrors.length === 0, `errors in the pages: ${pageErrors.join('; ')}`);
} catch (e) {
  failed = e;
} finally {
  if (browser) await browser.close().catch(() => {});
}
clearTimeout(overall);
if (failed) {
  console.error(`FAIL: ${failed.message}`);
  if (pageErrors.length) console.error(`errors in the pages: ${pageErrors.join('; ')}`);
  process.exit(1);
}
log('PASS: the chat works in the browser over WebSocket, SSE and long polling, and on a phone-sized screen');
process.exit(0);
