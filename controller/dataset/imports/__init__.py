"""What comes from other tools and rigs: calibrations (calibration.py), footage as a new session
(footage.py), 2D keypoints (keypoints.py). Each reads the other tool's files with that tool's
conventions, states the units it assumed, and refuses with the file, field and expected value."""
