"""The scorer's Markdown: what the judge recognises (and the faces teach), then distances."""

from __future__ import annotations

from feraug.scoring.report import score_table


def _result(reverse: bool, inception: bool) -> dict:
    emotion = {"n": 10, "agreement": 0.5, "judge_recall_real": 0.25, "agreement_ratio": 2.0,
               "kid_judge": {"generated": {"kid": 0.1, "se": 0.01},
                             "source": {"kid": 0.2, "se": 0.02}, "floor": None},
               "memorisation": {"pixel_rms_mean": 0.1, "real_test_pixel_rms_mean": 0.2},
               "diversity": {"generated": 1.0, "real_test": 2.0}}
    if inception:
        emotion["fid_inception"] = {"generated": 40.0, "source": 41.5, "floor": 10.0}
    result = {"judge": {"model": "zhu-cnn", "path": "j.pt", "decisions": "balanced"},
              "generator": "g.pt", "step": 5, "mean_agreement_ratio": 2.0,
              "emotions": {"disgust": emotion}, "inception": {} if inception else None}
    if reverse:
        result["reverse"] = {"model": "zhu-cnn", "epochs": 3, "per_class_train": {"d": 4},
                             "mean_ratio": 0.3, "accuracy": {"generated": 0.2, "real": 0.4},
                             "macro_f1": {"generated": 0.1, "real": 0.3},
                             "emotions": {"disgust": {"auc_generated": 0.6, "auc_real": 0.8,
                                                      "ratio": 0.333, "recall_generated": 0.1,
                                                      "recall_real": 0.5}}}
    return result


def test_two_tables_one_row_per_emotion_each() -> None:
    text = score_table(_result(reverse=True, inception=True))
    tables = [part for part in text.split("\n\n") if part.startswith("| emotion")]
    assert len(tables) == 2
    taught, distances = (t.splitlines() for t in tables)
    assert "reverse ratio" in taught[0] and "Inception FID: generated" in distances[0]
    assert taught[2].startswith("| disgust | 10 | 0.500 | 0.250 | 2.000 | 0.600 / 0.800 |")
    assert "| 40.0 | 41.5 | 10.0 |" in distances[2] and "| — |" in distances[2]  # no floor


def test_without_reverse_test_or_inception_their_columns_are_absent() -> None:
    text = score_table(_result(reverse=False, inception=False))
    assert "reverse" not in text and "Inception" not in text and "Recognised:" in text


def test_paths_inside_the_working_folder_are_shown_relative(tmp_path, monkeypatch) -> None:
    from feraug.scoring.report import shown_path

    monkeypatch.chdir(tmp_path)
    assert shown_path(str(tmp_path / "runs" / "judge" / "best.pt")) == "runs/judge/best.pt"
    assert shown_path("/elsewhere/best.pt") == "/elsewhere/best.pt"
