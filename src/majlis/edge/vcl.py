"""The edge's configuration: Varnish VCL generated from a few settings.

Why Varnish (docs/architecture.md, "The edge"): it keeps concurrent misses for one object on
a waiting list and streams the one origin fetch to every waiter as the bytes arrive, so a
blocking playlist reload or a preload-hinted part held by the origin reaches a whole
audience at once. nginx's cache lock makes waiters poll every 500 ms instead.

What the generated VCL does, per request:

- `/hls/{space}/{token}/{file}`: checks the playback token with HMAC-SHA256 in C compiled
  into the VCL (`verify.c`), without asking anyone; a forged, expired or other-space token
  is refused here and never reaches the origin. The cache key is the URL *without* the
  token, so every listener's request for a part or a blocking reload is one object and one
  origin fetch. The origin gets the URL with the token of whoever asked first.
- The files are the audio's (`index.m3u8`, `init.mp4`, segments, parts) and the live
  captions' (`main.m3u8`, `captions.m3u8`, `c{k}.vtt`), each cached as the origin says.
- `/hls/{space}/{file}` without a token: replays of ended spaces; the origin refuses the
  live ones. A part (`p…`) without a token is refused here.
- Playlist queries are reduced to `_HLS_msn`, `_HLS_part` and `_HLS_skip` in a fixed order,
  each checked; anything else in a query is dropped, so no one can split the cache.
- `/api/v1/spaces/{id}/state`: the state document listeners poll, cached as long as the
  control plane says (a second).
- Anything else: 404 from the edge. Errors are JSON `{"error", "reason"}` like the origin's.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from urllib.parse import urlsplit

__all__ = ["SPACE_PATTERN", "EdgeSettings", "Origin", "parse_origin", "render_vcl"]

# How long a backend may take to answer: the origin holds blocking reloads and hinted parts
# for up to three target durations (6 s at the default 2 s segments).
FIRST_BYTE_TIMEOUT_S = 15
SPACE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_TOKEN = r"play\.[A-Za-z0-9_:.-]{1,250}"
# Live captions (media/hls/subtitles.py): the multivariant playlist, the subtitles
# playlist and its WebVTT segments, as the audio's files are.
_CAPTION_FILES = r"main\.m3u8|captions\.m3u8|c[0-9]{1,12}\.vtt"
_LIVE_FILE = (
    r"(index\.m3u8|init\.mp4|s[0-9]{1,10}\.m4s|p[0-9]{1,10}-[0-9]{1,10}-[0-9]{1,10}\.m4s|"
    + _CAPTION_FILES
    + ")"
)
_OPEN_FILE = r"(index\.m3u8|init\.mp4|s[0-9]{1,10}\.m4s|replay\.m4a|" + _CAPTION_FILES + ")"


@dataclass(frozen=True, slots=True)
class Origin:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    origins: tuple[Origin, ...]
    playback_key: bytes  # signing.compact_key(secret, PLAYBACK)
    probe: bool = True  # health-check origins; off only when there is one to fall back on


def parse_origin(url: str) -> Origin:
    """`http://host:port` → Origin; anything else is refused with a reason."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(
            f"origin {url!r}: the edge reaches origins over plain http:// "
            "(terminate TLS in front of the edge, not behind it)"
        )
    if not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"origin {url!r} must be http://host[:port] and nothing more")
    try:
        port = parts.port or 80
    except ValueError:
        raise ValueError(f"origin {url!r} has a bad port") from None
    return Origin(parts.hostname, port)


def render_vcl(settings: EdgeSettings) -> str:
    if not settings.origins:
        raise ValueError("the edge needs at least one origin")
    if len(settings.playback_key) != 32:
        raise ValueError("the playback key must be 32 bytes")
    key = ", ".join(f"0x{byte:02x}" for byte in settings.playback_key)
    verify = resources.files(__package__).joinpath("verify.c").read_text()
    probe = settings.probe and len(settings.origins) > 1
    return "\n".join(
        [
            _HEADER,
            *(_backend(index, origin, probe) for index, origin in enumerate(settings.origins)),
            "C{",
            f"static const unsigned char majlis_key[32] = {{ {key} }};",
            verify,
            "}C",
            _init(len(settings.origins)),
            _BODY.replace("@SPACE@", SPACE_PATTERN)
            .replace("@TOKEN@", _TOKEN)
            .replace("@LIVE_FILE@", _LIVE_FILE)
            .replace("@OPEN_FILE@", _OPEN_FILE),
        ]
    )


def _backend(index: int, origin: Origin, probe: bool) -> str:
    health = (
        """
    .probe = { .url = "/healthz"; .interval = 1s; .timeout = 1s; .window = 3; .threshold = 2; }"""
        if probe
        else ""
    )
    return f"""backend origin_{index} {{
    .host = "{origin.host}";
    .port = "{origin.port}";
    .connect_timeout = 1s;
    .first_byte_timeout = {FIRST_BYTE_TIMEOUT_S}s;
    .between_bytes_timeout = {FIRST_BYTE_TIMEOUT_S}s;{health}
}}
"""


def _init(count: int) -> str:
    adds = "\n".join(f"    origins.add_backend(origin_{index});" for index in range(count))
    return f"""sub vcl_init {{
    # The first healthy origin answers; the others stand by (a shield pair, a standby).
    new origins = directors.fallback();
{adds}
}}
"""


_HEADER = """\
# Majlis edge: generated by `majlis edge`; regenerate rather than edit.
# It embeds the key that checks playback tokens: keep this file private.
vcl 4.1;

import directors;
import std;
"""

_BODY = r'''
sub vcl_recv {
    # Only this VCL sets these; a client sending them is ignored.
    unset req.http.X-Majlis-Token;
    unset req.http.X-Majlis-Space;
    unset req.http.X-Majlis-Verdict;
    unset req.http.X-Majlis-Key;
    unset req.http.Cookie;
    unset req.http.Authorization;
    # Before any regsub copies it: a URL this long names nothing we serve.
    if (req.url ~ "^.{1025}") {
        return (synth(414, "uri_too_long:a URL of the edge is at most 1024 characters"));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (synth(405, "method_not_allowed:the edge serves GET and HEAD only"));
    }
    if (req.url == "/healthz") {
        return (synth(200, "OK"));
    }
    set req.backend_hint = origins.backend();
    if (req.url ~ "^/api/v1/spaces/@SPACE@/state$") {
        return (hash);
    }
    if (req.url ~ "^/hls/@SPACE@/@TOKEN@/@LIVE_FILE@(\?|$)") {
        set req.http.X-Majlis-Space = regsub(req.url, "^/hls/([^/]+)/.*$", "\1");
        set req.http.X-Majlis-Token = regsub(req.url, "^/hls/[^/]+/([^/]+)/.*$", "\1");
        C{ majlis_check(ctx); }C
        if (req.http.X-Majlis-Verdict == "expired") {
            return (synth(401, "token_expired:the playback token has expired; join again"));
        }
        if (req.http.X-Majlis-Verdict == "mismatch") {
            return (synth(403, "token_mismatch:that playback token is for another space"));
        }
        if (req.http.X-Majlis-Verdict != "ok") {
            return (synth(401, "invalid_token:the playback token is not valid"));
        }
        # The key drops the token: one object per URL for the whole audience.
        set req.http.X-Majlis-Key = "live:" + regsub(req.url, "^(/hls/[^/]+)/[^/]+/", "\1/");
    } elsif (req.url ~ "^/hls/@SPACE@/@OPEN_FILE@(\?|$)") {
        set req.http.X-Majlis-Key = "open:" + req.url;
    } elsif (req.url ~ "^/hls/@SPACE@/p[0-9]{1,10}-[0-9]{1,10}-[0-9]{1,10}\.m4s(\?|$)") {
        return (synth(401, "token_required:live parts need a playback token in the path"));
    } else {
        return (synth(404, "not_found:no such resource on this edge"));
    }
    call majlis_query;
    return (hash);
}

# Playlists keep exactly the blocking-reload and delta directives, checked and in a fixed
# order; media files keep no query at all.
sub majlis_query {
    if (req.url !~ "/index\.m3u8") {
        set req.url = regsub(req.url, "\?.*$", "");
        return;
    }
    if (req.url ~ "[?&]_HLS_msn=.*[?&]_HLS_msn=" || req.url ~ "[?&]_HLS_part=.*[?&]_HLS_part="
            || req.url ~ "[?&]_HLS_skip=.*[?&]_HLS_skip=") {
        return (synth(400, "bad_request:a blocking-reload directive is given more than once"));
    }
    if (req.url ~ "[?&]_HLS_msn=" && req.url !~ "[?&]_HLS_msn=[0-9]{1,10}(&|$)") {
        return (synth(400, "bad_request:_HLS_msn must be a decimal integer"));
    }
    if (req.url ~ "[?&]_HLS_part=" && req.url !~ "[?&]_HLS_part=[0-9]{1,10}(&|$)") {
        return (synth(400, "bad_request:_HLS_part must be a decimal integer"));
    }
    if (req.url ~ "[?&]_HLS_part=" && req.url !~ "[?&]_HLS_msn=") {
        return (synth(400, "bad_request:_HLS_part needs _HLS_msn (RFC 8216bis 6.2.5.2)"));
    }
    if (req.url ~ "[?&]_HLS_skip=" && req.url !~ "[?&]_HLS_skip=(YES|v2)(&|$)") {
        return (synth(400, "bad_request:_HLS_skip must be YES or v2 (RFC 8216bis 6.2.5.1)"));
    }
    set req.http.X-Majlis-Query = "";
    if (req.url ~ "[?&]_HLS_msn=") {
        set req.http.X-Majlis-Query = "&_HLS_msn="
            + regsub(req.url, "^.*[?&]_HLS_msn=([0-9]+).*$", "\1");
    }
    if (req.url ~ "[?&]_HLS_part=") {
        set req.http.X-Majlis-Query = req.http.X-Majlis-Query + "&_HLS_part="
            + regsub(req.url, "^.*[?&]_HLS_part=([0-9]+).*$", "\1");
    }
    if (req.url ~ "[?&]_HLS_skip=") {
        set req.http.X-Majlis-Query = req.http.X-Majlis-Query + "&_HLS_skip="
            + regsub(req.url, "^.*[?&]_HLS_skip=(YES|v2).*$", "\1");
    }
    set req.url = regsub(req.url, "\?.*$", "");
    set req.http.X-Majlis-Key = regsub(req.http.X-Majlis-Key, "\?.*$", "");
    if (req.http.X-Majlis-Query != "") {
        set req.url = req.url + regsub(req.http.X-Majlis-Query, "^&", "?");
        set req.http.X-Majlis-Key = req.http.X-Majlis-Key
            + regsub(req.http.X-Majlis-Query, "^&", "?");
    }
    unset req.http.X-Majlis-Query;
}

sub vcl_hash {
    if (req.http.X-Majlis-Key) {
        hash_data(req.http.X-Majlis-Key);
    } else {
        hash_data(req.url);
    }
    return (lookup);
}

sub vcl_backend_fetch {
    unset bereq.http.X-Majlis-Token;
    unset bereq.http.X-Majlis-Space;
    unset bereq.http.X-Majlis-Verdict;
    unset bereq.http.X-Majlis-Key;
    return (fetch);
}

sub vcl_backend_response {
    # Every waiter gets the bytes as the origin sends them.
    set beresp.do_stream = true;
    # A live playlist is never served stale.
    set beresp.grace = 0s;
    set beresp.keep = 0s;
    if (beresp.status >= 400) {
        # Not cached, and no hit-for-miss object either: the next request collapses again.
        set beresp.ttl = 0s;
        set beresp.uncacheable = true;
    }
    return (deliver);
}

sub vcl_backend_error {
    set beresp.http.Content-Type = "application/json";
    set beresp.http.Cache-Control = "no-store";
    set beresp.http.Retry-After = "1";
    set beresp.body = {"{"error": "unavailable", "reason": "the edge cannot reach its "}
        + {"origin""} + "}";
    set beresp.ttl = 0s;
    set beresp.uncacheable = true;
    return (deliver);
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    set resp.http.Access-Control-Allow-Origin = "*";
    unset resp.http.Via;
    unset resp.http.X-Varnish;
    return (deliver);
}

sub vcl_synth {
    set resp.http.Content-Type = "application/json";
    set resp.http.Cache-Control = "no-store";
    set resp.http.Access-Control-Allow-Origin = "*";
    if (resp.status == 200) {
        set resp.body = {"{"ok": true, "edge": "varnish""} + "}";
        return (deliver);
    }
    set resp.body = {"{"error": ""} + regsub(resp.reason, ":.*$", "")
        + {"", "reason": ""} + regsub(resp.reason, "^[^:]*:", "") + {"""} + "}";
    set resp.reason = regsub(resp.reason, ":.*$", "");
    return (deliver);
}
'''
