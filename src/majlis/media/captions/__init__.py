"""Captions: speech to text for live captions and replay transcripts, all on this machine.

One concept a module: `model` finds the speech model an operator configured (a directory, or
an installed Python package that carries one) and says what to do when it is missing;
`resample` brings the media plane's 48 kHz down to the 16 kHz the models take; `vad` tells
speech from silence; `segmenter` cuts one speaker's frames into utterances on the capture
clock; `transcriber` turns an utterance into timed text; `wer` scores text against a reference.

Nothing here downloads anything: the model, the VAD weights and the code come from installed
packages, and a model that is not on disk is an error, never a fetch.
"""
