"""``load_clips``: CSV checks, features, windows, grouped deterministic splits, cache."""
from __future__ import annotations

import numpy as np
import pytest

from hrlf.runtime.capture import testmedia
from hrlf.errors import DataError
from hrlf.train import clip_extract, clips

pytest.importorskip("cv2")
pytest.importorskip("soundfile")

LABELS = (-2.0, -0.5, 1.0, 2.5)


def _write(tmp_path, rows, header="media,transcript,label"):
    p = tmp_path / "clips.csv"
    p.write_text(header + "\n" + "\n".join(rows) + "\n")
    return str(p)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    for i, lab in enumerate(LABELS):
        testmedia.write_clip(str(d), f"c{i}", lab, seconds=2.5, fps=10, transcript=(i != 1))
    testmedia.write_clip(str(d), "short", 0.0, seconds=1.0, fps=10)
    return d


def _csv(tmp_path, media_dir, extra=()):
    rows = [f"{media_dir}/c{i}.avi,,{lab}" for i, lab in enumerate(LABELS)]
    return _write(tmp_path, rows + list(extra))


def test_load_clips_windows_splits_and_fingerprint(tmp_path, media_dir, face_featurizer):
    path = _csv(tmp_path, media_dir, [f"{media_dir}/short.avi,so so,0"])
    ds = clips.load_clips(path, cache_dir=str(media_dir / "cache"))
    assert {m: (f.dim, f.frame_rate_hz, f.frames) for m, f in ds.features.items()} == {
        "text": (64, 2.0, 4), "audio": (ds.features["audio"].dim, 20.0, 40),  # 50 ms slots
        "vision": (198, 10.0, 20)}
    assert (ds.window_s, ds.hop_s) == (2.0, 1.0)
    groups = {s: set(sp.group) for s, sp in ds.splits.items()}
    assert all(groups[s] for s in clips.SPLITS)
    assert not (groups["train"] & groups["valid"] or groups["train"] & groups["test"]
                or groups["valid"] & groups["test"])
    n_windows = sum(len(sp) for sp in ds.splits.values())
    assert n_windows == 4 * 1 + 1                      # 2.5 s clips: 1 window; short: 1 window
    fp = ds.fingerprint
    assert fp["source"] == "clips-csv" and len(fp["sha256"]) == 64 and fp["clips"] == 5
    for sp in ds.splits.values():
        for g, y in zip(sp.group, sp.label):
            want = 0.0 if g.endswith("short.avi") else LABELS[int(g.split("/c")[-1][0])]
            assert y == pytest.approx(want)
        assert sp.masks["audio"].sum() > 0 and np.isfinite(sp.feats["audio"]).all()


def test_short_clip_gives_one_padded_window(tmp_path, media_dir, face_featurizer):
    rows = [f"{media_dir}/short.avi,,1.5", f"{media_dir}/c0.avi,,-2", f"{media_dir}/c2.avi,,1"]
    ds = clips.load_clips(_write(tmp_path, rows), cache_dir=str(media_dir / "cache"))
    sp = [s for s in ds.splits.values() if any(g.endswith("short.avi") for g in s.group)][0]
    i = [k for k, g in enumerate(sp.group) if g.endswith("short.avi")]
    assert len(i) == 1
    audio_mask = sp.masks["audio"][i[0]]
    assert 16 < audio_mask.sum() < 22            # ~1 s of 2 s (50 ms slots) is real, the rest masked
    assert sp.masks["vision"][i[0]].sum() <= 10


def test_deterministic_and_cached(tmp_path, media_dir, face_featurizer, monkeypatch):
    path = _csv(tmp_path, media_dir)
    a = clips.load_clips(path)
    monkeypatch.setattr(clip_extract, "extract_clip", lambda *a, **k: pytest.fail("cache not used"))
    b = clips.load_clips(path)
    assert a.fingerprint == b.fingerprint
    for s in clips.SPLITS:
        np.testing.assert_array_equal(a.splits[s].ids, b.splits[s].ids)
        np.testing.assert_array_equal(a.splits[s].feats["audio"], b.splits[s].feats["audio"])


def test_transcript_column_text_and_split_column(tmp_path, media_dir, face_featurizer):
    rows = [f"{media_dir}/c0.avi,I hate this,-2,test", f"{media_dir}/c1.avi,lovely,-0.5,valid",
            f"{media_dir}/c2.avi,,1,train", f"{media_dir}/c3.avi,,2.5,train"]
    ds = clips.load_clips(_write(tmp_path, rows, "media,transcript,label,split"),
                         cache_dir=str(media_dir / "cache"))
    assert [set(ds.splits[s].group) for s in ("test", "valid")] == [
        {f"0001:{media_dir}/c0.avi"}, {f"0002:{media_dir}/c1.avi"}]
    te = ds.splits["test"]
    assert te.masks["text"].sum() == 4 and (te.feats["text"][0, :, 3] < 0).all()


@pytest.mark.parametrize("rows,header,match", [
    (["x.avi,,1"], "file,transcript,label", r"missing column 'media'"),
    (["{d}/c0.avi,,1", "{d}/gone.avi,,1"], None, r"clips.csv:3: media file '.*gone.avi' not found"),
    (["{d}/c0.avi,,4"], None, r"clips.csv:2: label 4 is outside \[-3, 3\]"),
    (["{d}/c0.avi,,happy"], None, r"clips.csv:2: label 'happy' is not a number"),
    (["{d}/c0.avi,nope.srt,1"], None, r"clips.csv:2: transcript file 'nope.srt' not found"),
    ([], None, r"no clips listed"),
])
def test_bad_csv_is_one_line(tmp_path, media_dir, rows, header, match):
    path = _write(tmp_path, [r.format(d=media_dir) for r in rows],
                  header or "media,transcript,label")
    with pytest.raises(DataError, match=match) as e:
        clips.load_clips(path)
    assert "\n" not in str(e.value)


def test_no_transcripts_and_no_speech_says_so(tmp_path, face_featurizer):
    # no sidecar .srt and silent audio: speech recognition has nothing to transcribe
    rows = []
    for i, lab in enumerate((-1, 0, 1)):
        video = testmedia.write_clip(str(tmp_path), f"quiet{i}", label=lab, seconds=2.0,
                                     transcript=False)
        testmedia.write_wav(video[:-4] + ".wav", np.zeros(32000, np.float32))
        rows.append(f"{video},,{lab}")
    with pytest.raises(DataError, match="text modality has no frames in the train split"):
        clips.load_clips(_write(tmp_path, rows), cache_dir=str(tmp_path / "cache"))


def test_new_clips_for_evaluation_need_no_train_split(tmp_path, media_dir, face_featurizer,
                                                       monkeypatch):
    """A CSV of test rows only (or of unsplit new clips) loads its test split alone, and a
    missing split is said before any clip is featurized."""
    rows = [f"{media_dir}/c0.avi,,-2,test", f"{media_dir}/c2.avi,,1,test"]
    path = _write(tmp_path, rows, "media,transcript,label,split")
    ds = clips.load_clips(path, cache_dir=str(media_dir / "cache"), splits=("test",))
    assert set(ds.splits) == {"test"} and len(set(ds.splits["test"].group)) == 2
    from hrlf.train import featurize

    monkeypatch.setattr(featurize, "featurize_rows",
                        lambda *a, **k: pytest.fail("featurized before checking the splits"))
    with pytest.raises(DataError, match=r"split 'train' has no clip \(2 clips: 0 train, 0 "
                                        r"valid, 2 test\)"):
        clips.load_clips(path, cache_dir=str(media_dir / "cache"))
    monkeypatch.undo()
    unsplit = _csv(tmp_path, media_dir)  # no split column: new clips
    ds = clips.load_clips(unsplit, cache_dir=str(media_dir / "cache"), splits=("test",),
                          new_clips_split="test", trained_on="0" * 64)
    assert len(set(ds.splits["test"].group)) == 4  # every clip evaluated
    same = clips.load_clips(unsplit, cache_dir=str(media_dir / "cache"))
    ds = clips.load_clips(unsplit, cache_dir=str(media_dir / "cache"), splits=("test",),
                          new_clips_split="test", trained_on=same.fingerprint["sha256"])
    assert set(ds.splits["test"].group) == set(same.splits["test"].group)  # the training list
