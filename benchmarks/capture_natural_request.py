"""Capture the exact chat-completions request the OFFICIAL NaturalScore script sends for a video.

Runs the official `eval/get_naturalscore.py` (OpenS2V-Nexus 210eb08) as a program, unpatched,
from a checkout given on the command line, in ITS environment (the python given with
`--python`; pins: opencv-python==4.11.0.86, numpy==1.26.4, openai, tenacity, tqdm), pointed
at a local test server (`tests/metrics/chat_server.py`) through its own `--base_url`,
`--api_key` and `--model_name` options. The server records the requests; the first one (the
script sends the same body three times, one a run, and this checks they are identical) is
written as a golden fixture (gzipped JSON when `--out` ends in .gz): path, JSON body (16 base64 JPEG data URLs, then the prompt), and
where it came from. `tests/metrics/test_natural_score.py` checks that ours sends the same.

    /work/scratch/natural/venv/bin/python benchmarks/capture_natural_request.py \\
        --official /work/scratch/natural/official --video ../shared/opens2v/videos/singleface_3.mp4 \\
        --out tests/metrics/fixtures/natural_score/official_request_singleface_3.json.gz

The server answers "3" to every request; the official outputs (naturalscore_{1,2,3}.json)
are stored in the fixture too. No official code is copied here.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "metrics"))
from chat_server import ChatServer, Reply  # noqa: E402

MODEL = "gpt-4o-2024-11-20"
CAPTURE_KEY = "sk-capture-not-a-real-key"


def package_version(python: str, module: str, attribute: str = "__version__") -> str:
    out = subprocess.run(
        [python, "-c", f"import {module}; print({module}.{attribute})"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--official", required=True, type=Path, help="checkout holding eval/get_naturalscore.py"
    )
    parser.add_argument("--official-commit", default="210eb08")
    parser.add_argument("--video", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument(
        "--python", default=sys.executable, help="python of the official environment"
    )
    args = parser.parse_args()

    script = args.official / "eval" / "get_naturalscore.py"
    with tempfile.TemporaryDirectory() as tmp, ChatServer(Reply("3")) as server:
        videos = Path(tmp) / "videos"
        videos.mkdir()
        shutil.copy(args.video, videos / args.video.name)
        outputs = Path(tmp) / "out"
        subprocess.run(
            [
                args.python,
                str(script),
                "--input_video_folder",
                str(videos),
                "--output_json_folder",
                str(outputs),
                "--api_key",
                CAPTURE_KEY,
                "--base_url",
                server.url,
                "--model_name",
                MODEL,
                "--num_workers",
                "1",
            ],
            check=True,
            cwd=tmp,
        )
        official_outputs = {
            p.name: json.loads(p.read_text()) for p in sorted(outputs.glob("*.json"))
        }
    requests = server.requests
    if len(requests) != 3:
        raise SystemExit(f"expected 3 requests (one a run), the server saw {len(requests)}")
    bodies = [json.dumps(r.body, sort_keys=True) for r in requests]
    if len(set(bodies)) != 1:
        raise SystemExit("the official script sent different bodies in its three runs")
    first = requests[0]
    if first.headers.get("authorization") != f"Bearer {CAPTURE_KEY}":
        raise SystemExit("the official script did not send the --api_key as a bearer token")
    fixture = {
        "source": {
            "repository": "franciszzj/OpenS2V-Nexus",
            "commit": args.official_commit,
            "script": "eval/get_naturalscore.py",
            "command": "get_naturalscore.py --input_video_folder DIR --output_json_folder OUT --api_key KEY "
            f"--base_url URL --model_name {MODEL} --num_workers 1",
            "video": args.video.name,
            "opencv": package_version(args.python, "cv2"),
            "numpy": package_version(args.python, "numpy"),
            "openai": package_version(args.python, "openai"),
            "python": package_version(args.python, "sys", "version.split()[0]"),
            "requests_seen": len(requests),
        },
        "path": first.path,
        "body": first.body,
        "official_outputs": official_outputs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(fixture, indent=1) + "\n"
    if (
        args.out.suffix == ".gz"
    ):  # the 16 JPEGs are ~1 MB as JSON; gzip (mtime 0) keeps it reproducible
        args.out.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    else:
        args.out.write_text(text, encoding="utf-8")
    images = sum(part["type"] == "image_url" for part in first.body["messages"][0]["content"])
    print(f"wrote {args.out}: {images} images + text, {args.out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
