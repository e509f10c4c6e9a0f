"""A robot-style control loop: sensors push features, a callback updates the robot's mood.

The robot's perception threads push frames as they arrive (here: a synthetic recording
standing in for a camera featurizer, a microphone featurizer and a speech recognizer,
delivered in real time);
the session scores segments on its own worker thread and calls ``on_result``, which a
behaviour layer reads. The camera is covered from 6 s to 12 s: results keep coming.

    python examples/robot_callback.py [--model-dir DIR] [--seconds 20]
"""
from __future__ import annotations

import argparse
import threading
import time

from hrlf.runtime.session import Session, SessionConfig
from hrlf.runtime.sources import open_source


class Mood:
    """What the behaviour layer reads: the latest sentiment, updated from the callback."""

    def __init__(self):
        self.lock = threading.Lock()
        self.score, self.label, self.updates = 0.0, "neutral", 0

    def on_result(self, r) -> None:  # called on the session's worker thread
        with self.lock:
            self.score, self.label, self.updates = r.score, r.label, self.updates + 1
        print(f"[robot] {r.t_start:5.1f}-{r.t_end:5.1f}s mood {r.label:<8} {r.score:+.2f} "
              f"sees {','.join(r.modalities) or 'nothing'}", flush=True)


def sensor_thread(session: Session, events, t0: float) -> None:
    """Deliver frames when they happen, as a camera/microphone/ASR thread would."""
    for e in events:
        delay = t0 + e.t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        session.push(e.modality, session.clock(), e.x)  # stamp on arrival, like a driver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", default="demo", help="MODEL_DIR, or demo (the built-in model)")
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()

    mood = Mood()
    session = Session.load(args.model_dir, config=SessionConfig(live=True, grace_s=0.1),
                           on_result=mood.on_result)
    events, demo = [], open_source("demo", session.spec, duration_s=args.seconds)
    while (chunk := demo.read(0)).events:
        events += [e for e in chunk.events if not (e.modality == "vision" and 6 <= e.t < 12)]
    session.start()
    t0 = time.monotonic() - session.clock()
    threads = [threading.Thread(target=sensor_thread,
                                args=(session, [e for e in events if e.modality == m], t0))
               for m in ("text", "audio", "vision")]  # one thread per sensor, as on a robot
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    session.close()
    st = session.stats()
    print(f"[robot] {mood.updates} mood updates, frames used {st['used']}/{st['received']}, "
          f"dropped {st['dropped']}, accounting ok: {st['accounting_ok']}")


if __name__ == "__main__":
    main()
