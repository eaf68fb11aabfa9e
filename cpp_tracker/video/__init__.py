"""Open a video: frames in decode order, luma, timestamps; the PyAV keyframe script."""
