"""The training loop: data order, schedules, checkpoints, exact resume after SIGKILL, DDP."""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hrnet.cli import main
from hrnet.engine import checkpoint as ckpt
from hrnet.engine.config import TrainConfig
from hrnet.engine.train import SeededItems, ShardedBatchSampler, _optimizer, lr_factor
from hrnet.errors import HRNetError
from tests.engine.conftest import cli_env, run_cli, tiny_train_flags


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return ckpt.load(run_dir / "model.pt", expect=ckpt.MODEL_FORMAT)["model"]


def _assert_same_weights(
    a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], *, atol: float = 0.0
) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if atol == 0.0:
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0, msg=k)


# --------------------------------------------------------------------------------------------
# pure pieces


def test_sharded_batches_partition_the_global_batch() -> None:
    single = ShardedBatchSampler(20, batch_size=4, world_size=1, rank=0, seed=1, shuffle=True)
    ranks = [
        ShardedBatchSampler(20, batch_size=2, world_size=2, rank=r, seed=1, shuffle=True) for r in (0, 1)
    ]
    for s in (single, *ranks):
        s.set_epoch(3)
    merged = [a + b for a, b in zip(*(list(r) for r in ranks))]
    assert merged == list(single)
    assert len(single) == 5
    # resume from batch 2 gives the tail of the same epoch; another epoch gives another order
    single.set_epoch(3, start=2)
    assert list(single) == merged[2:]
    single.set_epoch(4)
    assert [i for b in single for _, i in b] != [i for b in merged for _, i in b]


class _Draws(torch.utils.data.Dataset):
    """Each item is a draw from Python's, numpy's and torch's global generators."""

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> tuple[float, float, float]:
        import random

        import numpy as np

        return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_seeded_items_depend_on_seed_epoch_index_only_and_keep_the_callers_generators() -> None:
    import random

    import numpy as np

    items = SeededItems(_Draws(), seed=5)
    keys = [(2, 4), (2, 0), (3, 4)]
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    one_by_one = [items[k] for k in keys]
    after = (random.random(), float(np.random.rand()), float(torch.rand(())))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    batched = items.__getitems__(list(reversed(keys)))[::-1]  # what the DataLoader's fetcher calls
    assert batched == one_by_one
    assert one_by_one[0] != one_by_one[1] and one_by_one[0] != one_by_one[2]
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    items.__getitems__(keys)
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == after
    loader = torch.utils.data.DataLoader(items, batch_sampler=[keys], collate_fn=list)
    assert next(iter(loader)) == one_by_one


def test_lr_schedules() -> None:
    step = TrainConfig(lr=0.1, schedule="step", milestones=(2, 4), gamma=0.1, epochs=6)
    assert [lr_factor(s, step, total_steps=60, steps_per_epoch=10) for s in (0, 19, 20, 40)] == pytest.approx(
        [1, 1, 0.1, 0.01]
    )
    poly = TrainConfig(lr=0.01, schedule="poly", poly_power=0.9, min_lr=1e-4, iters=100)
    assert lr_factor(0, poly, total_steps=100, steps_per_epoch=1) == pytest.approx(1.0)
    assert lr_factor(100, poly, total_steps=100, steps_per_epoch=1) == pytest.approx(0.01)
    assert lr_factor(50, poly, total_steps=100, steps_per_epoch=1) == pytest.approx(0.01 + 0.99 * 0.5**0.9)
    cos = TrainConfig(lr=1.0, schedule="cosine", warmup_iters=10, warmup_factor=0.0)
    assert lr_factor(5, cos, total_steps=100, steps_per_epoch=1) == pytest.approx(
        0.5 * 0.5 * (1 + math.cos(math.pi * 0.05))
    )
    assert lr_factor(50, cos, total_steps=100, steps_per_epoch=1) == pytest.approx(0.5)


def test_milestone_shift_matches_the_hrnet_codebases_scheduler_loop() -> None:
    """HRNet-Image-Classification / deep-high-resolution-net.pytorch / HRNet-Facial-Landmark-
    Detection tools/train.py: MultiStepLR(optimizer, LR_STEP, LR_FACTOR, -1), then for each epoch
    ``lr_scheduler.step()`` before training it. torch's own scheduler, driven that way, is the
    reference for the lr of every epoch."""
    import warnings

    milestones = [3, 5]
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, 0.1, last_epoch=-1)
    source = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()": as there
        for _epoch in range(7):
            scheduler.step()
            source.append(optimizer.param_groups[0]["lr"])
    cfg = TrainConfig(lr=1.0, milestones=tuple(milestones), milestone_shift=1, epochs=7)
    ours = [lr_factor(step, cfg, total_steps=70, steps_per_epoch=10) for step in range(70)]
    assert ours == pytest.approx([lr for lr in source for _ in range(10)])  # every step of each epoch
    assert source == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01, 0.01])  # drops at epochs 2 and 4
    unshifted = dataclasses.replace(cfg, milestone_shift=0)
    assert [
        lr_factor(e * 10, unshifted, total_steps=70, steps_per_epoch=10) for e in range(7)
    ] == pytest.approx([1, 1, 1, 0.1, 0.1, 0.01, 0.01])


def test_constant_warmup_holds_the_factor_then_releases_it() -> None:
    # mmcv LrUpdaterHook: warmup='constant' gives lr * warmup_ratio while cur_iter < warmup_iters
    fcos = TrainConfig(lr=0.01, milestones=(8, 11), warmup_iters=500, warmup_factor=1 / 3, warmup="constant")
    factors = [lr_factor(s, fcos, total_steps=12_000, steps_per_epoch=1000) for s in (0, 250, 499, 500, 8000)]
    assert factors == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0, 0.1])
    with pytest.raises(HRNetError, match="warmup"):
        TrainConfig(warmup="cosine")


def test_bias_multipliers_follow_mmcv_paramwise_rules() -> None:
    """mmcv DefaultOptimizerConstructor: bias_lr_mult / bias_decay_mult apply to each module's own
    ``bias`` except in normalisation layers; weights and norm parameters keep the base values."""
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3),  # bias: x2 lr, no decay
        torch.nn.GroupNorm(4, 8),  # weight and bias: base
        torch.nn.BatchNorm2d(8),  # base
        torch.nn.Conv2d(8, 8, 1, bias=False),
        torch.nn.Linear(8, 2),  # bias: x2, no decay
    )
    model[3].weight.requires_grad_(False)  # frozen: in no group
    cfg = TrainConfig(lr=0.01, weight_decay=1e-4, bias_lr_mult=2.0, bias_decay_mult=0.0)
    groups = _optimizer(cfg, model).param_groups
    settings = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    special = {id(model[0].bias), id(model[4].bias)}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert set(settings) == {id(p) for p in trainable}
    for p in trainable:
        assert settings[id(p)] == pytest.approx((0.02, 0.0) if id(p) in special else (0.01, 1e-4))
    plain = _optimizer(TrainConfig(lr=0.01), model).param_groups
    assert len(plain) == 1  # no multipliers: one group, as before


def test_checkpoint_roundtrip_restores_generators(tmp_path) -> None:
    import random

    import numpy as np

    state = ckpt.rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1))
    ckpt.save_atomic({"format": ckpt.CHECKPOINT_FORMAT, "rng": state}, tmp_path / "c.pt")
    ckpt.set_rng_state(ckpt.load(tmp_path / "c.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary left behind


def test_bad_arguments_exit_2(tmp_path, capsys) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("rows:\n  r1:\n    lr: 0.1\n    lr_typo: 1\n")
    assert main(["train", "--out", str(tmp_path / "r"), "--params", str(params), "--row", "r1"]) == 2
    assert "lr_typo" in capsys.readouterr().err
    assert (
        main(["train", "--out", str(tmp_path / "r"), "--data", str(tmp_path / "missing"), "--no-mlflow"]) == 2
    )
    assert "dataset folder not found" in capsys.readouterr().err
    assert main(["evaluate", "--run-dir", str(tmp_path / "nothing")]) == 2


# --------------------------------------------------------------------------------------------
# training runs on a tiny ImageFolder


def test_train_then_evaluate(tiny_folder, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert (
        main(["train", "--out", str(run), *tiny_train_flags(tiny_folder), "--iters", "4", "--log-every", "2"])
        == 0
    )
    state = ckpt.load(run / "model.pt")
    assert state["config"]["iters"] == 4 and state["info"]["class_names"] == ["blue", "red"]
    assert (run / "checkpoints" / "last.pt").is_file()
    assert [h["step"] for h in json.loads((run / "history.json").read_text())] == [2, 4]
    assert main(["evaluate", "--run-dir", str(run), "--workers", "0", "--no-mlflow"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_images"] == 16 and 0.0 <= metrics["top1"] <= 1.0
    assert (run / "plots" / "confusion_matrix.png").is_file()
    assert (run / "plots" / "predictions.png").is_file()
    # another split would replace the run's own numbers: refused before anything runs, unless
    # written beside (--out) or replaced on purpose (--replace)
    before = (run / "metrics.json").read_bytes()
    other = ["evaluate", "--run-dir", str(run), "--split", "train", "--workers", "0", "--no-mlflow"]
    assert main(other) == 2
    err = capsys.readouterr().err
    assert "holds another evaluation" in err and "split 'val' there, 'train' here" in err
    assert f"--out {run / 'eval-train'}" in err and "--replace" in err
    assert (run / "metrics.json").read_bytes() == before
    assert main([*other, "--out", str(run / "eval-train")]) == 0
    assert json.loads((run / "eval-train" / "metrics.json").read_text())["split"] == "train"
    assert (run / "metrics.json").read_bytes() == before
    assert (
        main(["evaluate", "--run-dir", str(run), "--workers", "0", "--no-mlflow", "--batch-size", "3"]) == 0
    )
    assert json.loads((run / "metrics.json").read_text())["top1"] == metrics["top1"]  # the same evaluation
    assert main([*other, "--replace"]) == 0
    assert json.loads((run / "metrics.json").read_text())["split"] == "train"
    assert main(["evaluate", "--run-dir", str(run), "--workers", "0", "--no-mlflow", "--replace"]) == 0
    missing = ["evaluate", "--run-dir", str(run), "--split", "nope", "--out", str(tmp_path / "nope")]
    assert main([*missing, "--workers", "0", "--no-mlflow"]) == 2  # a split that is not there
    assert not (tmp_path / "nope").exists()  # no empty folders left behind
    (tmp_path / "a-file").write_text("")  # --out naming a file: the path and the reason, no traceback
    assert main(["evaluate", "--run-dir", str(run), "--out", str(tmp_path / "a-file"), "--no-mlflow"]) == 2
    assert f"{tmp_path / 'a-file'}" in capsys.readouterr().err
    # the same model on a copy whose val split has only the red folder: red keeps its label
    import shutil

    copy = tmp_path / "red_only"
    shutil.copytree(tiny_folder, copy)
    shutil.rmtree(copy / "val" / "blue")
    args = ["evaluate", "--run-dir", str(run), "--data", str(copy), "--out", str(tmp_path / "red")]
    assert main([*args, "--workers", "0", "--no-mlflow"]) == 0
    red = json.loads((tmp_path / "red" / "metrics.json").read_text())
    assert red["class_names"] == ["blue", "red"] and red["num_images"] == 8
    assert red["confusion_matrix"] == [[0, 0], metrics["confusion_matrix"][1]]


def test_evaluate_progress_follows_the_launch_settings(tiny_folder, tmp_path, capfd) -> None:
    """A params file with ``launch.progress: false`` (the pipeline's) keeps tqdm out of the logs."""
    run = tmp_path / "run"
    assert (
        main(["train", "--out", str(run), *tiny_train_flags(tiny_folder), "--iters", "1", "--no-progress"])
        == 0
    )
    launch = tmp_path / "params.yaml"
    capfd.readouterr()
    for progress, bar in ((True, True), (False, False)):
        launch.write_text(f"launch: {{workers: 0, progress: {str(progress).lower()}}}\n")
        assert main(["evaluate", "--run-dir", str(run), "--launch", str(launch), "--no-mlflow"]) == 0
        err = capfd.readouterr().err
        assert ("evaluate:" in err and "batch" in err) is bar, err[-500:]


def test_resume_after_sigkill_matches_uninterrupted(tiny_folder, tmp_path) -> None:
    flags = [*tiny_train_flags(tiny_folder), "--iters", "24", "--checkpoint-every", "2", "--accum-steps", "2"]
    # uninterrupted reference
    assert main(["train", "--out", str(tmp_path / "ref"), *flags]) == 0

    # the same run, killed with SIGKILL as soon as its first checkpoint lands
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hrnet.cli", "train", "--out", str(killed), *flags],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = killed / "checkpoints" / "last.pt"
    try:
        deadline = time.monotonic() + 240
        while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "model.pt").exists(), "the run finished before it could be killed"
    step = ckpt.load(last)["position"]["step"]
    assert 0 < step < 24

    assert main(["train", "--out", str(killed), *flags, "--resume"]) == 0
    _assert_same_weights(_weights(killed), _weights(tmp_path / "ref"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_match_one(tiny_folder, tmp_path) -> None:
    """2 gloo processes x batch 2 == 1 process x batch 4: same global batches (sampler slices),
    gradients averaged by DDP, BatchNorm frozen so that no statistic depends on the split.

    Equal up to float rounding: the gradient sums run in another order (per-rank means, then
    the gloo all-reduce), ~1e-7 relative per step, amplified over 3 steps to ~1e-5. A wrong
    split of the data (control run: a different global batch) differs by far more than atol.
    """
    atol = 2e-4
    common = [*tiny_train_flags(tiny_folder), "--iters", "3", "--frozen-bn"]
    single, ddp, nodes, control = (tmp_path / n for n in ("single", "ddp", "nodes", "control"))
    assert main(["train", "--out", str(single), *common, "--batch-size", "4"]) == 0
    assert main(["train", "--out", str(control), *common, "--batch-size", "2"]) == 0
    run_cli(["train", "--out", str(ddp), *common, "--batch-size", "2", "--nproc-per-node", "2"], cwd=tmp_path)
    _assert_same_weights(_weights(ddp), _weights(single), atol=atol)
    gap = max((_weights(control)[k] - _weights(single)[k]).abs().max().item() for k in _weights(single))
    assert gap > 10 * atol

    # two "nodes" of one process each, joined by a c10d rendezvous on loopback
    endpoint = f"127.0.0.1:{_free_port()}"
    node_args = [
        sys.executable, "-m", "hrnet.cli", "train", "--out", str(nodes), *common, "--batch-size", "2",
        "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-endpoint", endpoint, "--rdzv-id", "test-nodes",
    ]  # fmt: skip
    launchers = [
        subprocess.Popen(
            node_args, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in launchers]
    assert [p.returncode for p in launchers] == [0, 0], "\n".join(outputs)
    _assert_same_weights(_weights(nodes), _weights(single), atol=atol)


def test_norm_eval_freezes_batchnorm_statistics_but_trains_its_weights(tiny_folder, tmp_path) -> None:
    """MMDetection's `norm_eval` (HRNet-Object-Detection's backbones): running mean/var keep
    their starting values, the affine weights still change; without it both change."""
    import torch

    from hrnet.engine.config import TrainConfig
    from hrnet.engine.train import train

    def bn_state(run: Path) -> dict[str, torch.Tensor]:
        state = torch.load(run / "model.pt", weights_only=True, map_location="cpu")["model"]
        return {k: v for k, v in state.items() if k.startswith("bn1.")}

    cfg = TrainConfig(
        task="classification", model="hrnet_w18_small", data=str(tiny_folder), input_size=(16, 16),
        batch_size=4, iters=2, lr=0.05, workers=0, device="cpu", seed=0, deterministic=True,
    )  # fmt: skip
    runs = {}
    for norm_eval in (False, True):
        out = tmp_path / f"norm_eval_{norm_eval}"
        train(dataclasses.replace(cfg, norm_eval=norm_eval), out_dir=out, progress=False)
        runs[norm_eval] = bn_state(out)
    fresh, frozen = runs[False], runs[True]
    assert torch.equal(frozen["bn1.running_mean"], torch.zeros_like(frozen["bn1.running_mean"]))
    assert torch.equal(frozen["bn1.running_var"], torch.ones_like(frozen["bn1.running_var"]))
    assert not torch.equal(fresh["bn1.running_mean"], frozen["bn1.running_mean"])
    assert not torch.equal(frozen["bn1.weight"], torch.ones_like(frozen["bn1.weight"]))


def test_init_from_a_task_checkpoint_reinitialises_only_the_class_layers(
    tiny_folder, tmp_path, capsys
) -> None:
    """Fine-tuning from a whole task checkpoint: every tensor loads strictly; with another class
    count only the task's class layers start anew, and the log says so; a checkpoint of another
    architecture fails naming keys."""
    import shutil

    import torch

    from hrnet.engine.config import TrainConfig
    from hrnet.engine.train import train
    from hrnet.errors import HRNetError

    cfg = TrainConfig(
        task="classification", model="hrnet_w18_small", data=str(tiny_folder), input_size=(16, 16),
        batch_size=4, iters=1, lr=0.01, workers=0, device="cpu", seed=0,
    )  # fmt: skip
    first = train(cfg, out_dir=tmp_path / "first", progress=False).model_path
    again = train(
        dataclasses.replace(cfg, init_from=str(first), lr=1e-12), out_dir=tmp_path / "again", progress=False
    )
    a = torch.load(first, weights_only=True)["model"]
    b = torch.load(again.model_path, weights_only=True)["model"]
    assert torch.allclose(a["stem.conv1.weight"] if "stem.conv1.weight" in a else a["conv1.weight"],
                          b["stem.conv1.weight"] if "stem.conv1.weight" in b else b["conv1.weight"], atol=1e-6)  # fmt: skip
    three = tmp_path / "three"
    shutil.copytree(tiny_folder, three)
    for split in ("train", "val"):
        shutil.copytree(three / split / "red", three / split / "green")
    train(
        dataclasses.replace(cfg, data=str(three), init_from=str(first)),
        out_dir=tmp_path / "three_run",
        progress=False,
    )
    assert "re-initialised" in capsys.readouterr().out
    other = TrainConfig(
        task="classification", model="hrnet_w18_small_v2", data=str(tiny_folder), input_size=(16, 16),
        batch_size=4, iters=1, workers=0, device="cpu", init_from=str(first),
    )  # fmt: skip
    with pytest.raises(HRNetError, match=r"shape|missing|unused"):
        train(other, out_dir=tmp_path / "other", progress=False)


def test_a_signal_during_a_checkpoint_write_waits_for_the_file(tmp_path, monkeypatch) -> None:
    """SIGTERM inside torch.save (its zip writer would turn the interrupt into a RuntimeError and
    a half-written temporary file): the checkpoint is put in place first, then the interrupt."""
    import os

    real_save = torch.save

    def save_and_get_terminated(obj, f):
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, mid-write
        real_save(obj, f)

    monkeypatch.setattr(torch, "save", save_and_get_terminated)
    previous = signal.signal(signal.SIGTERM, ckpt.interrupt)
    try:
        with pytest.raises(KeyboardInterrupt, match="signal 15"):
            ckpt.save_atomic({"w": torch.ones(3)}, tmp_path / "last.pt")
    finally:
        signal.signal(signal.SIGTERM, previous)
    monkeypatch.undo()
    assert torch.equal(torch.load(tmp_path / "last.pt", weights_only=True)["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left
    with pytest.raises(KeyboardInterrupt):  # outside a save: at once
        ckpt.interrupt(signal.SIGTERM, None)


def test_a_refused_resume_keeps_the_runs_config(tiny_folder, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *tiny_train_flags(tiny_folder), "--iters", "2"]) == 0
    before = (run / "config.json").read_bytes()
    flags = [*tiny_train_flags(tiny_folder), "--iters", "4", "--lr", "0.5", "--resume"]
    assert main(["train", "--out", str(run), *flags]) == 2
    assert "cannot resume, the configuration changed (lr: 0.02 -> 0.5" in capsys.readouterr().err
    assert (run / "config.json").read_bytes() == before  # the run's config is still the one it ran with


def test_resume_takes_the_same_data_written_another_way(tmp_path, monkeypatch) -> None:
    from hrnet.engine.config import TrainConfig
    from hrnet.engine.train import _check_resumable

    (tmp_path / "digits").mkdir()
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path)
    saved = TrainConfig(data=str(tmp_path / "digits"))
    _check_resumable(saved, TrainConfig(data="digits"), tmp_path / "last.pt")  # relative: the same folder
    _check_resumable(saved, TrainConfig(data="./other/../digits/"), tmp_path / "last.pt")
    with pytest.raises(HRNetError, match=r"cannot resume, the configuration changed \(data: .* -> 'other'\)"):
        _check_resumable(saved, TrainConfig(data="other"), tmp_path / "last.pt")
    with pytest.raises(HRNetError, match="cannot resume"):
        _check_resumable(saved, TrainConfig(data="missing"), tmp_path / "last.pt")
