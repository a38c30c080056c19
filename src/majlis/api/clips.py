"""HTTP for clips: make one, list a space's, get one, its audio, its page (with the lines of
the space's transcript that the clip's range overlaps); delete."""

from __future__ import annotations

import html
from string import Template

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from majlis.api.http import caller_of, json_response, parse_body
from majlis.api.models import ClipBody, ClipCreateBody, ClipListBody
from majlis.api.pages import WEB_DIR, page_headers
from majlis.api.routing import Endpoint, check_path_ids
from majlis.errors import MajlisError
from majlis.services.auth import Authenticator
from majlis.services.clips import Clips
from majlis.services.transcripts import Transcripts
from majlis.types import Clip, TranscriptLine

__all__ = ["ClipRoutes"]

SPACE_CLIPS = "/api/v1/spaces/{space_id}/clips"
ONE = "/api/v1/clips/{clip_id}"
# A clip's audio never changes under its id; it can only go away (deleted by the host).
AUDIO_CACHE = "public, max-age=3600"


class ClipRoutes:
    def __init__(
        self, clips: Clips, auth: Authenticator, public_url: str, transcripts: Transcripts
    ) -> None:
        self._clips = clips
        self._auth = auth
        self._transcripts = transcripts
        self._public_url = public_url.rstrip("/")
        self._page = Template((WEB_DIR / "clip.html").read_text())

    def endpoints(self) -> list[Endpoint]:
        tag = "clips"
        return [
            Endpoint(
                "POST",
                SPACE_CLIPS,
                self.create,
                "Clip up to 60 s of a live space (its last seconds) or of a replay",
                tag,
                ok=201,
                body=ClipCreateBody,
                answer=ClipBody,
                auth="member",
                errors=(400, 404, 409, 413, 429),
            ),
            Endpoint(
                "GET",
                SPACE_CLIPS,
                self.of_space,
                "A space's clips, newest first",
                tag,
                answer=ClipListBody,
                auth="none",
                errors=(400, 404, 429),
            ),
            Endpoint("GET", ONE, self.get, "One clip", tag, answer=ClipBody, auth="none"),
            Endpoint(
                "GET",
                f"{ONE}/audio.m4a",
                self.audio,
                "The clip's audio (AAC in .m4a, cut without re-encoding)",
                tag,
                content_type="audio/mp4",
                auth="none",
                errors=(400, 404, 429, 503),
            ),
            Endpoint(
                "DELETE",
                ONE,
                self.delete,
                "Delete a clip (the space's host, or whoever made it)",
                tag,
                ok=204,
                auth="member",
                errors=(400, 403, 404, 413, 429),
            ),
        ]

    def pages(self) -> list[BaseRoute]:
        return [Route("/clips/{clip_id}", self.page, methods=["GET", "HEAD"])]

    async def create(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        body = await parse_body(request, ClipCreateBody)
        clip = await self._clips.create(
            caller, request.path_params["space_id"], body.start, body.duration, body.title
        )
        return json_response(self._describe(clip), 201)

    async def of_space(self, request: Request) -> Response:
        clips = await self._clips.of_space(request.path_params["space_id"])
        return json_response({"clips": [self._describe(c) for c in clips]})

    async def get(self, request: Request) -> Response:
        return json_response(self._describe(await self._clips.get(request.path_params["clip_id"])))

    async def audio(self, request: Request) -> Response:
        clip, data = await self._clips.audio(request.path_params["clip_id"])
        return Response(
            data,
            media_type="audio/mp4",
            headers={
                "Cache-Control": AUDIO_CACHE,
                "Content-Disposition": f'inline; filename="majlis-clip-{clip.id}.m4a"',
            },
        )

    async def delete(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        await self._clips.delete(caller, request.path_params["clip_id"])
        return Response(status_code=204)

    async def page(self, request: Request) -> Response:
        """Rendered here, not by a script: link previews (Open Graph) read the HTML only."""
        headers = page_headers()
        try:
            check_path_ids(request.path_params)
            clip = await self._clips.get(request.path_params["clip_id"])
        except MajlisError:
            missing = (WEB_DIR / "notfound.html").read_text()
            return HTMLResponse(missing, status_code=404, headers=headers)
        values = {k: html.escape(v, quote=True) for k, v in self._page_values(clip).items()}
        values["transcript"] = render_lines(clip, await self._lines_of(clip))  # escaped there
        return HTMLResponse(self._page.substitute(values), headers=headers)

    async def _lines_of(self, clip: Clip) -> list[TranscriptLine]:
        """The finished transcript's lines that overlap the clip; none when there is no
        transcript, it is not done (or failed), or the server has captions off."""
        try:
            lines = await self._transcripts.lines(clip.space_id)
        except MajlisError:
            return []
        end = clip.start + clip.duration
        return [ln for ln in lines if ln.end > clip.start and ln.start < end]

    def _page_values(self, clip: Clip) -> dict[str, str]:
        audio_url, page_url = self._urls(clip)
        minutes, seconds = divmod(int(clip.start), 60)
        return {
            "title": clip.title,
            "description": f"{clip.duration:.0f} s from {minutes}:{seconds:02d} of a Majlis space",
            "page_url": page_url,
            "audio_url": audio_url,
            "space_url": f"{self._public_url}/spaces/{clip.space_id}",
            "clip_id": clip.id,
        }

    def _urls(self, clip: Clip) -> tuple[str, str]:
        """(audio, page)"""
        audio = f"{self._public_url}{ONE.format(clip_id=clip.id)}/audio.m4a"
        return audio, f"{self._public_url}/clips/{clip.id}"

    def _describe(self, clip: Clip) -> dict[str, object]:
        audio_url, page_url = self._urls(clip)
        return {
            "id": clip.id,
            "space_id": clip.space_id,
            "start": clip.start,
            "duration": clip.duration,
            "title": clip.title,
            "created_at": clip.created_at,
            "audio_url": audio_url,
            "page_url": page_url,
        }


def render_lines(clip: Clip, lines: list[TranscriptLine]) -> str:
    """The clip page's transcript: each line's text (escaped) at its time into the clip.
    A line's direction is its text's (dir="auto" skips the time stamp, which has its own)."""
    if not lines:
        return ""
    items = []
    for line in lines:
        minutes, seconds = divmod(int(max(0.0, line.start - clip.start)), 60)
        text = html.escape(line.text, quote=True)
        items.append(
            f'<li dir="auto"><span class="stamp" dir="ltr">{minutes}:{seconds:02d}</span> '
            f'<span class="said">{text}</span></li>'
        )
    return (
        '<section class="stack" id="clip-transcript" aria-labelledby="clip-transcript-heading">'
        '<h2 id="clip-transcript-heading">Transcript</h2>'
        f'<ol class="transcript clip-lines">{"".join(items)}</ol></section>'
    )
