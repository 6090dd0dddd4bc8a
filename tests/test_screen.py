"""The 32-view screen: its protocol is the epoch-10 snapshot of the paper's protocol, and
its rule (hsl_tf/report/screen.py) gives the verdicts written in docs/results.md before the data."""

import os

import numpy as np
import pytest

from hsl_tf import rows as grid
from hsl_tf.report import screen
from tests import helpers

SEEDS = grid.SCREEN_SEEDS


def _encoder_weights(export_base):
    """{variable name: value} of the newest encoder SavedModel under ``export_base``."""
    import tensorflow as tf

    from hsl_tf import rundir

    loaded = tf.saved_model.load(os.path.join(export_base, str(rundir.export_versions(export_base)[-1])))
    return {v.name: v.numpy() for v in loaded.variables}


@pytest.mark.slow
def test_a_short_run_is_the_snapshot_of_a_longer_one(tmp_path):
    """E epochs with a seed give bitwise the encoder of the E-epoch snapshot of a longer run with the
    same seed (constant-LR Adam, the data and the views keyed to the step): a screen cell (10 epochs)
    is the epoch-10 snapshot of a 50-epoch cell, so screen cells and paper-protocol snapshots pair."""
    from hsl_tf.config import TrainConfig
    from hsl_tf.train import train

    common = dict(max_steps=0, train_examples=16, batch_size=8, surrogate_every=0, log_every=1, seed=5)
    short = train(TrainConfig(**helpers.tiny_kwargs(str(tmp_path / "short"), epochs=1, **common)))
    train(TrainConfig(**helpers.tiny_kwargs(str(tmp_path / "long"), epochs=2, snapshot_every=1, **common)))
    assert short.results["step"] == 2  # 16 images / 8 per batch, one epoch
    a = _encoder_weights(str(tmp_path / "short" / "export" / "encoder"))
    b = _encoder_weights(str(tmp_path / "long" / "snapshots" / "epoch-001"))
    c = _encoder_weights(str(tmp_path / "long" / "export" / "encoder"))
    assert sorted(a) == sorted(b) and len(a) > 4
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    squares = sum(float(np.sum(v.astype(np.float64) ** 2)) for v in a.values())
    assert squares != sum(float(np.sum(v.astype(np.float64) ** 2)) for v in c.values())  # training went on


def test_screen_flags_are_the_paper_protocol_cut_to_10_epochs():
    from hsl_tf.config import TrainConfig
    from hsl_tf.fields import parse_overrides
    from hsl_tf.flagfiles import expand_flagfiles

    def parsed(name):
        return TrainConfig(**parse_overrides(TrainConfig, expand_flagfiles(
            ["--flagfile=" + os.path.join(helpers.ROOT, "configs", name)]), "flagfile"))

    scr, full = parsed("screen32.flags"), parsed("full_jpeg.flags")
    assert (scr.epochs, scr.snapshot_every, full.epochs) == (10, 5, 50)
    for name, value in full.identity().items():
        if name != "epochs":
            assert scr.identity()[name] == value, name


def _facts(probes, crashes=None, alive=None):
    """Cells from {(row, seed): probe %}; every cell without a crash and alive unless told."""
    return {k: {"probe": p, "crashes": (crashes or {}).get(k, 0), "alive": (alive or {}).get(k, True)}
            for k, p in probes.items()}


def test_rule_advances_only_a_candidate_ahead_on_both_seeds_by_the_margin():
    probes = {("bce", 3): 50.0, ("bce", 4): 52.0, ("xz_js", 3): 47.0, ("xz_js", 4): 49.0,
              ("xza_focal_nwj", 3): 51.5, ("xza_focal_nwj", 4): 52.6,  # +1.5, +0.6: mean 1.05, both ahead
              ("xza_focal_both", 3): 53.0, ("xza_focal_both", 4): 51.9,  # mean +1.45 but behind on s4
              ("xza_js", 3): 50.5, ("xza_js", 4): 53.4}  # +0.5, +1.4: mean 0.95 < 1.0
    judged = screen.verdict(_facts(probes))
    assert judged["xza_focal_nwj"]["advances"] is True
    assert judged["xza_focal_nwj"]["mean"] == pytest.approx(1.05)
    assert judged["xza_focal_both"]["advances"] is False
    assert judged["xza_js"]["advances"] is False
    assert judged["xza_js"]["vs_control"] == pytest.approx({3: 3.5, 4: 4.4})  # its own control, not judged
    assert "xza_w05" not in judged  # no cell yet
    assert screen.best_candidate(judged) == "xza_focal_both"


def test_rule_needs_an_alive_branch_no_crash_and_every_cell():
    probes = {("bce", 3): 50.0, ("bce", 4): 50.0, ("xza_focal_nwj", 3): 55.0, ("xza_focal_nwj", 4): 55.0}
    assert screen.verdict(_facts(probes))["xza_focal_nwj"]["advances"] is True
    dead = screen.verdict(_facts(probes, alive={("xza_focal_nwj", 4): False}))["xza_focal_nwj"]
    assert dead["advances"] is False and dead["alive"] is False
    crashed = screen.verdict(_facts(probes, crashes={("xza_focal_nwj", 3): 1}))["xza_focal_nwj"]
    assert crashed["advances"] is False and crashed["no_crash"] is False
    half = {k: v for k, v in probes.items() if k != ("xza_focal_nwj", 4)}
    one_seed = screen.verdict(_facts(half))["xza_focal_nwj"]
    assert one_seed["advances"] is None and not one_seed["complete"]
    # behind on the seed that has run: settled before the other seed's cell, as no later cell undoes it
    behind = screen.verdict(_facts({**half, ("xza_focal_nwj", 3): 49.5}))["xza_focal_nwj"]
    assert behind["advances"] is False and not behind["complete"] and behind["reasons"] == ["behind on s3"]
    tie = screen.verdict(_facts({**probes, ("xza_focal_nwj", 4): 50.0}))["xza_focal_nwj"]
    assert tie["advances"] is False and tie["reasons"] == ["behind on s4"]  # "ahead" is strict
    low = screen.verdict(_facts({**probes, ("xza_focal_nwj", 3): 50.5, ("xza_focal_nwj", 4): 51.0}))
    assert low["xza_focal_nwj"]["reasons"] == ["mean < 1.0"]
    assert screen.best_candidate({"xza_focal_nwj": one_seed}) is None


def test_screen_table_states_each_verdict():
    probes = {("bce", 3): 50.0, ("bce", 4): 52.0, ("xza_focal_nwj", 3): 51.5, ("xza_focal_nwj", 4): 52.6,
              ("xz_infonce", 3): 45.0, ("xza_w05", 3): 46.25, ("xza_js", 3): 50.5}
    text = screen.screen_table(_facts(probes))
    assert "**advances**" in text and "does not advance (behind on s3)" in text  # xza_w05
    assert "incomplete" in text  # xza_js: ahead on s3, s4 not run
    assert "+1.05" in text and "+1.25 (s3)" in text  # the mean against bce; xza_w05's difference to its control, one seed named
    assert screen.screen_table({}) == ""


def test_screen_summary_gives_one_line_per_candidate_with_the_rules_verdict(tmp_path):
    probes = {("bce", 3): 50.0, ("bce", 4): 52.0, ("xza_focal_nwj", 3): 51.5, ("xza_focal_nwj", 4): 52.6,
              ("xz_infonce", 3): 45.0, ("xza_w05", 3): 46.25}
    facts = _facts(probes, alive={("xza_w05", 3): False})
    lines = screen.screen_summary(facts).split("\n")
    nwj = next(line for line in lines if line.startswith("| `xza_focal_nwj`"))
    assert [c.strip() for c in nwj.strip("|").split("|")] == [
        "`xza_focal_nwj`", "+1.50", "+0.60", "+1.05", "`bce`", "+1.05", "alive", "0", "**advances**"]
    w05 = next(line for line in lines if line.startswith("| `xza_w05`"))
    assert [c.strip() for c in w05.strip("|").split("|")] == [
        "`xza_w05`", "−3.75", "–", "−3.75", "`xz_infonce`", "+1.25 (s3)", "dead", "0", "does not advance (behind on s3; dead on s3)"]
    assert "s3 50.00 %, s4 52.00 %" in lines[-2]
    assert screen.screen_summary({}) == ""
    # the README's block of kind report-screen is that summary and nothing else
    from hsl_tf.report import write
    summary = tmp_path / "screen_summary.md"
    summary.write_text(screen.screen_summary(facts))
    table = tmp_path / "table.md"
    table.write_text("| Table 1 |")
    written = {"screen_summary_md": str(summary), "table_md": str(table)}
    assert write.readme_text(written, kind="report-screen") == screen.screen_summary(facts)
    assert "Table 1" not in write.readme_text(written, kind="report-screen")


def test_overall_verdict_waits_for_every_planned_candidate():
    base = {("bce", 3): 50.0, ("bce", 4): 52.0}
    behind = {(c, 3): 49.0 for c in ("xza_focal_nwj", "xza_focal_both", "xza_js")}
    # three failed on s3, xza_w05 without a cell: open; with a lead of 0.5 on both seeds: all failed
    assert screen.overall(screen.verdict(_facts({**base, **behind}))) == "No verdict yet: `xza_w05` still open."
    small = {("xza_w05", 3): 50.5, ("xza_w05", 4): 52.5}
    assert screen.overall(screen.verdict(_facts({**base, **behind, **small}))) == "No candidate advances."
    # an extra that has run is part of the verdict; one that has not is not
    won = screen.verdict(_facts({**base, **behind, **small, ("xza_focal", 3): 52.0, ("xza_focal", 4): 53.5}))
    assert screen.overall(won) == "Advances: `xza_focal`."
    assert screen.overall(screen.verdict(_facts({**base, **behind, **small, ("xza_focal", 3): 51.0}))) == (
        "No verdict yet: `xza_focal` still open.")
    text = screen.screen_summary(_facts({**base, **behind, **small}))
    assert text.rstrip().endswith("**No candidate advances.**")
