"""The pinned real footage unpacks into the trials the dataset tests use."""

from __future__ import annotations

import av


def test_the_single_person_demo_has_four_synchronized_real_videos(pose2sim_demo_dir) -> None:
    demo = pose2sim_demo_dir("Demo_SinglePerson")
    videos = sorted((demo / "videos").glob("*.mp4"))
    assert [v.stem for v in videos] == ["cam01", "cam02", "cam03", "cam04"]
    assert (demo / "calibration" / "Calib.qca.txt").is_file()
    with av.open(str(videos[1])) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("vp9", 1080, 1920)
