"""Frame by frame: push your own features into a ``Session`` and see why one is refused.

    python examples/push_frames.py

``push`` returns a ``Pushed``: true when the frame was taken, else false with a
``reason`` (the drop reason counted in ``stats()``) and a one-line ``message`` saying what
to fix. With ``SessionConfig(strict=True)`` the caller's mistakes (an unknown modality, a
wrong dimension, NaN, a bad timestamp) raise ``InputError`` instead, which is what you want
while wiring up a featurizer.
"""
from __future__ import annotations

import numpy as np

from hrlf.runtime import InputError, Session, SessionConfig


def main() -> None:
    session = Session.load("demo", config=SessionConfig())  # or a MODEL_DIR
    dims = {m: session.spec.dim(m) for m in session.spec.modalities}
    rng = np.random.default_rng(0)
    for k in range(40):  # 4 s of audio frames at 10 Hz, text every 0.5 s
        t = 0.05 + 0.1 * k
        session.push("audio", t, rng.normal(size=dims["audio"]).astype(np.float32))
        if k % 5 == 0:
            session.push("text", t, rng.normal(size=dims["text"]).astype(np.float32))
    for modality, x in (("Audio", np.zeros(dims["audio"], np.float32)),    # a typo
                        ("vision", np.zeros(dims["vision"] - 1, np.float32))):  # wrong size
        ok = session.push(modality, 4.2, x)
        print(f"refused: {ok.reason}: {ok.message}")
    for r in session.close():  # the windows still holding frames are scored now
        print(f"{r.t_start:4.1f}-{r.t_end:<4.1f} s {r.label:<8} {r.score:+.2f} "
              f"from {'+'.join(r.modalities)}, absent {r.absent}")
    print(f"dropped {session.stats()['dropped']}")

    strict = Session.load("demo", config=SessionConfig(strict=True))
    try:
        strict.push("audio", 0.5, [0.0] * 3)
    except InputError as e:
        print(f"strict: InputError: {e}")
    strict.close()


if __name__ == "__main__":
    main()
