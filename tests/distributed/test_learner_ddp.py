"""The Learner over 2 gloo processes (DDP + DistributedSampler): the same parameters and
epoch figures as one process with the doubled batch, files written by rank 0 only, a
rank that fails mid-epoch stops the other with an error naming it, and the checkpoint
written before the fault resumes to the uninterrupted run's parameters. Then
`handgrad train mlp --nproc 2` on the bundled digits, through torch's launcher."""

import json
import subprocess
import sys

import pytest

from tests.distributed import launch, workers

WORLD = 2


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The 2-process run of LEARNER_EPOCHS epochs (shared by the tests below)."""
    directory = tmp_path_factory.mktemp("ddp")
    results = launch.check(launch.run(workers.learner_fit, WORLD, args=(str(directory),),
                                      timeout=60))
    return results, directory


def _single_process(directory) -> dict:
    learner, lines = workers.build_learner(0, 1, str(directory))
    learner.fit(workers.LEARNER_EPOCHS)
    return workers.learner_outcome(learner, lines, str(directory))


def _assert_same_params(ours: dict, reference: dict, tol: float = 1e-6) -> None:
    assert set(ours) == set(reference)
    for key, value in reference.items():
        difference = (ours[key] - value).abs().max().item()
        assert difference <= tol, (key, difference)


def test_ddp_learner_equals_one_process_with_the_doubled_batch(uninterrupted, tmp_path):
    results, directory = uninterrupted
    reference = _single_process(tmp_path)
    steps = workers.LEARNER_EPOCHS * workers.LEARNER_TRAIN // (WORLD * workers.PER_RANK)
    assert reference["step"] == steps == 15
    for rank, result in enumerate(results):
        assert result["step"] == steps
        _assert_same_params(result["params"], reference["params"])
        # the epoch figures are exact means over both ranks' examples (the valid shards
        # are uneven: 7 and 6 examples), the same on every rank
        assert len(result["history"]) == workers.LEARNER_EPOCHS
        for ours, theirs in zip(result["history"], reference["history"]):
            assert set(ours) == set(theirs)
            for key, value in theirs.items():
                assert ours[key] == pytest.approx(value, rel=0, abs=1e-9), (rank, key)
    # only rank 0 printed and wrote files
    assert len(results[0]["lines"]) == 1 + workers.LEARNER_EPOCHS and results[1]["lines"] == []
    files = sorted(p.name for p in directory.iterdir())
    assert files == ["rank0", "written-by-rank0"], files
    # the DDP run's checkpoint holds the plain module's keys: one process resumes it
    learner, _ = workers.build_learner(0, 1, str(tmp_path))
    learner.load_checkpoint(directory / "rank0" / "checkpoint.safetensors")
    assert learner.epochs_done == workers.LEARNER_EPOCHS and learner.step == steps
    _assert_same_params({k: v.data for k, v in learner.model.state_dict().items()},
                        results[0]["params"], tol=0)


def test_fault_stops_the_other_rank_and_the_checkpoint_resumes(uninterrupted, tmp_path):
    results, _ = uninterrupted
    # bounded: a rank still running after `timeout` is killed and reported as "timeout"
    failed = launch.run(_fail_mid_epoch, WORLD, args=(str(tmp_path),), timeout=90,
                        collective_timeout=10)
    assert isinstance(failed[1], launch.Failure) and failed[1].kind == "ValueError", failed[1]
    assert isinstance(failed[0], launch.Failure) and failed[0].kind == "RuntimeError", failed[0]
    message = failed[0].message.splitlines()[0]
    assert "rank 1 of 2 raised ValueError at epoch 2, training batch 3" in message, message
    assert "rank 0 of 2 stops too" in message, message
    # the checkpoint of epoch 1 (written before the fault) resumes the run on both ranks
    checkpoint = tmp_path / "rank0" / "checkpoint.safetensors"
    assert not (tmp_path / "rank1").exists()
    resumed = launch.check(launch.run(workers.learner_fit, WORLD, timeout=60,
                                      args=(str(tmp_path), workers.LEARNER_EPOCHS, None,
                                            str(checkpoint))))
    for rank in range(WORLD):
        _assert_same_params(resumed[rank]["params"], results[0]["params"], tol=1e-12)
        assert resumed[rank]["history"] == results[0]["history"]


def _fail_mid_epoch(rank, world_size, directory):
    return workers.learner_fit(rank, world_size, directory, fail=(1, 1, 2))


def test_train_command_with_nproc_2_on_digits(tmp_path):
    out = tmp_path / "run"
    finished = subprocess.run(
        [sys.executable, "-m", "handgrad", "train", "mlp", "--dataset", "digits", "--nproc",
         "2", "--epochs", "1", "--batch-size", "64", "--quiet", "--no-plots", "--out",
         str(out)], capture_output=True, text=True, timeout=90)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "2 processes" in finished.stdout, finished.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == 2 and results["epochs_done"] == 1
    assert results["test"]["accuracy"] > 0.5
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.safetensors", "results.json"]


@pytest.mark.parametrize("flags, environment, expected", [
    (["--nproc", "0"], {}, "--nproc must be 1 or more, got 0"),
    (["--nproc", "2", "--lr-find"], {}, "the LR finder runs in one process"),
    (["--nproc", "2"], {"RANK": "0", "WORLD_SIZE": "2"},
     "--nproc 2 starts processes of its own, but this one was started by a launcher"),
])
def test_train_command_refuses_nproc_misuse(flags, environment, expected, monkeypatch,
                                            tmp_path, capsys):
    from handgrad.cli import main

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    status = main(["train", "mlp", "--dataset", "digits", "--out", str(tmp_path), *flags])
    assert status == 2
    assert expected in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before anything started
