// Majlis edge: playback-token check for the listener stream, run by nginx's njs module.
//
// A token is `play.<space>.<member>.<expiry>.<mac>` (majlis/signing.py): mac is the first 20
// bytes of HMAC-SHA256 over everything before the last dot, base64url without padding. The
// generated nginx.conf sets MAJLIS_KEY_HEX, MAJLIS_WINDOW_S and MAJLIS_HORIZON_S with
// js_var before this runs. `channel` answers the nchan channel a valid token subscribes to,
// or `!<verdict>` (malformed, forged, expired, mismatch); it never touches the network.
//
// The channel is the space plus the token's expiry rounded up to a window: the feeder
// deletes a window's channel when the window ends, which closes every stream whose token
// has expired by then. A token valid beyond the horizon gets the horizon's window, so its
// holder reconnects within the horizon and is checked again.
import crypto from "crypto";

const MAC_CHARS = 27;

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

function channel(r) {
  const token = r.variables.majlis_token;
  const fields = token.split(".");
  if (fields.length !== 5 || fields[0] !== "play" || !/^[0-9]{1,12}$/.test(fields[3])) {
    return "!malformed";
  }
  const mac = fields[4];
  if (mac.length !== MAC_CHARS) return "!malformed";
  const body = token.slice(0, token.length - mac.length - 1);
  const key = Buffer.from(r.variables.majlis_key_hex, "hex");
  const expected = crypto.createHmac("sha256", key).update(body).digest().slice(0, 20);
  if (!equal(expected.toString("base64url"), mac)) return "!forged";
  const now = Date.now() / 1000;
  const expiry = Number(fields[3]);
  if (expiry <= now) return "!expired";
  if (fields[1] !== r.variables.majlis_space) return "!mismatch";
  const window = Number(r.variables.majlis_window_s);
  const last = Math.ceil((now + Number(r.variables.majlis_horizon_s)) / window);
  return `${fields[1]}~${Math.min(Math.ceil(expiry / window), last)}`;
}

// Seconds until the feeder deletes this token's channel (its window ends), for the player
// to open its next stream before that; "" for a refused token.
function left(r) {
  const channel = r.variables.majlis_channel;
  if (channel.startsWith("!")) return "";
  const window = Number(channel.slice(channel.lastIndexOf("~") + 1));
  return (window * Number(r.variables.majlis_window_s) - Date.now() / 1000).toFixed(1);
}

export default { channel, left };
