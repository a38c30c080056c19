// Browser scenarios, run by tests/web/test_browser.py:
//   node tests/web/flows.mjs <scenario> <base-url> <screenshot-dir> [wav...]
// Prints one JSON line: {scenario, ok, checks:[{name, ok, detail}], errors, notes}.
//
// main    — sign up, create, studio, listen, counts, reactions, ask → approve → microphone
//           (over WebRTC, no reload), mute, co-host, demote, end with confirmation, replay,
//           search; screenshots of every page at desktop and phone size.
// removal — a host bans a speaker with a reason from the studio's dialog: the speaker's page
//           alone says what was done and why, and the statement is theirs at /notices; a
//           listener without a socket, banned too, reads theirs when the heartbeat is refused.
// reminders — a listener asks to be reminded of a scheduled space; when its host starts it,
//           the header's badge counts one, and the list says it is live and links to it.
// waiting — the waiting room: several listeners join a space admitting 0.5/s while the host
//           speaks (wav 1, 440 Hz); one sees its position, moves on by itself and plays the
//           host's tone.
// audio   — (needs the media plane) the host's tone (wav 1, 440 Hz) reaches a listener's
//           hls.js player; an approved speaker (wav 2, 660 Hz) and the host hear each other in
//           their mix-minus; a second listener hears both, then only 440 Hz once the host mutes
//           the speaker (the delay is reported); the replay has 440 Hz, both, then 440 Hz.
// transcript — (needs the caption model) the replay page of the ended space
//           MAJLIS_TEST_SPACE, whose speech is being transcribed: the page says so, shows
//           the lines once they are made, and a line plays the recording from its start
//           and is marked as the one being heard.
// captions — (needs the caption model) the live space MAJLIS_TEST_SPACE, whose host
//           (MAJLIS_TEST_HOST, MAJLIS_TEST_PASSWORD) is speaking: a listener's page shows
//           live captions with a toggle; hls.js, given main.m3u8, shows its subtitles at
//           the audio's position; the studio tells the host captions are on and switches
//           them off; the listener's page then says so and shows none. The live space
//           MAJLIS_TEST_ARABIC_SPACE, in a language the model lacks: the listener's page
//           and the studio say captions are unavailable for its language.
// languages — an Arabic browser gets every page in Arabic, right to left, with no Latin words
//           left outside what people typed; counts in Arabic digits; a server error shown
//           from its code; the switch changes the language and remembers it.

import {
  DESKTOP,
  PHONE,
  Report,
  StepFailed,
  allAudible,
  apiCall,
  dbBelowPeak,
  dominantFrequency,
  isTone,
  launch,
  levelsBelowPeak,
  measureUntil,
  toneRuns,
  screenshot,
  screenshotBoth,
  signUp,
  trackPeers,
} from './lib.mjs';

const [scenario, base, shots, ...wavs] = process.argv.slice(2);
const TITLE = 'مجلس الليلة: مستقبل الذكاء الاصطناعي في العالم العربي';
const DESCRIPTION = 'حوار مفتوح مع المستمعين — اطرحوا أسئلتكم وارفعوا أيديكم للمشاركة.';
const T = { timeout: 15000 };

async function text(page, selector) {
  return (await page.textContent(selector))?.trim();
}

async function waitText(page, selector, expected, timeout = 10000) {
  await page.waitForFunction(
    ({ selector, expected }) => document.querySelector(selector)?.textContent.trim() === expected,
    { selector, expected },
    { timeout },
  );
}

// main -------------------------------------------------------------------------------------

async function main(report) {
  const browser = await launch(wavs[0]);
  try {
    const hostContext = await browser.newContext({ viewport: DESKTOP });
    const listenerContext = await browser.newContext({ viewport: PHONE, hasTouch: true, isMobile: true });
    const anonContext = await browser.newContext({ viewport: DESKTOP });
    const host = report.watch(await hostContext.newPage(), 'host');
    const listener = report.watch(await listenerContext.newPage(), 'listener');
    const anon = report.watch(await anonContext.newPage(), 'anon');

    await report.step('signup and login pages render', async () => {
      await anon.goto(`${base}/signup`);
      await anon.waitForSelector('#account a[href^="/login"]');
      await screenshotBoth(anon, shots, 'signup');
      await anon.goto(`${base}/login`);
      await anon.waitForSelector('#account a[href^="/signup"]');
      await screenshotBoth(anon, shots, 'login');
    });

    await report.step('signup form explains a bad username', async () => {
      await anon.goto(`${base}/signup`);
      await anon.fill('#username', 'x');
      await anon.fill('#password', 'short');
      await anon.click('button[type=submit]');
      await anon.waitForSelector('#alert:not([hidden])');
      return text(anon, '#alert');
    });

    await report.step('a first tap on log in counts while the page still asks who is signed in', async () => {
      // /auth/me held back 4 s: the form must work before it answers.
      let release;
      const held = new Promise((resolve) => { release = resolve; });
      const hold = async (route) => { await held; await route.continue().catch(() => {}); };
      await anon.route('**/api/v1/auth/me', hold);
      try {
        await anon.goto(`${base}/login`, { waitUntil: 'domcontentloaded' });
        await anon.waitForSelector('#auth-form button[type=submit]:not([disabled])', { timeout: 5000 });
        await anon.fill('#username', 'nobody_here');
        await anon.fill('#password', 'wrong password');
        const started = Date.now();
        await anon.click('button[type=submit]');
        await anon.waitForSelector('#alert:not([hidden])', { timeout: 3000 });
        if (anon.url().includes('password')) throw new Error(`the password went into the URL: ${anon.url()}`);
        return `answered in ${Date.now() - started} ms: ${await text(anon, '#alert')}`;
      } finally {
        release();
        await anon.unroute('**/api/v1/auth/me', hold);
      }
    });

    const hostUser = await report.step('host signs up', () => signUp(host, base, 'sara_host', 'سارة'));
    report.notes.host = hostUser.id;

    await report.step('host sets a picture from the header; a text file is refused with a reason', async () => {
      // A real 96x96 PNG, drawn by the browser.
      const base64 = await host.evaluate(async () => {
        const canvas = Object.assign(document.createElement('canvas'), { width: 96, height: 96 });
        const g = canvas.getContext('2d');
        g.fillStyle = '#0b6e4f';
        g.fillRect(0, 0, 96, 96);
        g.fillStyle = '#ffffff';
        g.fillRect(24, 24, 48, 48);
        return canvas.toDataURL('image/png').split(',')[1];
      });
      await host.setInputFiles('#picture-input', { name: 'me.txt', mimeType: 'text/plain', buffer: Buffer.from('not a picture') });
      await host.waitForSelector('#alert:not([hidden])', T);
      const refused = await text(host, '#alert');
      await host.setInputFiles('#picture-input', { name: 'me.png', mimeType: 'image/png', buffer: Buffer.from(base64, 'base64') });
      await host.waitForFunction(() => document.querySelector('#alert')?.textContent.includes('picture is saved'), null, T);
      return `refused: ${refused}`;
    });

    await report.step('new-space page renders', async () => {
      await host.goto(`${base}/new`);
      await host.waitForSelector('#new-form');
      await screenshotBoth(host, shots, 'new');
    });

    // Some company on the home page: an upcoming space, an ended one, a second live one.
    await report.step('other spaces exist (scheduled, ended, live)', async () => {
      const later = Date.now() / 1000 + 86400;
      const scheduled = await apiCall(host, 'POST', '/spaces', {
        title: 'Weekly product AMA',
        description: 'Questions about the roadmap',
        scheduled_for: later,
      });
      const done = await apiCall(host, 'POST', '/spaces', { title: 'أمسية شعرية', description: 'قصائد' });
      await apiCall(host, 'POST', `/spaces/${done.data.id}/end`);
      const other = await apiCall(host, 'POST', '/spaces', { title: 'Morning standup (English)' });
      report.notes.scheduled = scheduled.data.id;
      report.notes.other = other.data.id;
      if (scheduled.status !== 201 || other.status !== 201) throw new Error(JSON.stringify([scheduled, other]));
    });

    const spaceId = await report.step('host creates a live space with an Arabic title', async () => {
      await host.goto(`${base}/new`);
      await host.fill('#title', TITLE);
      await host.fill('#description', DESCRIPTION);
      await Promise.all([host.waitForURL(/\/spaces\/[^/]+\/studio$/), host.click('#create')]);
      const id = new URL(host.url()).pathname.split('/')[2];
      return id;
    });
    report.notes.space = spaceId;

    await report.step('studio shows the space and its controls', async () => {
      await waitText(host, '#space-title', TITLE);
      await host.waitForSelector('#end-space:not([hidden])');
      await host.waitForSelector('#mic');
      const dir = await host.getAttribute('#space-title', 'dir');
      if (dir !== 'auto') throw new Error(`title dir=${dir}`);
      const requests = await text(host, '#requests');
      return `mic state ${await host.getAttribute('#mic', 'data-state')}; requests: ${requests}`;
    });

    await report.step('studio mic permission flow: Allow → capture → connecting microphone', async () => {
      // Chromium's fake media UI may already report the permission as granted: then the
      // studio opens the microphone by itself, else the person presses Allow.
      if ((await host.getAttribute('#mic', 'data-state')) === 'off') await host.click('#mic-allow');
      await host.waitForSelector('#mic:is([data-state="connecting"], [data-state="connected"], [data-state="failed"])', T);
      await host.waitForSelector('#mic:is([data-state="connected"], [data-state="failed"])', T);
      return `${await host.getAttribute('#mic', 'data-state')}: ${await text(host, '#mic-status')}`;
    });

    const listenerUser = await report.step('listener signs up in another browser context', () =>
      signUp(listener, base, 'omar_listens', 'Omar'),
    );

    await report.step('listener joins with one click and is counted', async () => {
      await listener.goto(`${base}/spaces/${spaceId}`);
      await waitText(listener, '#space-title', TITLE);
      await listener.click('#listen-button');
      await listener.waitForSelector('#player-panel:not([hidden])', T);
      await waitText(listener, '#listener-count', '1');
      await waitText(host, '#listener-count', '1');
      // The host's list names them (polled every 10 s).
      await host.waitForSelector(`#audience-names li[data-user-id="${listenerUser.id}"]`, { timeout: 15000 });
      return `connection: ${await listener.getAttribute('#connection', 'data-state')} "${await text(listener, '#connection')}"`;
    });

    await report.step('reactions: send, and everyone sees the tallies', async () => {
      await listener.click('.reaction[data-emoji="👏"]');
      await listener.click('.reaction[data-emoji="👏"]');
      await listener.click('.reaction[data-emoji="🔥"]');
      await waitText(listener, '.reaction[data-emoji="👏"] .count', '2');
      await waitText(listener, '.reaction[data-emoji="🔥"] .count', '1');
      await waitText(host, '.reaction[data-emoji="👏"] .count', '2');
      await waitText(host, '.reaction[data-emoji="🔥"] .count', '1');
    });

    await report.step('listener view screenshots', () => screenshotBoth(listener, shots, 'listen'));

    await report.step('home lists live (with counts), upcoming and replays', async () => {
      await host.goto(`${base}/`);
      await host.waitForSelector(`#live-list li[data-space-id="${spaceId}"]`);
      await host.waitForSelector(`#upcoming-list li[data-space-id="${report.notes.scheduled}"]`);
      await host.waitForSelector('#replay-list li[data-space-id]');
      await host.waitForFunction(
        (id) => document.querySelector(`#live-list li[data-space-id="${id}"] .listeners`)?.textContent === '1',
        spaceId,
        T,
      );
      await screenshotBoth(host, shots, 'home');
    });

    await report.step('search by title and by host', async () => {
      await host.fill('#q', 'مجلس');
      await host.click('#search button[type=submit]');
      await host.waitForFunction(
        (other) => !document.querySelector(`#live-list li[data-space-id="${other}"]`),
        report.notes.other,
        T,
      );
      await host.waitForSelector(`#live-list li[data-space-id="${spaceId}"]`);
      await host.fill('#q', 'sara_h');
      await host.click('#search button[type=submit]');
      await host.waitForSelector(`#live-list li[data-space-id="${report.notes.other}"]`, T);
      await host.waitForSelector(`#live-list li[data-space-id="${spaceId}"]`, T);
    });

    await report.step('scheduled space: reminder and .ics for a listener; host goes live', async () => {
      const scheduledId = report.notes.scheduled;
      const page = report.watch(await listener.context().newPage(), 'listener-scheduled');
      await page.goto(`${base}/spaces/${scheduledId}`);
      await page.waitForSelector('#scheduled-panel:not([hidden])');
      await page.click('#remind-button');
      await page.waitForSelector('#remind-button[aria-pressed="true"]', T);
      const ics = await page.evaluate(async () => {
        const response = await fetch(document.querySelector('#ics-link').href);
        return `${response.status} ${response.headers.get('content-type')}`;
      });
      if (!ics.startsWith('200 text/calendar')) throw new Error(`ics: ${ics}`);
      await screenshotBoth(page, shots, 'listen-scheduled');
      await host.goto(`${base}/spaces/${scheduledId}/studio`);
      await host.waitForSelector('#go-live:not([hidden])', T);
      await screenshotBoth(host, shots, 'studio-scheduled');
      await host.click('#go-live');
      await host.waitForSelector('#end-space:not([hidden])', T);
      // The listener's page turns live by itself.
      await page.waitForSelector('#listen-button:visible', { timeout: 12000 });
      await page.close();
      return ics;
    });

    await host.goto(`${base}/spaces/${spaceId}/studio`);
    await waitText(host, '#space-title', TITLE);

    // Hold the microphone offer so the "connecting microphone" state can be seen, then let it
    // through to whatever the server answers today.
    let releaseOffer;
    const offerHeld = new Promise((resolve) => {
      releaseOffer = resolve;
    });
    await listener.route('**/rtc/offer', async (route) => {
      await offerHeld;
      await route.continue();
    });
    await listener.evaluate(() => {
      window.__noReload = true;
    });

    await report.step('listener asks to speak', async () => {
      await listener.click('#ask-to-speak');
      await listener.waitForSelector('#withdraw', T);
      return text(listener, '#speak-status');
    });

    await report.step('host sees the request (events socket) and approves', async () => {
      const row = `#requests li[data-user-id="${listenerUser.id}"]`;
      await host.waitForSelector(row, T);
      await screenshotBoth(host, shots, 'studio-request');
      await host.click(`${row} [data-action=approve]`);
      await host.waitForSelector(`#speakers li[data-user-id="${listenerUser.id}"]`, T);
    });

    await report.step('listener view switches to the microphone without reload: connecting', async () => {
      await listener.waitForSelector('#mic[data-state="connecting"]', T);
      const status = await text(listener, '#mic-status');
      if (status !== 'Connecting microphone…') throw new Error(status);
      const same = await listener.evaluate(() => window.__noReload === true);
      if (!same) throw new Error('the page reloaded');
      await listener.waitForSelector('#step-down', T);
      return status;
    });

    await report.step('microphone outcome is shown clearly', async () => {
      releaseOffer();
      await listener.waitForSelector('#mic:is([data-state="connected"], [data-state="failed"], [data-state="reconnecting"])', T);
      const state = await listener.getAttribute('#mic', 'data-state');
      const status = await text(listener, '#mic-status');
      report.notes.micOutcome = `${state}: ${status}`;
      if (state === 'failed' && !status.startsWith('Microphone connection failed:')) throw new Error(status);
      await screenshotBoth(listener, shots, 'listen-speaker');
      return `${state}: ${status}`;
    });

    await report.step('host mutes the speaker; both views show it', async () => {
      const card = `#speakers li[data-user-id="${listenerUser.id}"]`;
      await host.click(`${card} [data-action=mute]`);
      await host.waitForSelector(`${card}[data-muted="true"]`, T);
      await listener.waitForSelector(`${card}[data-muted="true"]`, T);
    });

    await report.step('host names the speaker co-host', async () => {
      const card = `#speakers li[data-user-id="${listenerUser.id}"]`;
      await host.click(`${card} [data-action=cohost]`);
      await host.waitForFunction((sel) => document.querySelector(`${sel} .role`)?.textContent === 'Co-host', card, T);
      await listener.waitForFunction(
        () => document.querySelector('#speak-status')?.textContent.includes('co-host'),
        null,
        T,
      );
      await screenshotBoth(host, shots, 'studio');
    });

    await report.step('host hands hosting to the co-host; both views follow; it comes back', async () => {
      const card = `#speakers li[data-user-id="${listenerUser.id}"]`;
      await host.click(`${card} [data-action=make-host]`);
      await listener.waitForFunction(() => document.querySelector('#alert')?.textContent.includes('You are now the host'), null, T);
      // The old host stays in the studio as a co-host: the host's controls go.
      await host.waitForFunction(() => document.querySelector('#alert')?.textContent.includes('is now the host'), null, T);
      await host.waitForSelector('#end-space', { state: 'hidden', ...T });
      // The listener page has no host controls: the new host hands back through the API.
      const back = await apiCall(listener, 'POST', `/spaces/${spaceId}/host`, { user_id: hostUser.id });
      if (back.data?.role !== 'host') throw new Error(`handing back answered ${JSON.stringify(back)}`);
      await host.waitForSelector('#end-space:not([hidden])', T);
      return text(host, '#alert');
    });

    await report.step('invite shows the server reason for an unknown user', async () => {
      await host.fill('#invite-user', 'nobody-here');
      await host.click('#invite-form button[type=submit]');
      await host.waitForSelector('#alert:not([hidden])', T);
      // Beside the form too, and never "sent".
      await host.waitForFunction(() => document.querySelector('#invite-status')?.textContent.startsWith('Not sent:'), null, T);
      return `${await text(host, '#alert')} / ${await text(host, '#invite-status')}`;
    });

    await report.step('host demotes; listener is back in the audience, listening', async () => {
      await host.click(`#speakers li[data-user-id="${listenerUser.id}"] [data-action=demote]`);
      await host.waitForSelector(`#speakers li[data-user-id="${listenerUser.id}"]`, { state: 'detached', ...T });
      await listener.waitForSelector('#ask-to-speak', T);
      await listener.waitForSelector('#mic', { state: 'detached', ...T });
      await listener.waitForSelector('#player-panel:not([hidden])', T);
      return text(listener, '#alert');
    });

    await report.step('host edits the description; the listener page shows it', async () => {
      const edited = 'Open questions, in Arabic and English — edited live';
      await host.click('#edit-button');
      await host.waitForSelector('#edit-dialog[open]');
      await host.fill('#edit-title', '');
      await host.click('#edit-save');
      await waitText(host, '#edit-status', 'A space needs a title.');
      await host.fill('#edit-title', TITLE);
      await host.fill('#edit-description', edited);
      await host.click('#edit-save');
      await host.waitForSelector('#edit-dialog:not([open])', { state: 'attached', ...T });
      await waitText(host, '#space-description', edited);
      await waitText(listener, '#space-description', edited, 10000);
    });

    await report.step('ending needs a confirmation; cancel keeps it live', async () => {
      await host.click('#end-space');
      await host.waitForSelector('#end-dialog[open]');
      await host.keyboard.press('Escape');
      await host.waitForSelector('#end-dialog:not([open])', { state: 'attached' });
      const state = await apiCall(host, 'GET', `/spaces/${spaceId}`);
      if (state.data.state !== 'live') throw new Error(state.data.state);
    });

    await report.step('host ends the space after confirming', async () => {
      await host.click('#end-space');
      await host.waitForSelector('#end-dialog[open]');
      await host.click('#end-confirm');
      await host.waitForSelector('#replay-link:not([hidden])', T);
      await listener.waitForSelector('#ended-panel:not([hidden])', T);
      await screenshotBoth(listener, shots, 'listen-ended');
      await listener.waitForFunction(() => document.querySelector('#stage-count')?.textContent === '0', null, T);
    });

    await report.step('the ended studio offers nothing live: no microphone, no invitations, nobody speaking', async () => {
      // The host's picture is on their card, over their initials.
      await host.waitForSelector(`#speakers li[data-user-id="${hostUser.id}"] .avatar[data-picture="true"] img`, T);
      for (const gone of ['#mic-slot', '#invite-panel', '#requests-panel']) {
        await host.waitForSelector(gone, { state: 'hidden', ...T });
      }
      // Past a state poll (1 s live): levels linger on the bus, the stage must not say so.
      await host.waitForTimeout(1500);
      const speaking = await host.$$eval('#speakers li', (items) => items.filter((li) => /speaking/i.test(li.className + li.textContent)).length);
      if (speaking) throw new Error(`${speaking} shown speaking in an ended space`);
      // The host's analytics: the audience over time, with the listener's arrival.
      await host.waitForSelector('#curve-card:not([hidden]) svg.audience-chart polyline', T);
      const flow = await text(host, '#curve-flow');
      if (!/^Peak: [1-9].* arrivals: [1-9]/.test(flow)) throw new Error(`the studio's curve says ${flow}`);
      await screenshotBoth(host, shots, 'studio-ended');
    });

    await report.step('replay page renders: title, peak listeners, download, player', async () => {
      await host.goto(`${base}/spaces/${spaceId}/replay`);
      await waitText(host, '#space-title', TITLE);
      await host.waitForFunction(() => Number(document.querySelector('#peak-count')?.textContent) >= 1, null, T);
      const href = await host.getAttribute('#download-link', 'href');
      if (!href.endsWith(`/hls/${spaceId}/replay.m4a`)) throw new Error(href);
      await host.waitForSelector('#seek');
      await host.waitForTimeout(500);
      await screenshotBoth(host, shots, 'replay');
      return `duration ${await text(host, '#duration')}, player: ${await text(host, '#player-detail')}`;
    });

    await report.step('replay page draws the audience: listeners over time', async () => {
      await host.waitForSelector('#audience-card:not([hidden]) svg.audience-chart polyline', T);
      const drawn = await host.evaluate(() => {
        const points = document.querySelector('#audience-chart polyline').getAttribute('points').trim().split(/\s+/);
        const heights = points.map((p) => Number(p.split(',')[1]));
        return { points: points.length, top: document.querySelector('#audience-chart .tick').textContent, lowest: Math.max(...heights), highest: Math.min(...heights) };
      });
      // The listener was there for part of the space: the line is not flat, and the scale's top is the peak.
      if (drawn.points < 2 || drawn.highest >= drawn.lowest) throw new Error(`a flat or empty curve: ${JSON.stringify(drawn)}`);
      if (Number(drawn.top) < 1) throw new Error(`the scale tops at ${drawn.top}`);
      // The listener's arrival is counted and drawn (a bar up in the strip under the line).
      const flow = await text(host, '#audience-flow');
      if (!/^Arrivals: [1-9]/.test(flow)) throw new Error(`the flow line says ${flow}`);
      if (!(await host.locator('#audience-chart rect.joins').count())) throw new Error('no arrival drawn');
      await host.locator('#audience-chart svg').screenshot({ path: `${shots}/replay-audience.png` });
      return `${drawn.points} samples, peak ${drawn.top}, ${flow}`;
    });

    await report.step('with captions off the replay page shows no transcript section', async () => {
      await host.waitForSelector('#transcript-card[data-state="off"][hidden]', { state: 'attached', ...T });
      if (await host.isVisible('#alert')) throw new Error(`alert: ${await text(host, '#alert')}`);
    });

    await report.step('host deletes the replay after confirming; it is gone', async () => {
      await host.goto(`${base}/spaces/${spaceId}/studio`);
      await host.click('#delete-replay');
      await host.waitForSelector('#delete-dialog[open]');
      await host.click('#delete-confirm');
      await host.waitForFunction(() => document.querySelector('#alert')?.textContent.includes('replay is deleted'), null, T);
      const file = await host.request.get(`${base}/hls/${spaceId}/replay.m4a`);
      if (file.status() !== 404) throw new Error(`replay.m4a answered ${file.status()}`);
    });

    await report.step('unknown space shows a clear message', async () => {
      // The not-found page itself (404), not a space page's empty skeleton under an error.
      const answer = await anon.goto(`${base}/spaces/doesnotexist`);
      if (answer.status() !== 404) throw new Error(`status ${answer.status()}`);
      await waitText(anon, 'main h1', 'Page not found');
      if (await anon.$('#space-title')) throw new Error('a space page skeleton is shown');
    });

    await report.step('share copies the space link where there is no share sheet', async () => {
      await anon.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
      await anon.goto(`${base}/spaces/${report.notes.other}`);
      await anon.click('#share-button');
      await waitText(anon, '#share-status', 'Link copied.');
      const copied = await anon.evaluate(() => navigator.clipboard.readText());
      if (copied !== `${base}/spaces/${report.notes.other}`) throw new Error(`copied ${copied}`);
      return copied;
    });

    await report.step('keyboard: skip link and tab order reach the Listen button', async () => {
      await anon.goto(`${base}/spaces/${report.notes.other}`);
      await anon.waitForSelector('#listen-button');
      await anon.keyboard.press('Tab');
      const first = await anon.evaluate(() => document.activeElement?.textContent);
      if (first !== 'Skip to content') throw new Error(first);
      for (let i = 0; i < 12; i += 1) {
        await anon.keyboard.press('Tab');
        if ((await anon.evaluate(() => document.activeElement?.id)) === 'listen-button') {
          await anon.keyboard.press('Enter');
          await anon.waitForSelector('#player-panel:not([hidden])', T);
          return `reached after ${i + 2} tabs; anonymous listening works`;
        }
      }
      throw new Error('Listen button not reachable by Tab');
    });
  } finally {
    await browser.close();
  }
}

// waiting ----------------------------------------------------------------------------------

async function waiting(report) {
  // The host's fake microphone plays wavs[0] (440 Hz); the listeners need none.
  const hostBrowser = await launch(wavs[0]);
  const browser = await launch();
  try {
    const hostContext = await hostBrowser.newContext({ viewport: DESKTOP });
    const host = report.watch(await hostContext.newPage(), 'host');
    await report.step('host signs up, goes live and speaks (440 Hz microphone)', async () => {
      await signUp(host, base, 'wait_host', 'Host');
      const created = await apiCall(host, 'POST', '/spaces', { title: 'غرفة الانتظار — Waiting room test' });
      report.notes.space = created.data.id;
      await hostContext.grantPermissions(['microphone']);
      await host.goto(`${base}/spaces/${created.data.id}/studio?raw=1`);
      await host.waitForSelector('#mic[data-state="connected"]', { timeout: 20000 });
    });
    const url = `${base}/spaces/${report.notes.space}`;
    const pages = [];
    for (let i = 0; i < 3; i += 1) {
      const context = await browser.newContext({ viewport: i === 2 ? PHONE : DESKTOP });
      const page = report.watch(await context.newPage(), `listener${i}`);
      await page.goto(url);
      await page.waitForSelector('#listen-button');
      pages.push(page);
    }
    await report.step('first listener is admitted at once', async () => {
      await pages[0].click('#listen-button');
      await pages[0].waitForSelector('#player-panel:not([hidden])', T);
    });
    const [second, third] = [pages[1], pages[2]];
    await second.click('#listen-button');
    await second.waitForSelector('#waiting-room:not([hidden]), #player-panel:not([hidden])', T);
    await third.click('#listen-button');
    const position = await report.step('a later listener sees the waiting room with position and wait', async () => {
      await third.waitForSelector('#waiting-room:not([hidden])', T);
      const where = await text(third, '#wait-position');
      const eta = await text(third, '#wait-eta');
      if (!(Number(where) >= 1)) throw new Error(`position ${where}`);
      if (!eta.startsWith('about')) throw new Error(`eta ${eta}`);
      await screenshot(third, shots, 'waiting-phone');
      await third.setViewportSize(DESKTOP);
      await screenshot(third, shots, 'waiting-desktop');
      await third.setViewportSize(PHONE);
      return `position ${where}, ${eta}`;
    });
    report.notes.position = position;
    await report.step('queued listeners move on by themselves when admitted', async () => {
      await second.waitForSelector('#player-panel:not([hidden])', { timeout: 20000 });
      await third.waitForSelector('#player-panel:not([hidden])', { timeout: 20000 });
      const hidden = await third.getAttribute('#waiting-room', 'hidden');
      if (hidden === null) throw new Error('waiting room still shown');
    });
    await report.step('the listener admitted from the queue plays the host (440 Hz)', async () => {
      await third.waitForSelector('#connection[data-state="live"]', { timeout: 30000 });
      const heard = await measureUntil(third, '#player', (m) => isTone(m, 440), { windowMs: 1500, timeout: 15000 });
      report.notes.queuedListenerTone = heard;
      await screenshotBoth(third, shots, 'waiting-admitted');
      return `${heard.measured.frequency.toFixed(0)} Hz at ${heard.measured.peakDb.toFixed(1)} dB; ${heard.windows} window(s)`;
    });
  } finally {
    await browser.close();
    await hostBrowser.close();
  }
}

// audio (media plane) ----------------------------------------------------------------------

/** Seek the replay with its own seek control; resolve once it plays from `seconds`. */
async function seekReplay(page, seconds) {
  await page.fill('#seek', String(seconds));
  const state = () =>
    page.evaluate(() => {
      const { currentTime, duration, seeking, paused, readyState } = document.querySelector('#player');
      return { currentTime, duration, seeking, paused, readyState };
    });
  try {
    await page.waitForFunction(
      (target) => {
        const audio = document.querySelector('#player');
        return !audio.seeking && !audio.paused && audio.readyState >= 3 && Math.abs(audio.currentTime - target) < 1;
      },
      seconds,
      { timeout: 10000 },
    );
  } catch (error) {
    throw new Error(`seek to ${seconds} s did not play: ${JSON.stringify(await state())} (${error.message})`);
  }
  return (await state()).currentTime;
}

async function audio(report) {
  const [hostWav, speakerWav] = wavs;
  const hostBrowser = await launch(hostWav);
  const speakerBrowser = await launch(speakerWav);
  // The second listener has no microphone at all: what it hears can only come from the space.
  const audienceBrowser = await launch();
  // Wall-clock moments (ms) to find again in the recording.
  const clock = {};
  try {
    const host = report.watch(await (await hostBrowser.newContext({ viewport: DESKTOP })).newPage(), 'host');
    await signUp(host, base, 'tone_host', 'Tone host');
    const created = await apiCall(host, 'POST', '/spaces', { title: 'Tone test' });
    const spaceId = created.data.id;
    report.notes.space = spaceId;
    // The media plane is wired when its routes exist: a 404 "no such endpoint" says it is not
    // (a 401 for a missing playback token, or a 400 for a bad offer, says it is).
    const playlist = await host.evaluate(async (id) => {
      const response = await fetch(`/hls/${id}/index.m3u8`);
      return { status: response.status, body: (await response.text()).slice(0, 200) };
    }, spaceId);
    const offer = await apiCall(host, 'POST', `/spaces/${spaceId}/rtc/offer`, { sdp: 'v=0', type: 'offer' });
    const missing = (answer) => answer.status === 404 && /no such endpoint/.test(JSON.stringify(answer.body ?? answer.data));
    report.notes.probe = { playlist, offer };
    if (missing(playlist) || missing(offer)) {
      report.notes.skip = `media plane not wired yet (/hls → ${playlist.status}, /rtc/offer → ${offer.status})`;
      return;
    }
    await report.step('host microphone connects (raw capture)', async () => {
      await host.context().grantPermissions(['microphone']);
      await trackPeers(host);
      await host.goto(`${base}/spaces/${spaceId}/studio?raw=1`);
      await host.waitForSelector('#mic[data-state="connected"]', { timeout: 20000 });
    });
    await report.step('the microphone sends 40 ms packets, as the answer asks (a=ptime:40)', async () => {
      const rate = await host.evaluate(async () => {
        const sent = async () => {
          let packets = 0;
          for (const peer of window.__peers) {
            (await peer.getStats()).forEach((s) => {
              if (s.type === 'outbound-rtp' && s.kind === 'audio') packets += s.packetsSent;
            });
          }
          return packets;
        };
        const before = await sent();
        const started = performance.now();
        await new Promise((resolve) => setTimeout(resolve, 3000));
        return ((await sent()) - before) / ((performance.now() - started) / 1000);
      });
      report.notes.micPacketsPerSecond = rate;
      // 25/s for 40 ms packets; 50/s would mean the browser ignored the answer's ptime.
      if (!(rate > 20 && rate < 30)) throw new Error(`${rate.toFixed(1)} packets/s`);
      return `${rate.toFixed(1)} packets/s`;
    });
    const listener = report.watch(await (await speakerBrowser.newContext({ viewport: PHONE })).newPage(), 'listener');
    await report.step('listener hears the host tone through hls.js', async () => {
      await listener.goto(`${base}/spaces/${spaceId}?player=hlsjs`);
      await listener.click('#listen-button');
      await listener.waitForSelector('#connection[data-state="live"]', { timeout: 30000 });
      const measured = await dominantFrequency(listener, '#player', 2500);
      report.notes.listenerTone = measured;
      if (!isTone(measured, 440)) throw new Error(JSON.stringify(measured));
      return JSON.stringify(measured);
    });
    await report.step('native HLS fallback (canPlayType) plays the same tone', async () => {
      await listener.goto(`${base}/spaces/${spaceId}?player=native`);
      const native = await listener.evaluate(() => document.querySelector('#player').canPlayType('application/vnd.apple.mpegurl'));
      if (!native) return 'this Chromium has no native HLS: nothing to check';
      await listener.click('#listen-button');
      await listener.waitForSelector('#connection[data-state="live"]', { timeout: 30000 });
      const measured = await dominantFrequency(listener, '#player', 2500);
      report.notes.nativeTone = measured;
      if (!isTone(measured, 440)) throw new Error(JSON.stringify(measured));
      return JSON.stringify(measured);
    });
    // Tuned in before anyone is approved, so its player is already live when the second
    // voice arrives (the default player: hls.js where Media Source Extensions exist).
    const second = report.watch(await (await audienceBrowser.newContext({ viewport: DESKTOP })).newPage(), 'second-listener');
    await report.step('a second listener (own browser, no microphone) tunes in', async () => {
      await second.goto(`${base}/spaces/${spaceId}`);
      await second.click('#listen-button');
      await second.waitForSelector('#connection[data-state="live"]', { timeout: 30000 });
      return text(second, '#connection');
    });
    const listenerUser = await signUp(listener, base, 'tone_speaker', 'Tone speaker');
    const card = `#speakers li[data-user-id="${listenerUser.id}"]`;
    await report.step('speaker is approved and hears the host in the mix-minus, not themself', async () => {
      await listener.goto(`${base}/spaces/${spaceId}?raw=1`);
      await listener.click('#ask-to-speak');
      await host.waitForSelector(`#requests li[data-user-id="${listenerUser.id}"] [data-action=approve]`, { timeout: 15000 });
      await host.click(`#requests li[data-user-id="${listenerUser.id}"] [data-action=approve]`);
      await listener.waitForSelector('#mic[data-state="connected"]', { timeout: 20000 });
      clock.speakerOn = Date.now();
      const speakerHears = await dominantFrequency(listener, '#mic audio.mix', 2500);
      const hostHears = await dominantFrequency(host, '#mic audio.mix', 2500);
      report.notes.mixMinus = { speakerHears, hostHears };
      if (!isTone(speakerHears, 440)) throw new Error(`speaker hears ${JSON.stringify(speakerHears)}`);
      if (!isTone(hostHears, 660)) throw new Error(`host hears ${JSON.stringify(hostHears)}`);
      // Mix-minus: your own voice is not sent back to you.
      if (dbBelowPeak(speakerHears, 660) < 20) throw new Error(`speaker hears themself ${JSON.stringify(speakerHears)}`);
      if (dbBelowPeak(hostHears, 440) < 20) throw new Error(`host hears themself ${JSON.stringify(hostHears)}`);
      return `speaker: own tone ${dbBelowPeak(speakerHears, 660).toFixed(0)} dB down; host: ${dbBelowPeak(hostHears, 440).toFixed(0)} dB down`;
    });
    await report.step('second listener hears both the host (440 Hz) and the speaker (660 Hz)', async () => {
      const heard = await measureUntil(second, '#player', (m) => allAudible(m, [440, 660], 10), {
        windowMs: 1500,
        timeout: 20000,
      });
      const levels = levelsBelowPeak(heard.measured, [440, 660]);
      report.notes.secondListenerBoth = { ...heard, levels, sinceSpeakerConnectedMs: Date.now() - clock.speakerOn };
      await second.waitForSelector(card, T);
      await screenshotBoth(second, shots, 'listen-second');
      return `dB below peak ${JSON.stringify(levels)}, peak ${heard.measured.frequency.toFixed(0)} Hz at ${heard.measured.peakDb.toFixed(1)} dB; ${heard.windows} window(s)`;
    });
    await report.step('host mutes the speaker; the 660 Hz tone stops for the second listener', async () => {
      clock.mute = Date.now();
      await host.click(`${card} [data-action=mute]`);
      await host.waitForSelector(`${card}[data-muted="true"]`, T);
      const quiet = (m) => isTone(m, 440) && dbBelowPeak(m, 660) >= 25;
      // Alongside, the host's WebRTC mix-minus (the speaker alone, no player buffer) tells how
      // much of the delay is the server's and how much the listener's player latency.
      const sinceClick = (result) => ({ ...result, sinceClickMs: Date.now() - clock.mute });
      const [gone, server] = await Promise.all([
        measureUntil(second, '#player', quiet, { windowMs: 500, timeout: 10000 }).then(sinceClick),
        measureUntil(host, '#mic audio.mix', (m) => m.frequency === null || m.at[660] < -50, { windowMs: 300, timeout: 10000 })
          .then(sinceClick)
          .catch((error) => ({ error: String(error) })),
      ]);
      const delay = gone.sinceClickMs;
      // And it stays that way: 440 Hz alone over the next stretch too.
      const after = await dominantFrequency(second, '#player', 1500);
      const levels = levelsBelowPeak(after, [440, 660]);
      report.notes.mute = { delayMs: delay, listenerWindows: gone.windows, hostMixQuietMs: server.sinceClickMs, hostMix: server, first: gone.measured, after, levels };
      if (!quiet(after)) throw new Error(`660 Hz came back after the mute: ${JSON.stringify(after)}`);
      await second.waitForSelector(`${card}[data-muted="true"]`, T);
      await listener.waitForSelector('#mic[data-state="connected"]', T);
      await screenshotBoth(host, shots, 'studio-muted');
      await screenshotBoth(second, shots, 'listen-second-muted');
      await screenshotBoth(listener, shots, 'listen-speaker-muted');
      return `660 Hz ≥ 25 dB below the peak ${delay} ms after the click (${gone.windows} × 500 ms windows; the host's WebRTC mix-minus was quiet ${server.sinceClickMs ?? '?'} ms after it); then ${JSON.stringify(levels)} dB below peak`;
    });
    await report.step('replay: host alone, both voices, then the host alone after the mute', async () => {
      clock.end = Date.now();
      await apiCall(host, 'POST', `/spaces/${spaceId}/end`);
      const space = (await apiCall(host, 'GET', `/spaces/${spaceId}`)).data;
      await host.goto(`${base}/spaces/${spaceId}/replay`);
      await host.waitForSelector('#play-button:not([disabled])', { timeout: 20000 });
      // Find the stretches in the file itself: recording time is not wall-clock time since
      // the start (on a loaded machine the recording can run seconds short of it).
      const classify = (db) => {
        if (db[440] > -35 && db[660] > -35 && Math.abs(db[440] - db[660]) <= 10) return 'both';
        if (db[440] > -35 && db[660] < db[440] - 25) return 'host';
        return 'other';
      };
      const file = await toneRuns(host, `/hls/${spaceId}/replay.m4a`, [440, 660], classify);
      const longest = (runs) => runs.reduce((best, run) => (!best || run.to - run.from > best.to - best.from ? run : best), null);
      const bothRun = longest(file.runs.filter((r) => r.kind === 'both'));
      const before = bothRun && longest(file.runs.filter((r) => r.kind === 'host' && r.to <= bothRun.from));
      const after = bothRun && longest(file.runs.filter((r) => r.kind === 'host' && r.from >= bothRun.to));
      const at = (ms) => Math.round((ms - space.started_at * 1000) / 100) / 10;
      report.notes.replay = {
        duration: file.duration,
        spaceSeconds: space.ended_at - space.started_at,
        wallClock: { speakerOn: at(clock.speakerOn), mute: at(clock.mute), end: at(clock.end) },
        runs: file.runs,
      };
      const long = (run) => run && run.to - run.from >= 3;
      if (!long(before) || !long(bothRun) || !long(after)) {
        throw new Error(`the recording is not 440 Hz, then both, then 440 Hz: ${JSON.stringify(report.notes.replay)}`);
      }
      // Now play it: the player at the start, then seeked into each stretch with the seek
      // control, measured by the analyser over 1.5 s from the middle of the stretch.
      await host.click('#play-button');
      await host.waitForFunction(() => document.querySelector('#player').currentTime > 0.3, null, T);
      const start = await dominantFrequency(host, '#player', 1500);
      const middle = (run) => Math.round((run.from + run.to) / 2 - 0.75);
      const bothAt = await seekReplay(host, middle(bothRun));
      const bothHeard = await dominantFrequency(host, '#player', 1500);
      const aloneAt = await seekReplay(host, middle(after));
      const aloneHeard = await dominantFrequency(host, '#player', 1500);
      Object.assign(report.notes.replay, {
        start: { levels: levelsBelowPeak(start, [440, 660]), measured: start },
        both: { at: bothAt, levels: levelsBelowPeak(bothHeard, [440, 660]), measured: bothHeard },
        alone: { at: aloneAt, levels: levelsBelowPeak(aloneHeard, [440, 660]), measured: aloneHeard },
      });
      const problems = [];
      if (!(isTone(start, 440) && dbBelowPeak(start, 660) >= 25)) problems.push('the start is not 440 Hz alone');
      if (!allAudible(bothHeard, [440, 660], 10)) problems.push(`not both tones at ${bothAt} s`);
      if (!(isTone(aloneHeard, 440) && dbBelowPeak(aloneHeard, 660) >= 25)) problems.push(`not 440 Hz alone at ${aloneAt} s`);
      if (problems.length) throw new Error(`${problems.join('; ')}: ${JSON.stringify(report.notes.replay)}`);
      const span = (run) => `${run.from.toFixed(1)}–${run.to.toFixed(1)} s${run.blips ? ` (${run.blips} blip${run.blips > 1 ? 's' : ''})` : ''}`;
      return (
        `file ${file.duration.toFixed(1)} s (space ${report.notes.replay.spaceSeconds.toFixed(1)} s): 440 Hz ${span(before)}, ` +
        `both ${span(bothRun)} (wall clock ${at(clock.speakerOn)}–${at(clock.mute)} s), 440 Hz ${span(after)}; ` +
        `played at ${bothAt.toFixed(1)} s ${JSON.stringify(report.notes.replay.both.levels)}, ` +
        `at ${aloneAt.toFixed(1)} s ${JSON.stringify(report.notes.replay.alone.levels)} dB below peak`
      );
    });
  } finally {
    await hostBrowser.close();
    await speakerBrowser.close();
    await audienceBrowser.close();
  }
}

async function edge(report) {
  const [hostWav] = wavs;
  const edgeUrl = process.env.MAJLIS_TEST_EDGE;
  if (!edgeUrl) throw new Error('MAJLIS_TEST_EDGE is not set');
  const hostBrowser = await launch(hostWav);
  const listenerBrowser = await launch();
  try {
    const host = report.watch(await (await hostBrowser.newContext({ viewport: DESKTOP })).newPage(), 'host');
    await signUp(host, base, 'edge_host', 'Edge host');
    const spaceId = (await apiCall(host, 'POST', '/spaces', { title: 'Through the edge' })).data.id;
    await report.step('host microphone connects', async () => {
      await host.context().grantPermissions(['microphone']);
      await host.goto(`${base}/spaces/${spaceId}/studio?raw=1`);
      await host.waitForSelector('#mic[data-state="connected"]', { timeout: 20000 });
    });
    const listener = report.watch(await (await listenerBrowser.newContext({ viewport: PHONE })).newPage(), 'listener');
    const hls = [];
    const states = [];
    const streams = []; // listener stream requests: they stay open, so counted when sent
    listener.on('request', (request) => {
      if (request.url().endsWith('/stream')) streams.push(request.url());
    });
    listener.on('requestfinished', async (request) => {
      if (request.url().endsWith(`/spaces/${spaceId}/state`)) states.push(request.url());
      if (!request.url().includes('/hls/')) return;
      const response = await request.response();
      hls.push({ url: request.url(), status: response ? response.status() : 0, cache: response?.headers()['x-cache'] });
    });
    await report.step('listener hears the host tone through the edge with hls.js', async () => {
      await listener.goto(`${base}/spaces/${spaceId}?player=hlsjs`);
      await listener.click('#listen-button');
      await listener.waitForSelector('#connection[data-state="live"]', { timeout: 30000 });
      const measured = await dominantFrequency(listener, '#player', 2500);
      report.notes.tone = measured;
      if (!isTone(measured, 440)) throw new Error(JSON.stringify(measured));
      return JSON.stringify(measured);
    });
    await report.step('every HLS request went to the edge, with a token in the path', async () => {
      const tokens = new Set();
      for (const { url, status } of hls) {
        if (!url.startsWith(`${edgeUrl}/hls/${spaceId}/play.`)) throw new Error(`not through the edge: ${url}`);
        if (status !== 200) throw new Error(`${status} for ${url}`);
        tokens.add(url.split('/')[5]);
      }
      const parts = hls.filter(({ url }) => /\/p\d+-\d+-\d+\.m4s$/.test(url)).length;
      if (parts < 5) throw new Error(`only ${parts} parts fetched`);
      const distinct = new Set(hls.map(({ url }) => url.split('/').pop())).size;
      report.notes.edge = { requests: hls.length, distinct, parts, tokens: tokens.size, hits: hls.filter((r) => r.cache === 'HIT').length };
      return JSON.stringify(report.notes.edge);
    });
    await report.step('once listening, the state document comes from the edge', async () => {
      const fromEdge = states.filter((url) => url.startsWith(edgeUrl)).length;
      const last = states.slice(-2);
      if (!fromEdge || !last.every((url) => url.startsWith(edgeUrl))) throw new Error(JSON.stringify(states.slice(-5)));
      return `${fromEdge} of ${states.length} polls from the edge`;
    });
    await report.step('the renewed token is used at once and playback goes on', async () => {
      const before = new Set(hls.map(({ url }) => url.split('/')[5]));
      // playback_ttl is short in this test: the heartbeat has renewed the token by now.
      await listener.waitForTimeout(4500);
      const after = hls.slice(-10).map(({ url }) => url.split('/')[5]);
      if (after.every((token) => before.has(token))) throw new Error('no request used a renewed token');
      const measured = await dominantFrequency(listener, '#player', 2000);
      if (!isTone(measured, 440)) throw new Error(`after renewal: ${JSON.stringify(measured)}`);
      return `${new Set(hls.map(({ url }) => url.split('/')[5])).size} tokens used`;
    });
    await report.step("the default player plays the edge's listener stream", async () => {
      await listener.goto(`${base}/spaces/${spaceId}`);
      hls.length = 0;
      streams.length = 0;
      await listener.click('#listen-button');
      await listener.waitForSelector('#connection[data-state="live"]', { timeout: 30000 });
      const kind = await listener.getAttribute('#player', 'data-kind');
      if (kind !== 'edge') throw new Error(`the player plays by ${kind}`);
      const measured = await dominantFrequency(listener, '#player', 2500);
      report.notes.edgeStreamTone = measured;
      if (!isTone(measured, 440)) throw new Error(JSON.stringify(measured));
      const media = hls.filter(({ url }) => /\/(s|p)\d+[-\d]*\.m4s$/.test(url));
      const outside = streams.filter((url) => !url.startsWith(`${edgeUrl}/hls/${spaceId}/play.`));
      if (media.length || outside.length || !streams.length) {
        throw new Error(`media ${media.length}, streams ${streams.length}, not via the edge ${outside.length}`);
      }
      return `${streams.length} stream request(s), ${hls.length} other: ${JSON.stringify(measured)}`;
    });
    await report.step('the listener stream ends with its window and goes on with the renewed token', async () => {
      // The edge runs with a 5 s stream window and horizon and tokens last 6 s: a stream
      // lasts at most 10 s, so over 14 s one ends at least once and is asked for again
      // with the token the heartbeat renewed.
      const before = streams.length;
      const played = await listener.evaluate(async (ms) => {
        const audio = document.querySelector('#player');
        let waiting = 0;
        const count = () => (waiting += 1);
        audio.addEventListener('waiting', count);
        const from = { clock: performance.now(), media: audio.currentTime };
        await new Promise((resolve) => setTimeout(resolve, ms));
        audio.removeEventListener('waiting', count);
        return { wall: (performance.now() - from.clock) / 1000, media: audio.currentTime - from.media, waiting };
      }, 14000);
      const later = streams.slice(before);
      const tokens = new Set(streams.map((url) => url.split('/')[5]));
      report.notes.edgeStream = { played, streams: streams.length, tokens: tokens.size };
      const renewed = later.filter((url) => !streams.slice(0, before).includes(url));
      if (!renewed.length) throw new Error(`${later.length} new streams, ${tokens.size} tokens`);
      // A gap is media time lost against the wall clock. A 'waiting' event alone is not
      // one: on a busy machine the element may wait a few ms for the next part.
      if (played.media < played.wall - 0.5) throw new Error(`a gap: ${JSON.stringify(played)}`);
      const measured = await dominantFrequency(listener, '#player', 2000);
      if (!isTone(measured, 440)) throw new Error(`after reconnecting: ${JSON.stringify(measured)}`);
      return JSON.stringify(report.notes.edgeStream);
    });
    await report.step('a stream the edge does not have falls back to segment streams at once', async () => {
      // As when edge_url names a CDN but the servers still hand out stream URLs.
      await listener.route('**/stream', (route) => route.fulfill({ status: 404, body: '{"error": "not_found"}' }));
      try {
        await listener.goto(`${base}/spaces/${spaceId}`);
        const clicked = Date.now();
        await listener.click('#listen-button');
        await listener.waitForSelector('#player[data-kind="segments"]', { state: 'attached', timeout: 5000 });
        await listener.waitForSelector('#connection[data-state="live"]', { timeout: 15000 });
        const waited = (Date.now() - clicked) / 1000;
        const measured = await dominantFrequency(listener, '#player', 2000);
        if (!isTone(measured, 440)) throw new Error(JSON.stringify(measured));
        return `playing from segments ${waited.toFixed(1)} s after the click`;
      } finally {
        await listener.unroute('**/stream');
      }
    });
    await report.step('?player=segments streams whole segments through the edge', async () => {
      await listener.goto(`${base}/spaces/${spaceId}?player=segments`);
      hls.length = 0;
      await listener.click('#listen-button');
      await listener.waitForSelector('#connection[data-state="live"]', { timeout: 30000 });
      const started = Date.now();
      const measured = await dominantFrequency(listener, '#player', 2500);
      report.notes.streamTone = measured;
      if (!isTone(measured, 440)) throw new Error(JSON.stringify(measured));
      await listener.waitForTimeout(4000);
      const seconds = (Date.now() - started) / 1000;
      const segments = hls.filter(({ url }) => /\/s\d+\.m4s$/.test(url));
      const parts = hls.filter(({ url }) => /\/p\d+-\d+-\d+\.m4s$/.test(url));
      const outside = hls.filter(({ url }) => !url.startsWith(`${edgeUrl}/hls/${spaceId}/play.`));
      if (parts.length || outside.length) throw new Error(`parts ${parts.length}, not via the edge ${outside.length}`);
      if (segments.length < 2) throw new Error(`${segments.length} segments in ${seconds.toFixed(1)} s`);
      const kind = await listener.getAttribute('#player', 'data-kind');
      if (kind !== 'segments') throw new Error(`the player plays by ${kind}`);
      report.notes.stream = { requests: hls.length, segments: segments.length, seconds };
      return `${hls.length} requests in ${seconds.toFixed(1)} s: ${JSON.stringify(measured)}`;
    });
  } finally {
    await hostBrowser.close();
    await listenerBrowser.close();
  }
}

// transcript -------------------------------------------------------------------------------

async function transcript(report) {
  const spaceId = process.env.MAJLIS_TEST_SPACE;
  const browser = await launch();
  try {
    const page = report.watch(await (await browser.newContext({ viewport: DESKTOP })).newPage(), 'listener');
    await page.goto(`${base}/spaces/${spaceId}/replay`);
    report.notes.first = await report.step('the replay page has a transcript section', async () => {
      await page.waitForSelector('#transcript-card:not([hidden])', T);
      const state = await page.getAttribute('#transcript-card', 'data-state');
      return `${state}: ${await text(page, '#transcript-status')}`;
    });
    let lines = [];
    await report.step('the transcript appears by itself once it is made', async () => {
      await page.waitForSelector('#transcript-card[data-state="done"] #transcript-lines button', { timeout: 120000 });
      lines = await page.$$eval('#transcript-lines button', (buttons) =>
        buttons.map((b) => ({ start: Number(b.dataset.start), dir: b.getAttribute('dir'), text: b.querySelector('.said').textContent })),
      );
      report.notes.lines = lines;
      report.notes.heard = lines.map((line) => line.text).join(' ');
      return `${lines.length} line(s): ${report.notes.heard}`;
    });
    await report.step('a line plays the recording from its start and is marked as being heard', async () => {
      const index = lines.length > 1 ? 1 : 0;
      const { start } = lines[index];
      await page.locator('#transcript-lines button').nth(index).click();
      const handle = await page.waitForFunction(
        ({ start, index }) => {
          const audio = document.querySelector('#player');
          const current = [...document.querySelectorAll('#transcript-lines [aria-current]')];
          const line = document.querySelectorAll('#transcript-lines button')[index];
          const near = !audio.seeking && !audio.paused && Math.abs(audio.currentTime - start) < 0.5;
          return near && current.length === 1 && current[0] === line && { at: audio.currentTime };
        },
        { start, index },
        T,
      );
      const { at } = await handle.jsonValue();
      await screenshotBoth(page, shots, 'replay-transcript');
      return `line ${index + 1} of ${lines.length} starts at ${start} s; playing from ${at.toFixed(2)} s`;
    });
  } finally {
    await browser.close();
  }
}

async function waitContains(page, selector, part, timeout = 10000) {
  await page.waitForFunction(
    ({ selector, part }) => document.querySelector(selector)?.textContent.includes(part),
    { selector, part },
    { timeout },
  );
}

async function captions(report) {
  const spaceId = process.env.MAJLIS_TEST_SPACE;
  const browser = await launch();
  try {
    const page = report.watch(await (await browser.newContext({ viewport: DESKTOP })).newPage(), 'listener');
    await page.goto(`${base}/spaces/${spaceId}`);
    await page.click('#listen-button');
    const seen = new Set();
    await report.step('live captions appear beside the player, in step with it', async () => {
      await page.waitForSelector('#captions:not([hidden]) .caption', { timeout: 45000 });
      // Lines come and go with the audio: gather what shows over a few seconds.
      for (let i = 0; i < 16; i += 1) {
        for (const line of await page.$$eval('#captions .caption', (ps) => ps.map((p) => [p.textContent, p.dir]))) {
          seen.add(JSON.stringify(line));
        }
        await page.waitForTimeout(500);
      }
      const lines = [...seen].map((s) => JSON.parse(s));
      report.notes.heard = lines.map(([text]) => text).join(' ');
      report.notes.dirs = [...new Set(lines.map(([, dir]) => dir))];
      report.notes.kind = await page.getAttribute('#player', 'data-kind');
      await screenshotBoth(page, shots, 'listen-captions');
      return `${lines.length} line(s) via ${report.notes.kind}: ${report.notes.heard}`;
    });
    await report.step('the toggle hides captions and shows them again', async () => {
      await page.click('#captions-button');
      await page.waitForSelector('#captions[hidden]', { ...T, state: 'attached' });
      const off = await page.getAttribute('#captions-button', 'aria-pressed');
      await page.click('#captions-button');
      await page.waitForSelector('#captions:not([hidden])', T);
      const on = await page.getAttribute('#captions-button', 'aria-pressed');
      if (off !== 'false' || on !== 'true') throw new Error(`aria-pressed ${off} then ${on}`);
      return 'off, then on again';
    });
    // hls.js as any site would embed it (not our player): its native text track starts as a
    // data: URL, which our pages' CSP (media-src 'self' blob:) refuses, so not under it.
    const other = report.watch(
      await (await browser.newContext({ viewport: DESKTOP, bypassCSP: true })).newPage(),
      'hls.js',
    );
    await report.step('hls.js plays main.m3u8 and shows its subtitles in step with the audio', async () => {
      await other.goto(`${base}/spaces/${spaceId}`);
      const opened = await other.evaluate(async (spaceId) => {
        const Hls = (await import('/vendor/hls.mjs')).default;
        const anon = await (await fetch('/api/v1/auth/anonymous', { method: 'POST' })).json();
        const joined = await (
          await fetch(`/api/v1/spaces/${spaceId}/join`, {
            method: 'POST',
            headers: { Authorization: `Bearer ${anon.token}`, 'Content-Type': 'application/json' },
            body: '{}',
          })
        ).json();
        const url = joined.playback_url.replace(/index\.m3u8$/, 'main.m3u8');
        const audio = document.createElement('audio');
        audio.muted = true;
        document.body.append(audio);
        // As docs/captions.md tells a site to: 3 s behind the live edge, not hls.js's
        // low-latency 0.8 s, which is closer than captions can be made.
        const hls = new Hls({ lowLatencyMode: true, liveSyncDuration: 3 });
        const parsed = new Promise((resolve) => hls.on(Hls.Events.MANIFEST_PARSED, resolve));
        window.subtitleLoads = [];
        hls.on(Hls.Events.SUBTITLE_FRAG_PROCESSED, (_, { frag }) => window.subtitleLoads.push(frag.sn));
        hls.loadSource(url);
        hls.attachMedia(audio);
        await parsed;
        hls.subtitleDisplay = true;
        hls.subtitleTrack = 0;
        await audio.play();
        window.testAudio = audio;
        return { tracks: hls.subtitleTracks.length };
      }, spaceId);
      if (opened.tracks !== 1) throw new Error(`${opened.tracks} subtitle tracks in main.m3u8`);
      // Sample what the player shows: a cue active at the audio's position, on its timeline.
      // Up to 20 s: on a busy machine the captioner runs behind, and a cue reaches hls.js
      // after its words were heard; it must still be shown (media/hls/subtitles.py).
      const samples = [];
      for (let i = 0; i < 80 && samples.filter((x) => x.active.length).length < 8; i += 1) {
        samples.push(
          await other.evaluate(() => {
            const audio = window.testAudio;
            const track = [...audio.textTracks].find((t) => t.kind === 'subtitles' || t.kind === 'captions');
            const cues = track?.cues ? [...track.cues] : [];
            return {
              at: audio.currentTime,
              active: track?.activeCues ? [...track.activeCues].map((c) => c.text) : [],
              starts: cues.map((c) => c.startTime),
            };
          }),
        );
        await other.waitForTimeout(250);
      }
      const active = samples.filter((s) => s.active.length);
      const last = samples.at(-1);
      const loads = await other.evaluate(() => window.subtitleLoads);
      report.notes.hlsjs = { active: active.length, at: last.at, cues: last.starts.length, loads };
      if (!active.length) throw new Error(`no cue was ever active: ${JSON.stringify({ ...last, loads })}`);
      const off = last.starts.filter((t) => t < last.at - 120 || t > last.at + 10);
      if (off.length) throw new Error(`cues off the audio's timeline: ${off} at ${last.at}`);
      return `${active.length}/${samples.length} samples showed a cue (${active[0].active.join(' | ')}); ${last.starts.length} cues, position ${last.at.toFixed(1)} s`;
    });
    const host = report.watch(await (await browser.newContext({ viewport: DESKTOP })).newPage(), 'host');
    await report.step('the studio tells the host captions are on, and the host turns them off', async () => {
      await host.goto(`${base}/login`);
      await host.fill('#username', process.env.MAJLIS_TEST_HOST);
      await host.fill('#password', process.env.MAJLIS_TEST_PASSWORD);
      await Promise.all([host.waitForURL(`${base}/`), host.click('button[type=submit]')]);
      await host.goto(`${base}/spaces/${spaceId}/studio`);
      await waitContains(host, '#stage-captions', 'Captions are on');
      await host.click('#captions-switch');
      await host.waitForSelector('#captions-switch[aria-pressed="false"]', T);
      await waitContains(host, '#stage-captions', 'Captions are off');
      await screenshotBoth(host, shots, 'studio-captions-off');
      return await text(host, '#stage-captions');
    });
    await report.step('the listener is told captions are off and sees none', async () => {
      await waitContains(page, '#captions-note', 'turned captions off', 15000);
      await page.waitForSelector('#captions[hidden]', { ...T, state: 'attached' });
      return await text(page, '#captions-note');
    });
    const arabic = process.env.MAJLIS_TEST_ARABIC_SPACE;
    await report.step('a space in a language the model lacks says so, not an empty box', async () => {
      await page.goto(`${base}/spaces/${arabic}`);
      await page.click('#listen-button');
      await waitContains(page, '#captions-note', "the space's language", 15000);
      await page.waitForSelector('#captions[hidden]', { ...T, state: 'attached' });
      await page.waitForSelector('#captions-button[hidden]', { ...T, state: 'attached' });
      await screenshotBoth(page, shots, 'listen-captions-language');
      await host.goto(`${base}/spaces/${arabic}/studio`);
      await waitContains(host, '#stage-captions', "the space's language");
      await host.waitForSelector('#captions-switch[hidden]', { ...T, state: 'attached' });
      return `${await text(page, '#captions-note')} / ${await text(host, '#stage-captions')}`;
    });
  } finally {
    await browser.close();
  }
}

// removal ----------------------------------------------------------------------------------

async function removal(report) {
  const browser = await launch(wavs[0]);
  try {
    const host = report.watch(await (await browser.newContext({ viewport: DESKTOP })).newPage(), 'host');
    const speaker = report.watch(await (await browser.newContext({ viewport: PHONE })).newPage(), 'speaker');
    const REASON = 'Threats against another speaker';
    await signUp(host, base, 'hana_host', 'Hana');
    const speakerUser = await signUp(speaker, base, 'sami_speaks', 'Sami');
    const listener = report.watch(await (await browser.newContext({ viewport: PHONE })).newPage(), 'listener');
    const listenerUser = await signUp(listener, base, 'lena_listens', 'Lena');
    const spaceId = (await apiCall(host, 'POST', '/spaces', { title: 'Open mic' })).data.id;
    const card = `#speakers li[data-user-id="${speakerUser.id}"]`;

    await report.step('a listener asks to speak and the host approves', async () => {
      await host.goto(`${base}/spaces/${spaceId}/studio`);
      await speaker.goto(`${base}/spaces/${spaceId}`);
      await speaker.click('#listen-button');
      await speaker.waitForSelector('#player-panel:not([hidden])', T);
      await speaker.click('#ask-to-speak');
      await speaker.waitForSelector('#withdraw', T);
      await host.click(`#requests li[data-user-id="${speakerUser.id}"] [data-action=approve]`);
      await host.waitForSelector(card, T);
      await speaker.waitForSelector('#step-down', T);
    });

    await report.step('the host bans them with a reason from the studio', async () => {
      await host.click(`${card} [data-action=ban]`);
      await host.waitForSelector('dialog[open] #remove-reason');
      await host.fill('#remove-reason', REASON);
      await host.click('#remove-confirm');
      await host.waitForSelector(card, { state: 'detached', ...T });
    });

    await report.step('the banned speaker alone is told what was done and why', async () => {
      await speaker.waitForFunction(
        (reason) => document.querySelector('#alert')?.textContent.includes(reason),
        REASON,
        T,
      );
      const alert = await text(speaker, '#alert');
      if (!alert.includes('banned')) throw new Error(alert);
      await speaker.waitForSelector('#speak-panel', { state: 'hidden', ...T });
      const hostAlert = (await host.isVisible('#alert')) ? await text(host, '#alert') : '';
      if (hostAlert.includes(REASON)) throw new Error(`the host's page shows the notice: ${hostAlert}`);
      await screenshotBoth(speaker, shots, 'listen-banned');
      return alert;
    });

    await report.step('the statement is theirs at /notices, and the ban is in the audit log', async () => {
      const notices = await apiCall(speaker, 'GET', '/notices');
      const [notice] = notices.data.notices;
      if (notices.data.notices.length !== 1 || notice.text !== REASON || notice.action !== 'ban') {
        throw new Error(JSON.stringify(notices));
      }
      const theirs = await apiCall(host, 'GET', '/notices');
      if (theirs.data.notices.length !== 0) throw new Error(JSON.stringify(theirs));
      const log = await apiCall(host, 'GET', `/spaces/${spaceId}/audit`);
      const [ban] = log.data.entries;
      if (ban.action !== 'ban' || ban.reason !== REASON) throw new Error(JSON.stringify(log));
    });

    await report.step('a banned listener reads why when the heartbeat is refused', async () => {
      await listener.goto(`${base}/spaces/${spaceId}`);
      await listener.click('#listen-button');
      await listener.waitForSelector('#player-panel:not([hidden])', T);
      const why = 'Spam in the reactions';
      const banned = await apiCall(host, 'POST', `/spaces/${spaceId}/participants/${listenerUser.id}/remove`, {
        ban: true,
        reason: why,
        category: 'spam',
      });
      if (banned.status !== 204) throw new Error(JSON.stringify(banned));
      await listener.waitForFunction((why) => document.querySelector('#alert')?.textContent.includes(why), why, T);
      await listener.waitForSelector('#player-panel', { state: 'hidden', ...T });
      return text(listener, '#alert');
    });
  } finally {
    await browser.close();
  }
}

// reminders --------------------------------------------------------------------------------

async function reminders(report) {
  const browser = await launch(wavs[0]);
  try {
    const host = report.watch(await (await browser.newContext({ viewport: DESKTOP })).newPage(), 'host');
    const fan = report.watch(await (await browser.newContext({ viewport: PHONE })).newPage(), 'fan');
    await signUp(host, base, 'rana_host', 'Rana');
    await signUp(fan, base, 'fadi_fan', 'Fadi');
    const scheduledFor = Date.now() / 1000 + 3600;
    const spaceId = (await apiCall(host, 'POST', '/spaces', { title: TITLE, scheduled_for: scheduledFor })).data.id;

    await report.step('the header shows no badge before anything happened', async () => {
      const asked = await apiCall(fan, 'PUT', `/spaces/${spaceId}/reminder`);
      if (asked.status !== 200) throw new Error(JSON.stringify(asked));
      await fan.goto(`${base}/`);
      await fan.waitForSelector('#notifications-button', T);
      await fan.waitForSelector('#notifications-button .badge', { ...T, state: 'hidden' });
    });
    await report.step('once the host starts the space the badge counts one unread', async () => {
      const started = await apiCall(host, 'POST', `/spaces/${spaceId}/start`);
      if (started.status !== 200) throw new Error(JSON.stringify(started));
      await fan.reload();
      await waitText(fan, '#notifications-button .badge', '1');
    });
    await report.step('the list says it is live, links to it, and opening it marks it read', async () => {
      await fan.click('#notifications-button');
      const link = '#notifications li a';
      await fan.waitForSelector(link, T);
      const said = await text(fan, link);
      if (!said.startsWith('Live now') || !said.includes(TITLE)) throw new Error(said);
      const href = await fan.getAttribute(link, 'href');
      if (href !== `/spaces/${spaceId}`) throw new Error(href);
      await fan.waitForSelector('#notifications-button .badge', { ...T, state: 'hidden' });
      await screenshot(fan, shots, 'notifications-phone');
      return said;
    });
  } finally {
    await browser.close();
  }
}

// moderation -------------------------------------------------------------------------------

async function logIn(page, username, password = 'correct horse battery') {
  await page.goto(`${base}/login`);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.waitForSelector('button[type=submit]:not([disabled])', T);
  await Promise.all([page.waitForURL(`${base}/`), page.click('button[type=submit]')]);
  await page.waitForSelector('#logout', T);
}

// mod_one and mod_two are site moderators before this runs (test_browser.py grants them).
async function moderation(report) {
  const browser = await launch(wavs[0]);
  try {
    const host = report.watch(await (await browser.newContext({ viewport: PHONE })).newPage(), 'host');
    const visitor = report.watch(await (await browser.newContext({ viewport: PHONE })).newPage(), 'visitor');
    const mod1 = report.watch(await (await browser.newContext({ viewport: DESKTOP })).newPage(), 'mod1');
    const mod2 = report.watch(await (await browser.newContext({ viewport: DESKTOP })).newPage(), 'mod2');
    await signUp(host, base, 'spammy_host', 'Spammy');
    const spaceId = (await apiCall(host, 'POST', '/spaces', { title: 'Free crypto, click here' })).data.id;
    const WHY = 'Crypto spam links in the title';

    await report.step('a visitor who is not logged in reports the space', async () => {
      await visitor.goto(`${base}/spaces/${spaceId}`);
      await visitor.click('#report-button');
      await visitor.waitForSelector('dialog[open] #report-category', T);
      await visitor.selectOption('#report-category', 'spam');
      await visitor.fill('#report-text', 'Links to a scam in the title');
      await visitor.click('#report-send');
      await waitText(visitor, '#report-status', 'Thank you: the site’s moderators will look at it.');
    });

    await report.step('a moderator sees it in the queue and suspends the host with a reason', async () => {
      await logIn(mod1, 'mod_one');
      await mod1.waitForSelector('#moderation-link', T);
      await mod1.click('#moderation-link');
      const item = '#reports li.report-item';
      await mod1.waitForSelector(item, T);
      const said = await text(mod1, item);
      if (!said.includes('Links to a scam')) throw new Error(said);
      await mod1.selectOption(`${item} select[id^=decision-]`, 'suspend');
      await mod1.waitForSelector(`${item} input[id^=days-]`, T);
      await mod1.fill(`${item} input[id^=days-]`, '3');
      await mod1.fill(`${item} input[id^=reason-]`, WHY);
      await screenshot(mod1, shots, 'moderation-desk');
      await mod1.click(`${item} button[type=submit]`);
      await waitText(mod1, '#alert', 'Report decided: suspend.');
      await mod1.waitForSelector(item, { state: 'detached', ...T });
    });

    await report.step('the operator page lists the live space with its listeners', async () => {
      await mod1.click('#admin-link');
      const row = `#live-rows tr[data-space="${spaceId}"]`;
      await mod1.waitForSelector(row, T);
      const said = await text(mod1, row);
      if (!said.includes('Free crypto')) throw new Error(said);
      const lag = await text(mod1, '#loop-lag');
      if (!lag.endsWith('ms')) throw new Error(lag);
      await screenshot(mod1, shots, 'admin-overview');
      return said;
    });

    await report.step('the suspended host reads why at Notices and appeals', async () => {
      await host.goto(`${base}/notices`);
      const item = '#notices li.notice-item';
      await host.waitForSelector(item, T);
      const said = await text(host, item);
      if (!said.includes('A site moderator suspended your account') || !said.includes(WHY)) throw new Error(said);
      const alert = await text(host, '#alert');
      if (!alert.includes('suspended until')) throw new Error(alert);
      const refused = await apiCall(host, 'POST', '/spaces', { title: 'Another one' });
      if (refused.status !== 403 || refused.data.error !== 'account_suspended') throw new Error(JSON.stringify(refused));
      await host.fill(`${item} textarea`, 'The links were to my own shop, not a scam');
      await host.click(`${item} .appeal-form button[type=submit]`);
      await waitText(host, `${item} .appeal-state`, 'Your appeal is waiting for a moderator.');
      await screenshot(host, shots, 'notices-appeal-phone');
    });

    await report.step('the moderator who decided cannot review the appeal; another one reverses it', async () => {
      await mod1.goto(`${base}/moderation`);
      const appeal = '#appeals li.appeal-item';
      await mod1.waitForSelector(appeal, T);
      await mod1.click(`${appeal} button[data-outcome=reversed]`);
      await mod1.waitForFunction(() => document.querySelector('#alert')?.textContent.includes('other than the one who decided'), null, T);
      await logIn(mod2, 'mod_two');
      await mod2.goto(`${base}/moderation`);
      await mod2.waitForSelector(appeal, T);
      await mod2.fill(`${appeal} input`, 'A shop of their own is allowed');
      await mod2.click(`${appeal} button[data-outcome=reversed]`);
      await waitText(mod2, '#alert', 'Appeal reversed.');
      await mod2.waitForSelector(appeal, { state: 'detached', ...T });
    });

    await report.step('the host reads that the appeal was accepted and can act again', async () => {
      await host.reload();
      const state = '#notices li.notice-item .appeal-state';
      await host.waitForSelector(state, T);
      const said = await text(host, state);
      if (!said.startsWith('Your appeal was accepted')) throw new Error(said);
      const created = await apiCall(host, 'POST', '/spaces', { title: 'Back again' });
      if (created.status !== 201) throw new Error(JSON.stringify(created));
      const notMod = await apiCall(host, 'GET', '/moderation/reports');
      if (notMod.status !== 403) throw new Error(JSON.stringify(notMod));
      return said;
    });
  } finally {
    await browser.close();
  }
}

// private spaces -------------------------------------------------------------------------

async function privacy(report) {
  const browser = await launch(wavs[0]);
  try {
    const host = report.watch(await (await browser.newContext({ viewport: DESKTOP })).newPage(), 'host');
    const guest = report.watch(await (await browser.newContext({ viewport: PHONE })).newPage(), 'guest');
    const stranger = report.watch(await (await browser.newContext({ viewport: PHONE })).newPage(), 'stranger');
    await signUp(host, base, 'rima_host', 'Rima');
    await signUp(guest, base, 'gala_guest', 'Gala');
    await signUp(stranger, base, 'sam_stranger', 'Sam');
    let spaceId;

    await report.step('the host creates a private space and adds a guest in the studio', async () => {
      await host.goto(`${base}/new`);
      await host.fill('#title', 'Family council');
      await host.check('input[name=visibility][value=private]');
      await Promise.all([host.waitForURL(/\/studio$/), host.click('#create')]);
      spaceId = host.url().split('/spaces/')[1].split('/')[0];
      await host.waitForSelector('#guests-panel:not([hidden])', T);
      await host.fill('#guest-user', 'nobody_like_that');
      await host.click('#guest-add');
      await waitText(host, '#guest-status', "no user named 'nobody_like_that'");
      await host.fill('#guest-user', 'gala_guest');
      await host.click('#guest-add');
      await waitText(host, '#guest-status', 'gala_guest can listen now.');
      await waitText(host, '#guest-count', '1');
      await screenshot(host, shots, 'studio-guests');
    });

    await report.step('a guest listens; someone not invited is told why', async () => {
      await guest.goto(`${base}/spaces/${spaceId}`);
      await guest.click('#listen-button');
      await guest.waitForSelector('#player-panel:not([hidden])', T);
      const note = await text(guest, '#listen-note');
      if (!note.startsWith('A private space')) throw new Error(note);
      await stranger.goto(`${base}/spaces/${spaceId}`);
      await stranger.click('#listen-button');
      await stranger.waitForFunction(() => document.querySelector('#alert')?.textContent.includes('only its host’s guests') || document.querySelector('#alert')?.textContent.includes("only its host's guests"), null, T);
      await screenshot(stranger, shots, 'listen-private-refused-phone');
      return text(stranger, '#alert');
    });

    await report.step('after the end the guest plays the replay through its tokened URL', async () => {
      const ended = await apiCall(host, 'POST', `/spaces/${spaceId}/end`);
      if (ended.status !== 200) throw new Error(JSON.stringify(ended));
      await guest.goto(`${base}/spaces/${spaceId}/replay`);
      await guest.waitForFunction(() => document.querySelector('#download-link')?.getAttribute('href')?.includes('/play.'), null, T);
      await stranger.goto(`${base}/spaces/${spaceId}/replay`);
      await stranger.waitForFunction(() => document.querySelector('#alert')?.textContent.includes('guests'), null, T);
    });

    await report.step('a space without a recording says so on its replay page', async () => {
      const made = await apiCall(host, 'POST', '/spaces', { title: 'Off the record', recording: false });
      if (made.status !== 201 || made.data.recording !== false) throw new Error(JSON.stringify(made));
      await apiCall(host, 'POST', `/spaces/${made.data.id}/end`);
      await guest.goto(`${base}/spaces/${made.data.id}/replay`);
      await waitText(guest, '#player-detail', 'This space was not recorded: its host chose not to keep a replay.');
      if (await guest.isVisible('#download-link')) throw new Error('a download is offered');
    });
  } finally {
    await browser.close();
  }
}

// languages ---------------------------------------------------------------------------------

// Words allowed to stay in Latin letters on an Arabic page: file formats and units.
const LATIN_ALLOWED = new Set(['PNG', 'JPEG', 'WebP', 'KiB', 'MB', 'HLS', 'CSV', 'Opus', 'm4a', 'ics']);

/** What an Arabic page still says in Latin letters, outside what people typed (dir=auto),
 * form values and translate="no": visible text, and labels a screen reader speaks. */
async function latinLeft(page) {
  const found = await page.evaluate(() => {
    const out = [];
    const skip = (el) => el.closest('[dir="auto"], [translate="no"], script, style, noscript');
    const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const el = node.parentElement;
      if (!el || skip(el) || !visible(el)) continue;
      out.push(...(node.textContent.match(/[A-Za-z][A-Za-z0-9'’-]*/g) ?? []).map((w) => `${w} (${el.tagName.toLowerCase()}#${el.id})`));
    }
    for (const el of document.querySelectorAll('[aria-label], [placeholder], [title]')) {
      if (skip(el) || !visible(el)) continue;
      for (const attr of ['aria-label', 'placeholder', 'title']) {
        const words = el.getAttribute(attr)?.match(/[A-Za-z][A-Za-z0-9'’-]*/g) ?? [];
        out.push(...words.map((w) => `${w} (@${attr} of ${el.tagName.toLowerCase()}#${el.id})`));
      }
    }
    out.push(...(document.title.match(/[A-Za-z][A-Za-z0-9'’-]*/g) ?? []).map((w) => `${w} (title)`));
    return out;
  });
  return found.filter((entry) => !LATIN_ALLOWED.has(entry.split(' ')[0]));
}

async function inArabic(page, name) {
  await page.waitForFunction(() => !document.documentElement.classList.contains('i18n-pending'), null, T);
  const root = await page.evaluate(() => [document.documentElement.lang, document.documentElement.dir]);
  if (root.join() !== 'ar,rtl') throw new Error(`${name}: <html lang dir> is ${root}`);
  await page.waitForTimeout(700); // let the page's own requests fill it in
  const left = await latinLeft(page);
  if (left.length) throw new Error(`${name} still says in Latin letters: ${left.join(', ')}`);
  await screenshotBoth(page, shots, `ar-${name}`);
}

// mod_ar is a site moderator before this runs (test_browser.py grants it).
async function languages(report) {
  const browser = await launch(wavs[0]);
  try {
    const arabic = { viewport: PHONE, locale: 'ar-EG' }; // a region whose digits are Arabic-Indic
    const visitor = report.watch(await (await browser.newContext(arabic)).newPage(), 'visitor');
    const host = report.watch(await (await browser.newContext(arabic)).newPage(), 'host');
    const mod = report.watch(await (await browser.newContext({ ...arabic, viewport: DESKTOP })).newPage(), 'mod');
    const english = report.watch(await (await browser.newContext({ viewport: DESKTOP, locale: 'en-GB' })).newPage(), 'english');

    await report.step('an Arabic browser gets every public page in Arabic, right to left', async () => {
      for (const [name, path] of [['home', '/'], ['login', '/login'], ['signup', '/signup'], ['notfound', '/spaces/a1b2c3d4e5f6']]) {
        await visitor.goto(`${base}${path}`);
        await inArabic(visitor, name);
      }
    });

    await report.step('a server error is shown in Arabic, from its code', async () => {
      await visitor.goto(`${base}/login`);
      await visitor.fill('#username', 'nobody_here');
      await visitor.fill('#password', 'wrong password here');
      await visitor.waitForSelector('button[type=submit]:not([disabled])', T);
      await visitor.click('button[type=submit]');
      await visitor.waitForSelector('#alert:not([hidden])', T);
      const alert = await text(visitor, '#alert');
      if (!/[\u0600-\u06FF]/.test(alert) || /[A-Za-z]/.test(alert)) throw new Error(`the alert says ${alert}`);
    });

    let spaceId;
    await report.step('a host in Arabic creates a space and runs its studio', async () => {
      await signUp(host, base, 'arabic_host', 'مضيفة المجلس');
      await host.goto(`${base}/new`);
      await inArabic(host, 'new');
      const created = await apiCall(host, 'POST', '/spaces', { title: TITLE, description: DESCRIPTION });
      if (created.data.state !== 'live') throw new Error(`a new space is ${created.data.state}`);
      spaceId = created.data.id;
      await host.goto(`${base}/spaces/${spaceId}/studio`);
      await host.waitForSelector('#end-space:not([hidden])', T);
      await inArabic(host, 'studio');
    });

    await report.step('a listener in Arabic hears the space, with counts in Arabic digits', async () => {
      await visitor.goto(`${base}/spaces/${spaceId}`);
      await visitor.click('#listen-button');
      await visitor.waitForSelector('#player-panel:not([hidden])', T);
      await visitor.waitForFunction(() => /^[\u0660-\u0669]+$/.test(document.querySelector('#listener-count')?.textContent.trim() ?? ''), null, T);
      await inArabic(visitor, 'listen');
    });

    await report.step('the replay, notices, moderation and operator pages are in Arabic', async () => {
      const ended = await apiCall(host, 'POST', `/spaces/${spaceId}/end`);
      if (ended.status !== 200) throw new Error(`end answered ${ended.status}`);
      await visitor.goto(`${base}/spaces/${spaceId}/replay`);
      await inArabic(visitor, 'replay');
      await host.goto(`${base}/notices`);
      await inArabic(host, 'notices');
      await logIn(mod, 'mod_ar');
      for (const [name, path] of [['moderation', '/moderation'], ['admin', '/admin']]) {
        await mod.goto(`${base}${path}`);
        await inArabic(mod, name);
      }
    });

    await report.step('the language switch changes the page and remembers the choice', async () => {
      await english.goto(`${base}/`);
      const dir = await english.evaluate(() => document.documentElement.dir);
      if (dir !== 'ltr') throw new Error(`an English browser got dir=${dir}`);
      await Promise.all([english.waitForEvent('load'), english.selectOption('#language', 'ar')]);
      await inArabic(english, 'home-switched');
      await english.goto(`${base}/login`);
      await inArabic(english, 'login-remembered');
      await Promise.all([english.waitForEvent('load'), english.selectOption('#language', 'en')]);
      await waitText(english, 'h1', 'Log in');
    });
  } finally {
    await browser.close();
  }
}

const SCENARIOS = { main, removal, waiting, audio, edge, transcript, captions, reminders, moderation, privacy, languages };

const report = new Report(scenario);
try {
  if (!SCENARIOS[scenario]) throw new Error(`unknown scenario ${scenario}`);
  await SCENARIOS[scenario](report);
} catch (error) {
  if (!(error instanceof StepFailed)) report.fail('scenario', error?.stack || error);
}
report.print();
process.exit(0);
