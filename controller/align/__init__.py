"""`syncrig align`: another instrument's recording (ephys, audio, event CSV) onto the session's
clock, from the TTL pulses SyncRig sent (ttl/<cam>.out.csv) and that instrument recorded.

readers (one function per format, through neo and soundfile) → edges (`ExternalEdges`) →
barcodes (decode) / match (pair with the session's edges, fit offset + rate robustly) → run
(`align_session`: sync/<stem>.json and sync/<stem>.frames.csv). `synthetic` writes test
recordings in every format from a session's out table."""
