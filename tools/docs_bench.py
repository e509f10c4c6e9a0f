"""Docs tables of benchmarks whose JSON is more than a list of rows: speech recognition
(``bench/asr.py``), the hub's faults and footprint (``bench/hub_faults.py``), cold start
(``bench/coldstart.py``), training on clips (``bench/train_clips.py``) and the GPU run
(``tools/gpucheck_offline.sh``). Registered in
``tools/docs_tables.py``'s ``TABLES``. Stdlib only."""
from __future__ import annotations

import json

from docs_common import _cell, _load, _num


def _load_avg(part: dict) -> str:
    a, b = part.get("load_avg_before"), part.get("load_avg_after")
    return f"{a[0]} → {b[0]}" if a and b else "?"


def _pair(d: dict, keys, fmt="{:.2f}", unit="") -> str:
    return " / ".join(fmt.format(d[k]) for k in keys) + unit


def _peak_rss(r: dict) -> float:
    return r.get("peak_rss_after_recognizing_mb", r.get("rss_after_recognizing_mb", 0.0))


def asr(name: str = "asr") -> str:
    """Whisper vs PocketSphinx through hrlf's own path (``bench/asr.py``): WER per set, cost,
    live latency, memory, the ``file:`` pipeline and the downstream sign test; each part
    with the 1-minute load average it ran at."""
    d = _load(f"bench/results/{name}.json")
    eng = ("whisper", "pocketsphinx")
    rows = ["| | Whisper (`[asr]`) | PocketSphinx | load avg |", "|---|---|---|---|"]

    def row(label, cells, part):
        rows.append(f"| {label} | " + " | ".join(cells) + f" | {_load_avg(part)} |")

    wer, live, res = d.get("wer"), d.get("live"), d.get("resources")
    if wer:
        w0 = wer["whisper"]["real_clean"]
        for key, label in (("real_clean", f"WER, real human speech ({w0['recordings']} "
                                          f"recordings, {w0['words']} words)"),
                           ("real_tel8k_ulaw", "same, 8 kHz μ-law telephone line"),
                           ("real_noise10", "same, 10 dB white noise")):
            row(label, [f"{wer[e][key]['wer']:.2f}" for e in eng], wer)
        row("WER, espeak-ng sentences: clean / telephone / noise",
            [" / ".join(f"{wer[e]['espeak_' + v]['wer']:.2f}" for v in
                        ("clean", "tel8k_ulaw", "noise10")) for e in eng], wer)
        row("CPU-s per audio second, real speech: clean / telephone",
            [" / ".join(f"{wer[e]['real_' + v]['cpu_per_audio_s']:.2f}" for v in
                        ("clean", "tel8k_ulaw")) for e in eng], wer)
    if live:
        m = {e: live[e]["median_of_runs"] for e in eng}
        row("live: text after each end of speech (played audio), p50 / p95",
            [_pair(m[e]["after_end_s"], ("p50", "p95"), unit=" s") for e in eng], live)
        own = {e: [r["runtime"]["after_end_s"] for r in live[e]["runs_raw"]] for e in eng}
        row("same, from the voice gate's end of speech (`text_latency`), p50 / p95",
            [" / ".join(f"{sorted(x[k] for x in own[e])[len(own[e]) // 2]:.2f}"
                        for k in ("p50", "p95")) + " s" for e in eng], live)
        row("live: speech between text updates (passages ≥ 3 s), p50 / p95 / max",
            [_pair(m[e]["update_gap_s"], ("p50", "p95", "max"), unit=" s") for e in eng], live)
        row("live: WER; CPU-s per audio second",
            [f"{m[e]['wer']:.2f}; {m[e]['cpu_per_audio_s']:.2f}" for e in eng], live)
    if res:
        row("model load, wall; peak process RSS after recognizing the real speech",
            [f"{res[e]['load_wall_s']:.2f} s; {_peak_rss(res[e]):.0f} MB" for e in eng], res)
    pipe = d.get("pipeline_file_whisper")
    if pipe:
        row(f"`file:` pipeline, 3 modalities, {pipe['media_s']:.0f} s .mp4: real-time factor "
            "(runs); CPU-s per media second",
            [f"{pipe['rtf']:.2f} ({', '.join(f'{x:.2f}' for x in pipe['rtf_runs'])}); "
             f"{pipe['cpu_per_media_s']:.2f}", "—"], pipe)
    down = d.get("downstream")
    if down:
        t = down["typed_transcripts"]
        row(f"sign right on {t['sentences']} unseen spoken sentences (true text: "
            f"{t['true_text']['sign_right']}), 16 kHz / 8 kHz μ-law",
            [f"{t[e]['sign_right']} / {t[e + '_8k_ulaw']['sign_right']}" for e in eng], down)
    return "\n".join(rows)


def coldstart(name: str = "coldstart") -> str:
    """``bench/coldstart.py``: first result of ``hrlf-run --pace fast`` against a bare
    ``import numpy, onnxruntime``, medians of interleaved rounds, per ORT-cache state."""
    d = _load(f"bench/results/{name}.json")
    rows = ["| ORT model cache | bare import | first result | ratio | CPU, one segment vs bare "
            "| peak RSS, hrlf-run vs bare |", "|---|---|---|---|---|---|"]
    for key, label in (("warm_cache", "warm (every start after the first)"),
                       ("cold_cache", "cold (the start that writes it)")):
        if key not in d:
            continue
        m = d[key]["median"]
        rows.append(f"| {label} | {m['bare_ms']:.0f} ms | {m['first_result_ms']:.0f} ms | "
                    f"**{d[key]['ratio_first_result_to_bare']:.2f}×** | "
                    f"{m['cpu_one_segment_ms']:.0f} vs {m['cpu_bare_ms']:.0f} ms "
                    f"({d[key]['ratio_cpu_one_segment_to_bare']:.2f}×) | "
                    f"{m['hrlf_run_rss_mib']:.1f} vs {m['bare_rss_mib']:.1f} MiB |")
    mach = d["machine"]
    stages = ", ".join(f"{k} {v}" for k, v in d["stages_ms_fastest"].items())
    runs = d["warm_cache"]["runs"]
    per_round = sorted(f / b for f, b in zip(runs["first_result_ms"], runs["bare_ms"]))
    return ("\n".join(rows) + f"\n\n`{d['command']}`, {d.get('install', 'editable')} install, "
            f"{len(per_round)} rounds (warm cache: the rounds' own ratios "
            f"{per_round[0]:.2f}–{per_round[-1]:.2f}), load average "
            f"{mach['loadavg_at_start'][0]} → {mach['loadavg_at_end'][0]}. Where an in-process "
            f"start spends its time (ms, fastest round): {stages}.")


def train_clips(name: str = "train_clips") -> str:
    """``bench/train_clips.py``: a fresh clip set trained cold and warm, then hrlf-run FP16 on
    its held-out clips."""
    d = _load(f"bench/results/{name}.json")
    rows = ["| feature cache | wall | CPU (user+sys) | featurize | teacher | student |",
            "|---|---|---|---|---|---|"]
    for key in ("cold", "warm"):
        r, t = d[key], d[key]["time"]
        rows.append(f"| {key} | {r['wall_s']:.1f} s | {r['cpu_s']:.1f} s | {t['data_s']:.1f} s | "
                    f"{t['teacher_s']:.1f} s ({r['steps']['teacher']} steps) | "
                    f"{t['student_s']:.1f} s ({r['steps']['student']} steps) |")
    c, run = d["cold"], d["hrlf_run_fp16_test_clips"]
    v, p = c["student_valid"], c["probe_floor"]
    off = ", ".join(c["regime"].get("modalities_off") or []) or "none"
    means = ", ".join(_num(x["clip_mean"], True).replace(".000", "") for x in run["clips"])
    return ("\n".join(rows) + f"\n\n`{d['command']}`: {d['clips']} clips, load average "
            f"{d['machine']['loadavg_before'][0]} at the start. Student valid MAE "
            f"{v['mae']:.2f} against {p['mae']:.2f} for the best probe ({p['probe']}); sign "
            f"accuracy {v['acc2']:.2f} and {p['acc2']:.2f}; warning: {c['warning'] or 'none'}; "
            f"modalities switched off: {off}. `hrlf-run --precision fp16 --stream file:CLIP` "
            f"on the {run['of']} held-out clips: right sign on **{run['sign_right']}** "
            f"(clip means {means}).")


def gpucheck(name: str = "gpucheck_h200", kernels: str = "kernels_h200") -> str:
    """The GPU run: every check of ``tests/gpu/gpucheck.py`` with its status, the packing
    benchmark (``bench/kernels.py``) and the MOSI training on CUDA vs the CPU."""
    d = _load(f"bench/results/{name}.json")
    rows = [f"{d['machine']}; `{d['command']}`, {d['date']}.", "",
            "| check | status | detail |", "|---|---|---|"]
    for it in d["gpucheck_items"]:
        rows.append(f"| {it['item']} | {it['status']} | {_cell(it.get('detail', ''))[:220]} |")
    k = _load(f"bench/results/{kernels}.json")["results"]
    rows += ["", "| packing (ms per call, p90) | batch 1 | batch 32 |", "|---|---|---|"]
    for impl in dict.fromkeys(r["impl"] for r in k):
        cells = [f"{r['ms_per_call']:.2f} ({r['ms_p90']:.2f})" for b in (1, 32)
                 for r in k if r["impl"] == impl and r["batch"] == b]
        rows.append(f"| {impl} | " + " | ".join(cells) + " |")
    train = {dev: json.loads(v[0]) for dev, v in d.get("train_mosi", {}).items()}
    if train:
        rows += ["", "| `hrlf-train` on MOSI | seconds | valid F1 l+a+v | valid F1 avg6 |",
                 "|---|---|---|---|"]
        rows += [f"| {dev.replace('_', ' ')} | {t['seconds']:.0f} | {t['valid_f1_lav']:.4f} | "
                 f"{t['valid_f1_avg6']:.4f} |" for dev, t in train.items()]
    return "\n".join(rows)



def capture(name: str = "capture", idle: str = "capture_idle") -> str:
    """``bench/capture.py``: featurizers, the ``file:`` pipeline and the live stand-ins; the
    real-media parts from the idle re-run where there is one (the loaded run beside it)."""
    d, i = _load(f"bench/results/{name}.json"), _load(f"bench/results/{idle}.json")
    rows = ["| what | idle | loaded run |", "|---|---|---|"]
    faces_i = i["faces_on_photographs_640x480_one_core"]
    faces_l = d["faces_on_photographs_640x480_one_core"]
    for f in ("haarface-v2", "haarface-v1"):
        a, b = faces_i[f], faces_l[f]
        rows.append(f"| `{f}` on {faces_i['frames']} 640×480 photographs, one thread: CPU ms a "
                    f"frame (faces found) | **{a['cpu_ms_per_frame']:.1f}** "
                    f"({a['faces_found']}/{faces_i['frames']}) | {b['cpu_ms_per_frame']:.1f} |")
    key = "pipeline_file_h264_aac_speech_no_transcript"
    a, b = i[key], d[key]
    rows.append(f"| `file:` {a['media_s']:.0f} s H.264 + AAC .mp4, 3 modalities, speech → text "
                f"(PocketSphinx): real-time factor; CPU-s per media second (audio thread / the "
                f"rest) | **{a['rtf']:.2f}**; {a['cpu_per_media_s']:.2f} "
                f"({a['audio_thread_cpu_per_media_s']:.2f} / {a['other_cpu_per_media_s']:.2f}), "
                f"load {a['load_avg_1m_before']} | {b['rtf']:.2f}; {b['cpu_per_media_s']:.2f}, "
                f"load {b['load_avg_1m_before']} |")
    m = d["pipeline_file_30fps_640x480_16khz"]
    rows.append(f"| `file:` {m['media_s']:.0f} s MJPG clip with a transcript and a tone: "
                f"real-time factor | — | {m['rtf']:.2f} |")
    live = d["live_30fps_640x480_16khz_paced"]
    lag = live["lag_ms_p50"]
    rows.append(f"| live camera + microphone stand-ins, paced: frames a second (vision / audio); "
                f"CPU-s a second; frame lag p50 (video / audio / text) | — | "
                f"{live['events_per_s']['vision']:.0f} / {live['events_per_s']['audio']:.0f}; "
                f"{live['cpu_s_per_s']:.2f}; {lag['vision']:.0f} ms / {lag['audio']:.0f} ms / "
                f"{lag['text'] / 1000:.1f} s |")
    au = d["audio_16khz"]
    rows.append(f"| eGeMAPS CPU-s per media second: offline / recomputed every 250 ms; log-mel "
                f"| — | {au['egemaps-lld-v02']['offline_cost_per_media_s']:.2f} / "
                f"{au['egemaps-lld-v02']['chunked_cpu_per_media_s']:.2f}; "
                f"{au['logmel40-v1']['offline_cost_per_media_s']:.4f} |")
    rows.append(f"| MJPG decode, 640×480 at 30 fps: CPU-s per media second | — | "
                f"{d['video_30fps_640x480']['decode_mjpg_cost_per_media_s']:.2f} |")
    return "\n".join(rows)


def hub_faults(name: str = "hub_faults") -> str:
    """``bench/hub_faults.py``: a hub's memory under churn, ``stats()`` and the collector's
    pass over many live streams, and ``close()`` against a stalled or dead backend."""
    d = _load(f"bench/results/{name}.json")
    ch, st = d["churn"], d["stats"]
    rss = ch["rss_mb"]
    rows = ["| what | measured |", "|---|---|",
            f"| {ch['streams']:,} streams added and removed ({ch['rounds']} rounds of "
            f"{ch['per_round']:,}) | RSS {rss[1]} → {rss[-1]} MB after the first round "
            f"({ch['rss_growth_mb']:+} MB) |",
            f"| `hub.stats()`, {st['live_streams']:,} live streams | {st['stats_ms_median']} ms "
            f"(median of {len(st['stats_ms_all'])}) |"]
    fp = d.get("footprint")
    if fp:
        rows.append(f"| a full pass of Python's collector, {fp['streams']:,} live streams | "
                    f"{fp['gc_full_pass_ms_median']} ms (median of "
                    f"{len(fp['gc_full_pass_ms_all'])}; {fp['gc_tracked_per_stream']} tracked "
                    f"objects per stream) |")
    dc = d["dead_server_close"]
    rows.append(f"| `Hub.close()`, {dc['streams']} streams, a backend that stalls "
                f"{dc['backend_stall_s']:g} s then fails | {dc['close_s']} s in all |")
    for t in d.get("triton_dead_close", []):
        how = {"kill": "killed", "stop": "frozen (SIGSTOP)"}.get(t["server"], t["server"])
        rows.append(f"| `Hub.close()`, {t['streams']} streams, a real tritonserver on loopback "
                    f"{how} | {t['close_s']} s in all |")
    a, b = d["loadavg_start"][0], d["loadavg_end"][0]
    return "\n".join(rows) + f"\n\n{d['cpus']} CPUs, load average {a} → {b}."


TABLES = {"asr": asr, "coldstart": coldstart, "train_clips": train_clips, "gpucheck": gpucheck,
          "capture": capture, "hub_faults": hub_faults}
