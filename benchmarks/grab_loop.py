"""The bar for tracking speed: a bare OpenCV ``grab()`` loop over a video.

``grab()`` decodes every frame (H.264 cannot skip) and converts nothing; no tool that looks
at every frame through OpenCV can be faster. Default OpenCV settings, as a user gets them.

    python benchmarks/grab_loop.py VIDEO   # prints the number of frames
"""

import sys

import cv2


def main() -> None:
    cap = cv2.VideoCapture(sys.argv[1], cv2.CAP_FFMPEG)
    n = 0
    while cap.grab():
        n += 1
    print(n)


if __name__ == "__main__":
    main()
