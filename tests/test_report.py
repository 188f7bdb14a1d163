"""``benchkit report``: every figure renders from a small real result set to a readable PNG,
and the HTML page carries them all."""

from __future__ import annotations

import base64
import re

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from _resultsets import copy_set, shared_tiny_set

from benchkit import plots
from benchkit.cli import main
from benchkit.report import build_sections, write_report
from benchkit.resultset import load


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory):
    """The shared small real result set (see _resultsets.py)."""
    return shared_tiny_set(tmp_path_factory)


GPU_NAME = "NVIDIA GeForce RTX 3050 Laptop GPU"


def _as_gpu(frame: pd.DataFrame) -> pd.DataFrame:
    gpu = frame.copy()
    gpu["run_id"] = gpu["run_id"].str.replace("/cpu/", "/cuda/")
    gpu["device"] = "cuda"
    return gpu


@pytest.fixture(scope="module")
def cpu_and_gpu(tiny_set, tmp_path_factory):
    """The tiny set with a GPU twin of every run (20x the throughput, allocator-sized
    memory) and the claims table a suite with claims writes."""
    folder = copy_set(tiny_set, tmp_path_factory.mktemp("report") / "set")
    results = pd.read_csv(folder / "results.csv", converters={"variant": str})
    gpu = _as_gpu(results)
    gpu["device_name"] = GPU_NAME
    gpu["samples_per_second"] *= 20
    gpu["peak_memory_bytes"] = 3 * 1024 * 1024
    pd.concat([results, gpu]).to_csv(folder / "results.csv", index=False)
    for name in ("curves.csv", "series.csv"):
        table = pd.read_csv(folder / name, converters={"variant": str})
        pd.concat([table, _as_gpu(table)]).to_csv(folder / name, index=False)
    from benchkit.claims import CLAIM_COLUMNS

    claims = pd.DataFrame(
        [
            [
                "fp32-slower",
                "fp32 takes longer to converge",
                "SPEC",
                "epochs_to",
                "loss == 0",
                "cpu",
                "a > b",
                "precision=fp32",
                35,
                3,
                "precision=fp16",
                17,
                3,
                "holds",
                "fp32 35 epochs, fp16 17 (median of 3 seeds)",
            ],
            [
                "fp32-slower",
                "fp32 takes longer to converge",
                "SPEC",
                "epochs_to",
                "loss <= 1e-06",
                "cpu",
                "a > b",
                "precision=fp32",
                14,
                3,
                "precision=fp16",
                13,
                3,
                "does not hold",
                "fp32 14 epochs, fp16 13: within a seed's spread",
            ],
        ],
        columns=CLAIM_COLUMNS,
    )
    claims.to_csv(folder / "claims.csv", index=False)
    return folder


EXPECTED = [
    "loss-single_neuron-single_point.png",
    "loss-sine_mlp-sine.png",
    "rollout-sine_mlp-sine.png",
    "convergence.png",
    "throughput.png",
    "memory.png",
    "claims.png",
]


def _check_png(path):
    assert path.stat().st_size > 15_000, f"{path.name} is suspiciously small"
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert height >= 200 and width >= 600
    assert float(np.std(image[..., :3])) > 0.02, f"{path.name} is blank"


def test_every_figure_renders_to_a_readable_png(cpu_and_gpu, tmp_path):
    index = write_report([load(cpu_and_gpu)], tmp_path / "report")
    assert index.name == "report.md"
    pngs = sorted(p.name for p in index.parent.glob("*.png"))
    assert pngs == sorted(EXPECTED)
    for name in pngs:
        _check_png(index.parent / name)
    markdown = index.read_text()
    for name in EXPECTED:
        assert f"]({name})" in markdown
    assert "Not drawn" not in markdown
    assert "| fp32-slower | loss == 0 | cpu |" in markdown  # the claims table


def test_the_html_page_embeds_every_image(cpu_and_gpu, tmp_path):
    index = write_report([load(cpu_and_gpu)], tmp_path / "report")
    page = (index.parent / "report.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == len(EXPECTED)
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<h2>Loss curves</h2>" in page and "<h2>Claim verdicts</h2>" in page


def test_figures_have_titles_axis_labels_and_legends(cpu_and_gpu):
    rs = load(cpu_and_gpu)
    results = rs.rows.assign(set="s", seed=pd.to_numeric(rs.rows["seed"]))
    curves = rs.curves.assign(set="s")
    rollout = rs.extras["rollout"].assign(set="s")
    figures = [
        plots.loss_curves(results, curves, "sine_mlp", "sine"),
        plots.rollout(results, rollout, "sine_mlp", "sine"),
        plots.convergence_epochs(results),
        plots.throughput(results),
        plots.peak_memory(results),
    ]
    for fig in figures:
        assert fig is not None
        for ax in fig.axes:
            assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
            assert ax.get_legend() is not None
    loss_axes = figures[0].axes[0]
    assert loss_axes.get_yscale() == "log" and "log scale" in loss_axes.get_ylabel()
    assert "MiB" in figures[4].axes[0].get_ylabel()
    assert "CPU vs GPU" in figures[3].get_suptitle()
    legend = [t.get_text() for t in figures[3].axes[0].get_legend().get_texts()]
    assert legend == ["cpu", "cuda"]


def test_what_cannot_be_drawn_is_said(tiny_set, tmp_path):
    folder = copy_set(tiny_set, tmp_path / "baseline-like")
    for name in ("curves.csv", "series.csv"):
        (folder / name).unlink()
    saved = []
    sections = build_sections([load(folder)], lambda fig, name: saved.append(name))
    text = {s.title: " ".join(s.paragraphs) for s in sections}
    assert "none of the result sets has curves.csv" in text["Loss curves"]
    assert "no result set records rollout predictions" in text["Rollout: actual vs predicted"]
    assert "Claim verdicts" not in text
    assert saved == ["convergence.png", "throughput.png", "memory.png"]


def test_a_rollout_csv_is_read_as_well(tiny_set, tmp_path):
    folder = copy_set(tiny_set, tmp_path / "set")
    (folder / "series.csv").unlink()
    steps = np.arange(100)
    pd.DataFrame(
        {
            "run_id": "sine_mlp/sine/fp32/cpu/seed0",
            "step": steps,
            "actual": np.sin(steps / 10),
            "predicted": np.sin(steps / 10) + steps * 1e-3,
        }
    ).to_csv(folder / "rollout.csv", index=False)
    index = write_report([load(folder)], tmp_path / "report")
    _check_png(index.parent / "rollout-sine_mlp-sine.png")


def test_report_command(tiny_set, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(tiny_set), str(tiny_set), "--out", str(out)]) == 0
    assert f"report: {out / 'report.md'}" in capsys.readouterr().out
    assert (out / "report.html").is_file() and (out / "throughput.png").is_file()
    bench = tmp_path / "bench.json"
    bench.write_text('{"benchmarks": [], "machine_info": {}}')
    assert main(["report", str(bench), "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert "a report needs result sets from `benchkit run`" in err
