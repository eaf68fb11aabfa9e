"""The bar for tracking speed: a bare OpenCV ``grab()`` loop over a video.

``grab()`` decodes every frame (H.264 cannot skip) and converts nothing; no tool that looks
at every frame through OpenCV can be faster. Default OpenCV settings, as a user gets them
(FFmpeg's own threads, one per core). ``--threads 1`` decodes with one thread: what the
decoder of one tracking process costs (``track`` gives each process one decoding thread).

    python benchmarks/grab_loop.py VIDEO               # prints the number of frames
    python benchmarks/grab_loop.py VIDEO --threads 1
"""

import sys

import cv2


def main() -> None:
    params = []
    if len(sys.argv) > 3 and sys.argv[2] == "--threads":
        params = [cv2.CAP_PROP_N_THREADS, int(sys.argv[3])]
    cap = cv2.VideoCapture(sys.argv[1], cv2.CAP_FFMPEG, params)
    n = 0
    while cap.grab():
        n += 1
    print(n)


if __name__ == "__main__":
    main()
