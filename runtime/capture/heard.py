"""What a stream's recognizer heard: utterances with times, for ``--words`` and ``-v``.

Call recordings are private, so the words are kept only when asked for (``keep_text``,
``hrlf-run --words``); otherwise only counts are. With ``keep_text``:

* :meth:`Heard.words` gives the words that started in a window (result lines' ``"words"``);
* :meth:`Heard.transcript` gives the utterances in order, each ``{"t0", "t1", "text"}``,
  capped at ``max_utterances`` (the most recent are kept; ``left_out`` counts the rest);
* each utterance is logged at INFO (``-v``) as ``heard 3.20-4.85: text``; without
  ``keep_text`` the log line has the word count only.
"""
from __future__ import annotations

import bisect
import collections
import logging
import threading

log = logging.getLogger("hrlf.runtime.capture.asr")
#: words kept for result lines (a window only asks for recent ones)
KEEP_WORDS = 5000
MAX_UTTERANCES = 200


class Heard:
    """Utterances of one stream (thread-safe: a live source's tracks add, the runtime reads)."""

    def __init__(self, keep_text: bool = False, max_utterances: int = MAX_UTTERANCES,
                 name: str = ""):
        self.keep_text, self.name = bool(keep_text), name
        self._utts: collections.deque = collections.deque(maxlen=max(1, int(max_utterances)))
        self._words: collections.deque = collections.deque(maxlen=KEEP_WORDS)
        self.count = 0
        self._lock = threading.Lock()

    def add(self, words) -> None:
        """An utterance's final words (:class:`~hrlf.runtime.featurizers.text.Word`, stream
        time); an utterance without words is not one."""
        if not words:
            return
        t0, t1 = words[0].start_s, max(w.end_s for w in words)
        with self._lock:
            self.count += 1
            if self.keep_text:
                text = " ".join(w.word for w in words)
                self._utts.append({"t0": round(t0, 3), "t1": round(t1, 3), "text": text})
                self._words.extend(words)
        who = f"{self.name}: " if self.name else ""
        if self.keep_text:
            log.info("%sheard %.2f-%.2f: %s", who, t0, t1, text)
        else:
            log.info("%sheard %.2f-%.2f: %d words (--words shows them)", who, t0, t1, len(words))

    def words(self, t_from: float, t_to: float) -> str:
        """The words that started in ``[t_from, t_to)``, in order ("" without keep_text)."""
        with self._lock:
            ws = list(self._words)
        starts = [w.start_s for w in ws]
        i, j = bisect.bisect_left(starts, t_from), bisect.bisect_left(starts, t_to)
        return " ".join(w.word for w in ws[i:j])

    def transcript(self) -> dict:
        """``{"utterances": [...], "left_out": n}`` (``left_out``: older ones not kept)."""
        with self._lock:
            utts = list(self._utts)
            return {"utterances": utts, "left_out": self.count - len(utts)}
