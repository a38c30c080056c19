// errors: English. One entry per stable error code the server (or api.js) sends, as
// 'error.<code>'. i18n.js's errorText() shows these to readers of other languages; in
// English the server's own reason, which is more specific, is shown instead. A code may be
// raised in several places, so each message is true of all of them.
export default {
  // The classes' defaults (src/majlis/errors.py) and other generic answers
  'error.bad_request': 'The request is not valid; reload the page and try again.',
  'error.unauthorized': 'You are not logged in, or your session is no longer valid.',
  'error.forbidden': 'You are not allowed to do that.',
  'error.not_found': 'That is not here (or not yet).',
  'error.conflict': 'That cannot be done now; reload the page and try again.',
  'error.payload_too_large': 'What was sent is too large.',
  'error.unsupported_media_type': 'That type of file is not accepted.',
  'error.rate_limited': 'Too many requests; wait a moment and try again.',
  'error.overloaded': 'The server is busy; try again shortly.',
  'error.media_full': 'The server runs as many live spaces as it can; try again when one ends.',
  'error.unavailable': 'The server cannot be reached just now; try again shortly.',
  'error.internal': 'Something went wrong on the server; try again later.',
  'error.http_error': 'The server could not answer this request.',
  'error.network': 'Cannot reach the server. Check your connection.',
  'error.method_not_allowed': 'This address does not accept that kind of request.',
  'error.uri_too_long': 'The address is too long.',
  'error.too_many_sockets': 'Too many live connections are open; close other tabs of this site.',
  'error.node_key': 'Only the server’s own workers can do that.',
  'error.elsewhere': 'Another media node runs this space; try again.',

  // Requests
  'error.not_json': 'The request must be sent as JSON.',
  'error.malformed_json': 'The request is not valid JSON.',
  'error.invalid_body': 'Some of what was sent is missing or not valid.',
  'error.invalid_query': 'The address asks for something that is not valid.',
  'error.body_cut': 'The connection closed before the request was complete; try again.',
  'error.missing_field': 'Something the request needs is missing.',
  'error.invalid_text': 'A text is empty, too long, or has characters that are not allowed.',

  // Accounts, sessions and tokens
  'error.login_required': 'Log in first.',
  'error.bad_credentials': 'Wrong username or password.',
  'error.invalid_username': 'A username is 3 to 32 letters, digits or underscores.',
  'error.invalid_password': 'A password is 8 to 256 characters.',
  'error.invalid_email': 'Give one email address, like name@example.org.',
  'error.username_taken': 'That username is taken.',
  'error.user_not_found': 'No such user (or the account no longer exists).',
  'error.account_suspended': 'This account is suspended for now; Notices says why and how to appeal.',
  'error.token_required': 'This needs you to be logged in or to have joined the space; reload the page.',
  'error.invalid_token': 'Your session or playback token is not valid; reload the page or log in again.',
  'error.token_expired': 'Your session or playback token has expired; reload the page or log in again.',
  'error.token_mismatch': 'That playback token is for another space or person; join again.',
  'error.token_revoked': 'This session has been logged out; log in again.',
  'error.invalid_ticket': 'That waiting-room ticket is not valid here; join again.',

  // Pictures
  'error.avatar_not_found': 'There is no picture.',
  'error.bad_image': 'The file is not a picture that can be read.',
  'error.bad_image_size': 'A picture is 32 to 1024 pixels a side.',

  // Spaces
  'error.space_not_found': 'No such space.',
  'error.invalid_schedule': 'A space is scheduled for a time in the future, within a year.',
  'error.invalid_transition': 'The space cannot change that way now; reload the page.',
  'error.privacy_fixed': 'Whether a space is private is chosen when it is created.',
  'error.not_scheduled': 'That is only for spaces scheduled for later.',
  'error.not_started': 'The space has not started yet.',
  'error.not_live': 'The space is not live.',
  'error.space_not_live': 'The space is not live.',
  'error.ended': 'The space has ended; its replay, if any, is on its page.',
  'error.space_ended': 'The space has ended.',
  'error.banned': 'A ban from this space prevents that.',
  'error.not_invited': 'This space is private: only its host’s guests can listen.',
  'error.not_host': 'Only the host can do that.',
  'error.not_moderator': 'Only the people who moderate this space can do that.',

  // The stage
  'error.not_acting': 'Live events are for people on stage or asking to speak; the page updates by itself.',
  'error.already_requested': 'You have already asked to speak.',
  'error.no_request': 'There is no request to speak to act on.',
  'error.already_invited': 'That person is already invited to speak.',
  'error.no_invite': 'You have no invitation to speak here.',
  'error.already_on_stage': 'Already on stage.',
  'error.not_on_stage': 'That needs someone on stage, who is not (or no longer) on it.',
  'error.is_host': 'That does not apply to the host of the space.',
  'error.not_cohost': 'That person is not a co-host; hosting passes to a co-host only.',
  'error.outranked': 'Your role on stage cannot act on that person.',
  'error.self_unmute_only': 'Only speakers unmute themselves.',
  'error.stage_changed': 'The stage changed meanwhile; reload the page.',
  'error.too_many_cohosts': 'This space already has as many co-hosts as it can.',
  'error.too_many_speakers': 'This space already has as many speakers as it can.',

  // Guests of private spaces
  'error.not_private': 'Only a private space has a guest list.',
  'error.already_guest': 'That person is a guest already.',
  'error.not_guest': 'That person is not a guest of this space.',
  'error.too_many_guests': 'This space already has as many guests as it can.',

  // Listening, reactions
  'error.bad_reaction': 'That reaction is not one of those offered.',

  // Recordings, replays, clips, transcripts
  'error.not_recorded': 'This space is not recorded.',
  'error.no_recording': 'This space has no recording.',
  'error.nothing_recorded': 'Nothing has been recorded yet.',
  'error.recording_busy': 'The recording is still being finished; try again in a few seconds.',
  'error.not_ended': 'The space has not ended yet; its replay comes after the end.',
  'error.no_replay': 'There is no replay of this space (or not yet).',
  'error.clip_not_found': 'No such clip.',
  'error.bad_range': 'That part is not in the recording, or is too short or too long for a clip.',
  'error.private_space': 'A private space cannot be clipped.',
  'error.not_yours': 'Only the host or the clip’s maker can delete it.',
  'error.captions_off': 'This server makes no captions or transcripts.',
  'error.space_not_ended': 'The transcript is made from the replay, once the space has ended.',
  'error.no_transcript': 'This space has no transcript.',
  'error.transcript_not_ready': 'The transcript is not ready yet; try again shortly.',
  'error.transcript_failed': 'The transcript could not be made.',

  // Reports, decisions, statements and appeals
  'error.report_not_found': 'No such report.',
  'error.no_space': 'This report names no space.',
  'error.no_speaker': 'This report names no speaker to remove.',
  'error.no_target': 'This report names nobody.',
  'error.target_is_host': 'The host cannot be removed from their own space: end it, or suspend the account.',
  'error.bad_until': 'A suspension ends at a time in the future, within a year.',
  'error.already_decided': 'That was decided already; reload the page.',
  'error.not_site_moderator': 'Only site moderators can do that.',
  'error.not_suspended': 'That account is not suspended.',
  'error.notice_not_found': 'No such statement of reasons (or it is gone).',
  'error.not_appealable': 'A host’s decision under their space’s rules is contested with the host, not by appeal.',
  'error.already_appealed': 'This statement was appealed already.',
  'error.appeal_not_found': 'No such appeal.',
  'error.same_moderator':
    'An appeal is reviewed by a moderator other than the one who decided, and not by the person appealing.',
};
