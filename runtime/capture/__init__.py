"""Live capture sources: camera, microphone, media files, RTSP."""
