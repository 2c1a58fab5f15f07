"""`syncrig process`: the dataset steps over many sessions on a Ray cluster (or serially), in
keyframe-aligned chunks, resumable. chunks → steps / session_steps → engine → process."""
