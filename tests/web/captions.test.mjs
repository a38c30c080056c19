// The listener page's live captions (src/majlis/web/js/captions.js) under `node --test`:
// WebVTT as the media node writes it, and the direction of each line.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { captionsNote, captionsNotice, direction, parseVtt } from '../../src/majlis/web/js/captions.js';

const SEGMENT = `WEBVTT
X-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:10.000

00:00:10.500 --> 00:00:12.500
<v u1>Good evening &amp; welcome &lt;all&gt;

01:00:00.000 --> 01:00:01.250
مساء الخير
`;

test('cues come with their times, speaker and unescaped text', () => {
  assert.deepEqual(parseVtt(SEGMENT), [
    { start: 10.5, end: 12.5, speaker: 'u1', text: 'Good evening & welcome <all>' },
    { start: 3600, end: 3601.25, speaker: '', text: 'مساء الخير' },
  ]);
});

test('a segment without cues has none', () => {
  assert.deepEqual(parseVtt('WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n'), []);
});

test('Arabic lines are right to left, English left to right', () => {
  assert.deepEqual(direction('مساء الخير'), { dir: 'rtl', lang: 'ar' });
  assert.deepEqual(direction('Good evening'), { dir: 'ltr', lang: '' });
  assert.deepEqual(direction('Welcome to مجلس tonight'), { dir: 'rtl', lang: 'ar' });
});

test('a space without captions for its language says so, to listeners and on stage', () => {
  const said = captionsNote('unavailable', 'language');
  assert.match(said, /language/);
  assert.equal(captionsNotice('unavailable', 'language'), said);
  // A server with no model shows nothing at all (no toggle, no note); on shows the lines.
  assert.equal(captionsNote('unavailable', 'no_model'), '');
  assert.equal(captionsNotice('unavailable', 'no_model'), '');
  assert.equal(captionsNote('on', null), '');
  assert.equal(captionsNote('off', null), 'The host has turned captions off.');
});
