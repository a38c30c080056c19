// A host speaking from the studio while the media node running the space drains: the
// page must follow the node's 'move' (a second peer connection, made before the first is
// let go) without ever showing "reconnecting". Driven by tests/cluster/test_browser_drain.py
// over stdin/stdout: it prints {"ready": spaceId} once the microphone is connected, waits
// for a line on stdin (the node was sent SIGTERM), and prints what the page went through.
//
//   node tests/web/drain.mjs BASE_URL TONE_WAV

import { createInterface } from 'node:readline';
import { DESKTOP, apiCall, launch, signUp, trackPeers } from './lib.mjs';

const [base, wav] = process.argv.slice(2);
const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (message) => console.log(JSON.stringify(message));

const browser = await launch(wav);
try {
  const context = await browser.newContext({ viewport: DESKTOP });
  await context.grantPermissions(['microphone']);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await trackPeers(page);
  await signUp(page, base, 'drain_host', 'Drain host', 'password-e2e'); // e2e.harness.PASSWORD
  const created = await apiCall(page, 'POST', '/spaces', { title: 'Drain' });
  const spaceId = created.data.id;
  await page.goto(`${base}/spaces/${spaceId}/studio?raw=1`);
  await page.waitForSelector('#mic[data-state="connected"]', { timeout: 30000 });
  await page.evaluate(() => {
    const mic = document.querySelector('#mic');
    window.__micStates = [];
    new MutationObserver(() => window.__micStates.push(mic.dataset.state)).observe(mic, {
      attributes: true,
      attributeFilter: ['data-state'],
    });
  });
  say({ ready: spaceId });
  await input.next();
  const after = await page.evaluate(async () => {
    const deadline = performance.now() + 15000;
    const moved = () => window.__peers.length >= 2 && window.__peers.at(-1).connectionState === 'connected';
    while (!moved() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 3000));
    return {
      peers: window.__peers.map((pc) => pc.connectionState),
      micStates: window.__micStates,
      micNow: document.querySelector('#mic').dataset.state,
    };
  });
  say({ done: true, errors, ...after });
} catch (error) {
  say({ done: false, error: String(error?.stack || error) });
} finally {
  await browser.close();
}
