// listen: English. Keys are '<area>.<name>'; ar/listen.js holds the same keys.
// The listener's page (listen.html, pages/listen.js) and the modules it shares with the
// studio, replay and clip pages: player, captions, stage, reactions, report, share, the
// space's title block, the audience chart.
export default {
  // listen.html
  'listen.page_title': 'Space — Majlis',
  'listen.document_title': '{title} — Majlis',
  'listen.loading': 'Loading…',
  'listen.hosted_by': 'Hosted by',
  'listen.share': 'Share',
  'listen.share_link': 'Link to this space',
  'listen.report': 'Report',
  'listen.stat.listening': 'Listening',
  'listen.stat.peak': 'Peak',
  'listen.on_stage': 'On stage',
  'listen.heading': 'Listen',
  'listen.button': '▶ Listen',
  'listen.note.open': 'No account needed to listen.',
  'listen.note.private': 'A private space: only the host’s guests can listen.',
  'listen.note.not_recorded': 'Not recorded: there will be no replay.',
  'listen.waiting.heading': 'You are in the waiting room',
  'listen.waiting.busy': 'A lot of people are joining right now. You will be let in automatically.',
  'listen.waiting.position': 'Your place in line',
  'listen.waiting.eta': 'Estimated wait:',
  'listen.captions.label': 'Live captions',
  'listen.captions.on': 'Captions: on',
  'listen.captions.off': 'Captions: off',
  'listen.pause': 'Pause',
  'listen.resume': 'Resume',
  'listen.stop': 'Stop listening',
  'listen.starts': 'Starts',
  'listen.scheduled.note': 'This page turns live by itself when the host starts.',
  'listen.remind': 'Remind me',
  'listen.reminder_set': 'Reminder set ✓',
  'listen.calendar': 'Add to calendar (.ics)',
  'listen.ended.heading': 'This space has ended',
  'listen.ended.replay': 'Listen to the replay',
  'listen.reactions': 'Reactions',
  'listen.speak': 'Speak',
  'listen.studio_link': 'Open the host studio',

  // The connection line beside the state badge
  'listen.conn.joining': 'Joining…',
  'listen.conn.not_listening': 'Not listening',
  'listen.conn.waiting': 'In the waiting room',
  'listen.conn.loading': 'Connecting to the audio…',
  'listen.conn.playing': 'Listening live',
  'listen.conn.buffering': 'Buffering…',
  'listen.conn.paused': 'Paused',
  'listen.conn.ended': 'The stream ended',
  'listen.conn.reconnecting': 'Reconnecting…',
  'listen.conn.failed': 'Cannot play',
  'listen.conn.lost': 'Connection lost — retrying in {seconds} s',
  'listen.conn.connected': 'Connected',
  'listen.conn.space_ended': 'The space has ended',

  // Asking to speak, being on stage
  'listen.speak.log_in': 'Want to speak? Log in, then ask the host.',
  'listen.speak.log_in_button': 'Log in to ask to speak',
  'listen.speak.host': 'You are the host.',
  'listen.speak.cohost': 'You are on stage as a co-host.',
  'listen.speak.speaker': 'You are on stage as a speaker.',
  'listen.speak.step_down': 'Step down',
  'listen.speak.invited': 'A host invited you to speak.',
  'listen.speak.accept': 'Join the stage',
  'listen.speak.decline': 'No thanks',
  'listen.speak.asked': 'You asked to speak. A host will answer soon.',
  'listen.speak.withdraw': 'Withdraw request',
  'listen.speak.prompt': 'Have something to say? Ask the host to bring you on stage.',
  'listen.speak.ask': '✋ Ask to speak',
  'listen.speak.stepped_down': 'You stepped down. You are listening again.',
  'listen.speak.demoted': 'A host moved you back to the audience.',
  'listen.speak.declined': 'A host declined your request to speak this time.',
  'listen.removed': 'A host removed you from this space.',
  'listen.host_changed.you': 'You are now the host.',
  'listen.host_changed.other': '@{username} is now the host.',
  'listen.no_such_space': 'No such space',
  'listen.cannot_load': 'Cannot load this space',

  // player.js: what the player says under it
  'listen.player.no_hls': 'This browser cannot play live audio (no HLS support).',
  'listen.player.refused': 'Not allowed to listen (the playback token was refused).',
  'listen.player.not_available': 'The audio is not available (yet).',
  'listen.player.lost': 'Lost the audio stream.',
  'listen.player.stopped': 'the audio stopped',
  'listen.player.retrying': '{reason} Retrying in {seconds} s…',
  'listen.player.press_play': 'Press play to listen.',

  // captions.js
  'listen.captions.host_off': 'The host has turned captions off.',
  'listen.captions.no_language': "No live captions: this server's speech model does not know the space's language.",
  'listen.captions.notice_on': 'Captions are on: what is said on stage is transcribed live for listeners.',
  'listen.captions.notice_off': 'Captions are off: the host has turned them off.',

  // stage.js
  'listen.role.host': 'Host',
  'listen.role.cohost': 'Co-host',
  'listen.role.speaker': 'Speaker',
  'listen.stage.empty': 'Nobody is on stage yet.',
  'listen.stage.you': ' (you)',
  'listen.stage.muted': 'Muted',
  'listen.stage.speaking': 'Speaking',

  // reactions.js
  'listen.reaction.label': '{name}: {count}',
  'listen.reaction.send': 'Send {name}: {count}',
  'listen.reaction.too_many': 'Too many reactions — wait a moment.',

  // report.js
  'listen.report.harassment': 'Harassment',
  'listen.report.hate': 'Hate',
  'listen.report.spam': 'Spam',
  'listen.report.off_topic': 'Off topic',
  'listen.report.other': 'Something else',
  'listen.report.intro': 'The site’s moderators read every report. You need not be logged in.',
  'listen.report.about': 'Who or what',
  'listen.report.category': 'What is wrong',
  'listen.report.text': 'What happened',
  'listen.report.optional': 'optional',
  'listen.report.cancel': 'Cancel',
  'listen.report.send': 'Send report',
  'listen.report.the_space': 'The space',
  'listen.report.on_stage': '{name} (on stage)',
  'listen.report.title_clip': 'Report this clip',
  'listen.report.title_space': 'Report this space',
  'listen.report.thanks': 'Thank you: the site’s moderators will look at it.',

  // share.js
  'listen.share.copied': 'Link copied.',
  'listen.share.copy': 'Copy this link:',

  // spacehead.js: the state badge
  'listen.state.live': 'Live',
  'listen.state.scheduled': 'Upcoming',
  'listen.state.ended': 'Ended',
  'listen.state.scheduled_for': 'Upcoming · {when}',

  // audience.js
  'listen.audience.title': 'Listeners over time: at most {top}',
  'listen.audience.arrivals_tick': 'in',
  'listen.audience.departures_tick': 'out',

  // events.js: why the events socket closed for good
  'listen.events.log_in': 'You need to log in again.',
  'listen.events.forbidden': 'Not allowed to follow this space’s events.',
  'listen.events.no_space': 'No such space.',
  'listen.events.ended': 'The space has ended.',
};
