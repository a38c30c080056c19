// Browser scenarios, run by tests/web/test_browser.py:
//   node tests/web/flows.mjs <scenario> <base-url> <screenshot-dir> [wav...]
// Prints one JSON line: {scenario, ok, checks:[{name, ok, detail}], errors, notes}.
//
// main    — sign up, create, studio, listen, counts, reactions, ask → approve → microphone
//           (over WebRTC, no reload), mute, co-host, demote, end with confirmation, replay,
//           search; screenshots of every page at desktop and phone size.
// waiting — the waiting room: several listeners join a space admitting 0.5/s; one sees its
//           position and moves on by itself.
// audio   — (needs the media plane) a fake-microphone tone reaches a listener's hls.js player
//           and the replay; the speakers' mix-minus carries the other speaker's tone.

import {
  DESKTOP,
  PHONE,
  Report,
  StepFailed,
  apiCall,
  dbBelowPeak,
  dominantFrequency,
  isTone,
  launch,
  screenshot,
  screenshotBoth,
  signUp,
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

    const hostUser = await report.step('host signs up', () => signUp(host, base, 'sara_host', 'سارة'));
    report.notes.host = hostUser.id;

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

    await report.step('invite shows the server reason for an unknown user', async () => {
      await host.fill('#invite-user', 'nobody-here');
      await host.click('#invite-form button[type=submit]');
      await host.waitForSelector('#alert:not([hidden])', T);
      return text(host, '#alert');
    });

    await report.step('host demotes; listener is back in the audience, listening', async () => {
      await host.click(`#speakers li[data-user-id="${listenerUser.id}"] [data-action=demote]`);
      await host.waitForSelector(`#speakers li[data-user-id="${listenerUser.id}"]`, { state: 'detached', ...T });
      await listener.waitForSelector('#ask-to-speak', T);
      await listener.waitForSelector('#mic', { state: 'detached', ...T });
      await listener.waitForSelector('#player-panel:not([hidden])', T);
      return text(listener, '#alert');
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

    await report.step('unknown space shows a clear message', async () => {
      await anon.goto(`${base}/spaces/doesnotexist`);
      await waitText(anon, '#space-title', 'No such space');
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
  const browser = await launch();
  try {
    const hostContext = await browser.newContext({ viewport: DESKTOP });
    const host = report.watch(await hostContext.newPage(), 'host');
    await report.step('host signs up and goes live', async () => {
      await signUp(host, base, 'wait_host', 'Host');
      const created = await apiCall(host, 'POST', '/spaces', { title: 'غرفة الانتظار — Waiting room test' });
      report.notes.space = created.data.id;
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
  } finally {
    await browser.close();
  }
}

// audio (media plane) ----------------------------------------------------------------------

async function audio(report) {
  const [hostWav, speakerWav] = wavs;
  const hostBrowser = await launch(hostWav);
  const speakerBrowser = await launch(speakerWav);
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
      await host.goto(`${base}/spaces/${spaceId}/studio?raw=1`);
      await host.waitForSelector('#mic[data-state="connected"]', { timeout: 20000 });
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
    const listenerUser = await signUp(listener, base, 'tone_speaker', 'Tone speaker');
    await report.step('speaker is approved and hears the host in the mix-minus, not themself', async () => {
      await listener.goto(`${base}/spaces/${spaceId}?raw=1`);
      await listener.click('#ask-to-speak');
      await host.waitForSelector(`#requests li[data-user-id="${listenerUser.id}"] [data-action=approve]`, { timeout: 15000 });
      await host.click(`#requests li[data-user-id="${listenerUser.id}"] [data-action=approve]`);
      await listener.waitForSelector('#mic[data-state="connected"]', { timeout: 20000 });
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
    await report.step('replay plays the recorded tone', async () => {
      await apiCall(host, 'POST', `/spaces/${spaceId}/end`);
      await host.goto(`${base}/spaces/${spaceId}/replay`);
      await host.waitForSelector('#play-button:not([disabled])', { timeout: 20000 });
      await host.click('#play-button');
      await host.waitForTimeout(500);
      const measured = await dominantFrequency(host, '#player', 2000);
      report.notes.replayTone = measured;
      if (!isTone(measured, 440)) throw new Error(JSON.stringify(measured));
    });
  } finally {
    await hostBrowser.close();
    await speakerBrowser.close();
  }
}

const SCENARIOS = { main, waiting, audio };

const report = new Report(scenario);
try {
  if (!SCENARIOS[scenario]) throw new Error(`unknown scenario ${scenario}`);
  await SCENARIOS[scenario](report);
} catch (error) {
  if (!(error instanceof StepFailed)) report.fail('scenario', error?.stack || error);
}
report.print();
process.exit(0);
