"""Code versions follow the source an asset runs; data versions follow the bytes it wrote."""

from pathlib import Path

import pytest

import agentscaler_assets.versions as versions
from agentscaler_assets.resources import StorageRoot, TrainingSettings
from agentscaler_assets.training_assets import model_version


def test_code_version_changes_with_the_named_modules_only(tmp_path, monkeypatch):
    monkeypatch.setattr(versions, "PROJECT_ROOT", tmp_path)
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "sub" / "a.py").write_text("x = 1\n")
    (tmp_path / "other.py").write_text("y = 1\n")
    before = versions.code_version("pkg")
    (tmp_path / "other.py").write_text("y = 2\n")
    assert versions.code_version("pkg") == before
    (tmp_path / "pkg" / "sub" / "a.py").write_text("x = 2\n")
    assert versions.code_version("pkg") != before
    assert versions.code_version("pkg.sub.a") != versions.code_version("other")
    with pytest.raises(ValueError, match="'pkg.missing' is not a module"):
        versions.code_version("pkg.missing")


def test_a_models_data_version_ignores_checkpoints_and_run_records(tmp_path: Path):
    model = tmp_path / "phase1"
    (model / "checkpoint-50").mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"weights")
    (model / "phase_result.json").write_text('{"wall_seconds": 1}')
    before = model_version(model)
    (model / "checkpoint-50" / "optimizer.pt").write_bytes(b"state")
    (model / "phase_result.json").write_text('{"wall_seconds": 2}')
    assert model_version(model) == before
    (model / "model.safetensors").write_bytes(b"other weights")
    assert model_version(model) != before
    assert versions.content_version(tmp_path / "absent") == versions.content_version()


def test_the_config_fingerprint_follows_op_config_and_resources():
    storage = {"storage": StorageRoot(root="/data")}
    base = versions.config_fingerprint({"n_chains": 8}, storage)
    assert versions.config_fingerprint({"n_chains": 8}, {"storage": StorageRoot(root="/data")}) == base
    assert versions.config_fingerprint({"n_chains": 9}, storage) != base
    assert versions.config_fingerprint({"n_chains": 8}, {"storage": StorageRoot(root="/elsewhere")}) != base
    small, large = TrainingSettings(hidden_size=32), TrainingSettings(hidden_size=64)
    assert versions.config_fingerprint(None, {"training": small}) != versions.config_fingerprint(
        None, {"training": large}
    )
