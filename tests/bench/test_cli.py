"""The CLI: bad input exits 2 with one line naming the file and the problem, never a traceback."""

from __future__ import annotations


def assert_one_clear_line(err: str, *needles: str) -> None:
    assert "Traceback" not in err
    text = " ".join(err.split())
    assert text.startswith("error:"), err
    for needle in needles:
        assert needle in text, (needle, text)


def test_unknown_model(tmp_path, run_cli):
    code, _, err = run_cli("run", "--model", "nope", "--runs-dir", str(tmp_path))
    assert code == 2
    assert_one_clear_line(err, "unknown model 'nope'", "still")


def test_unknown_suite(tmp_path, run_cli):
    code, _, err = run_cli(
        "run", "--model", "still", "--suite", "nope", "--runs-dir", str(tmp_path)
    )
    assert code == 2
    assert_one_clear_line(err, "unknown suite 'nope'", "mini")


def test_missing_image_lists_the_root(tmp_path, run_cli):
    code, _, err = run_cli(
        "run",
        "--model",
        "still",
        "--suite",
        "opens2v",
        "--data-root",
        str(tmp_path),
        "--runs-dir",
        str(tmp_path / "runs"),
    )
    assert code == 2
    assert_one_clear_line(err, "all 317 reference image(s)", str(tmp_path), "the first: Images/")
    assert not (tmp_path / "runs").exists()  # nothing generated before the check


def test_path_escaping_the_root(tmp_path, run_cli):
    suite = tmp_path / "jobs.txt"
    suite.write_text("A cat@@../../etc/passwd\n")
    code, _, err = run_cli(
        "run", "--model", "still", "--suite", str(suite), "--runs-dir", str(tmp_path)
    )
    assert code == 2
    assert_one_clear_line(err, "'../../etc/passwd'", "jobs.txt:1", "data root")


def test_score_missing_videos_folder(tmp_path, run_cli):
    code, _, err = run_cli(
        "score", "--suite", "mini", "--videos", str(tmp_path / "none"), "--runs-dir", str(tmp_path)
    )
    assert code == 2
    assert_one_clear_line(err, str(tmp_path / "none"), "does not exist")


def test_bad_model_option(tmp_path, run_cli):
    code, _, err = run_cli("run", "--model", "still", "-o", "novalue", "--runs-dir", str(tmp_path))
    assert code == 2
    assert_one_clear_line(err, "'novalue' is not key=value")


def test_list_suites(run_cli):
    code, out, _ = run_cli("list", "suites")
    assert code == 0 and "opens2v-human" in out and "mini" in out


def test_option_scoped_to_a_model_not_in_the_run(tmp_path, run_cli):
    code, _, err = run_cli(
        "run", "--model", "still", "-o", "collage.height=240", "--runs-dir", str(tmp_path)
    )
    assert code == 2
    assert_one_clear_line(err, "'collage.height' is for model 'collage'", "--model still")


def test_scoped_options_reach_only_their_model(tmp_path, run_cli):
    code, out, err = run_cli(
        "run",
        "--model",
        "still",
        "--model",
        "collage",
        "--suite",
        "mini",
        "--limit",
        "1",
        "--metrics",
        "motion_amplitude",
        "-o",
        "num_frames=5",
        "-o",
        "still.num_frames=3",
        "--runs-dir",
        str(tmp_path),
    )
    assert code == 0, err
    from kaleido_bench.core.video import decode_video

    frames = {
        path.parent.parent.name.split("_")[0]: decode_video(path).num_frames
        for path in tmp_path.glob("*/videos/*.mp4")
    }
    assert frames == {"still": 3, "collage": 5}
