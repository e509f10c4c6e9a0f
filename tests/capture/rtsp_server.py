"""A loopback RTSP camera with an audio track, for tests (GStreamer's RTSP server).

Runs under Debian's python3 (it needs ``gi`` with GstRtspServer, which is not on PyPI):

    /usr/bin/python3 tests/capture/rtsp_server.py PORT IMAGE.jpg SPEECH.wav

serves ``rtsp://127.0.0.1:PORT/cam``: the still photograph as 15 fps H.264 video and the
speech as AAC audio, both live (paced by the clock). Prints ``ready`` once listening.
Debian packages: gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi python3-gst-1.0
gstreamer1.0-plugins-{base,good,bad,ugly} (see .ci/apt-packages).
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port, image, speech = sys.argv[1], sys.argv[2], sys.argv[3]
    Gst.init(None)
    launch = (
        f"( filesrc location={image} ! jpegdec ! videoconvert ! videoscale ! "
        "video/x-raw,width=640,height=480 ! imagefreeze is-live=true ! "
        "video/x-raw,framerate=15/1 ! x264enc tune=zerolatency speed-preset=ultrafast "
        "key-int-max=15 ! rtph264pay name=pay0 pt=96 "
        f"filesrc location={speech} ! wavparse ! audioconvert ! audioresample ! "
        "audio/x-raw,rate=16000,channels=1 ! voaacenc bitrate=32000 ! "
        "rtpmp4apay name=pay1 pt=97 )")
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print("cannot listen", flush=True)
        sys.exit(1)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
