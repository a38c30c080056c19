"""What a speaker's SDP offer must be: audio only, one Opus m-line that sends, DTLS-SRTP.

Part of the contract between the planes. The control plane checks an offer before it
forwards it, so a bad one is refused at once and costs the media node nothing (however busy
the node is); the node checks again, since a node is reachable by more than one control
plane and must never hand aiortc an offer it fails on with an assert.
"""

from __future__ import annotations

from aiortc.sdp import MediaDescription, SessionDescription

from majlis.errors import BadRequest

__all__ = ["MAX_OFFER_BYTES", "SECURE_PROFILE", "validate_offer"]

MAX_OFFER_BYTES = 64 * 1024
SECURE_PROFILE = "UDP/TLS/RTP/SAVPF"
_SENDING_DIRECTIONS = ("sendrecv", "sendonly")
_FINGERPRINT_HASHES = frozenset({"sha-1", "sha-224", "sha-256", "sha-384", "sha-512"})


def validate_offer(sdp: str) -> None:
    """Raise BadRequest unless `sdp` is an offer a speaker can send audio with."""
    if not isinstance(sdp, str) or not sdp.strip():
        raise BadRequest("the SDP offer is empty")
    if len(sdp.encode("utf-8", "replace")) > MAX_OFFER_BYTES:
        raise BadRequest(f"the SDP offer is larger than {MAX_OFFER_BYTES} bytes")
    if not sdp.lstrip().startswith("v=0"):
        raise BadRequest("the SDP offer is not parseable: it must start with v=0")
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser fails with asserts, ValueErrors, IndexErrors…
        raise BadRequest(f"the SDP offer is not parseable: {exc!r}") from exc
    media_kinds = [media.kind for media in description.media]
    if "video" in media_kinds:
        raise BadRequest("the SDP offer has video: spaces are audio only")
    audio = [media for media in description.media if media.kind == "audio"]
    if not audio:
        raise BadRequest("the SDP offer has no audio m-line")
    if len(audio) > 1:
        raise BadRequest(f"the SDP offer has {len(audio)} audio m-lines: a speaker sends one")
    _check_secure(audio[0])
    if not any(codec.name.lower() == "opus" for codec in audio[0].rtp.codecs):
        raise BadRequest("the SDP offer's audio does not offer the Opus codec")
    if (audio[0].direction or "sendrecv") not in _SENDING_DIRECTIONS:
        raise BadRequest(f"the SDP offer's audio is {audio[0].direction}: a speaker must send")


def _check_secure(media: MediaDescription) -> None:
    """DTLS-SRTP only: plain RTP would carry a speaker's voice readable by anyone on the
    path, and an offer without a fingerprint cannot be authenticated."""
    if media.profile.upper() != SECURE_PROFILE:
        raise BadRequest(
            f"the SDP offer's audio uses {media.profile[:40]!r}: only DTLS-SRTP "
            f"({SECURE_PROFILE}) is accepted"
        )
    fingerprints = media.dtls.fingerprints if media.dtls is not None else []
    if not any(f.algorithm.lower() in _FINGERPRINT_HASHES for f in fingerprints):
        raise BadRequest("the SDP offer has no DTLS fingerprint (a=fingerprint) with a known hash")
    ice = media.ice
    if ice is None or not ice.usernameFragment or not ice.password:
        raise BadRequest("the SDP offer has no ICE credentials (a=ice-ufrag and a=ice-pwd)")
