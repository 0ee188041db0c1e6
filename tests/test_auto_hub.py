"""AutoModelForAudioClassification / AutoConfig / AutoFeatureExtractor with Hub ids, against a loopback Hub:
every documented from_pretrained argument."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

try:
    from tests.hubserver import hub, hub_env, tiny_models  # noqa: F401
except ImportError:  # tests/ is not a package
    from hubserver import hub, hub_env, tiny_models  # noqa: F401

import audioclf
from audioclf.errors import ConfigError, HubError

Auto = audioclf.AutoModelForAudioClassification
INPUTS = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 3000)).astype(np.float32))


def logits(model):
    with torch.no_grad():
        return model(INPUTS).logits


def reference_logits(directory):
    import transformers

    model = transformers.AutoModelForAudioClassification.from_pretrained(directory).eval()
    with torch.no_grad():
        return model(INPUTS).logits


def test_hub_id_gives_transformers_logits(hub, hub_env, tiny_models):
    hub.add_repo("org/clf").commit(tiny_models.safetensors)
    model = Auto.from_pretrained("org/clf")
    assert torch.allclose(logits(model), reference_logits(tiny_models.safetensors), atol=1e-5)
    assert model.source.repo_id == "org/clf" and len(model.source.commit) == 40


@pytest.mark.parametrize("layout", ["bin_only", "sharded", "sharded_bin"])
def test_hub_weight_layouts(hub, hub_env, tiny_models, layout):
    hub.add_repo("org/clf").commit(getattr(tiny_models, layout))
    assert torch.allclose(logits(Auto.from_pretrained("org/clf")), reference_logits(tiny_models.safetensors),
                          atol=1e-5)


def test_revision_cache_dir_force_download_and_local_files_only(hub, hub_env, tiny_models, tmp_path):
    repo = hub.add_repo("org/clf")
    old = repo.commit(tiny_models.other_labels, tags=("v1",))
    repo.commit(tiny_models.safetensors)
    cache = tmp_path / "elsewhere"
    main = Auto.from_pretrained("org/clf", cache_dir=cache)
    tagged = Auto.from_pretrained("org/clf", revision="v1", cache_dir=cache)
    assert main.config.num_labels == 3 and tagged.config.num_labels == 2 and tagged.source.commit == old
    assert (cache / "models--org--clf" / "snapshots" / old / "config.json").is_file()
    hub.reset_requests()
    Auto.from_pretrained("org/clf", cache_dir=cache, resume_download=True, proxies=None)
    assert hub.downloaded() == []
    Auto.from_pretrained("org/clf", cache_dir=cache, force_download=True)
    assert "model.safetensors" in hub.downloaded()
    hub.stop()
    offline = Auto.from_pretrained("org/clf", cache_dir=cache, local_files_only=True)
    assert torch.equal(logits(offline), logits(main))
    with pytest.raises(HubError, match="not in the cache"):
        Auto.from_pretrained("org/never", cache_dir=cache, local_files_only=True)


def test_token_and_private_repo(hub, hub_env, tiny_models):
    hub.add_repo("org/private", private=True, token="secret").commit(tiny_models.safetensors)
    with pytest.raises(HubError) as error:
        Auto.from_pretrained("org/private")
    assert "token" in str(error.value).lower() and "\n" not in str(error.value)
    assert Auto.from_pretrained("org/private", token="secret").config.num_labels == 3


def test_subfolder_and_use_safetensors(hub, hub_env, tiny_models):
    hub.add_repo("org/sub").commit(tiny_models.safetensors, subfolder="classifier")
    assert Auto.from_pretrained("org/sub", subfolder="classifier").config.num_labels == 3
    hub.add_repo("org/all").commit(tiny_models.everything)
    hub.reset_requests()
    model = Auto.from_pretrained("org/all", use_safetensors=False)
    assert "pytorch_model.bin" in hub.downloaded() and "model.safetensors" not in hub.downloaded()
    assert "tf_model.h5" not in hub.downloaded()
    assert torch.allclose(logits(model), reference_logits(tiny_models.safetensors), atol=1e-5)


def test_from_tf_through_the_hub(hub, hub_env):
    fixture = Path(__file__).parent / "data" / "tf" / "w2v2_cls_group" / "h5"
    hub.add_repo("org/tf").commit(fixture)
    model = Auto.from_pretrained("org/tf", from_tf=True)
    out = np.load(fixture.parent / "outputs.npz")
    with torch.no_grad():
        got = model(torch.from_numpy(out["input_values"]), attention_mask=torch.from_numpy(out["attention_mask"]))
    assert np.abs(got.logits.numpy() - out["logits"]).max() <= 1e-4


def test_state_dict_config_and_dtype(hub, hub_env, tiny_models, tmp_path):
    hub.add_repo("org/clf").commit(tiny_models.safetensors)
    other = Auto.from_pretrained(tiny_models.other_labels)
    replaced = Auto.from_pretrained("org/clf", state_dict=other.state_dict(), config=other.config)
    assert torch.equal(logits(replaced), logits(other))
    no_path = Auto.from_pretrained(None, state_dict=other.state_dict(), config=tiny_models.other_labels / "config.json")
    assert torch.equal(logits(no_path), logits(other))
    model = Auto.from_pretrained("org/clf", torch_dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16


def test_remote_code_is_never_run(tmp_path, tiny_models):
    shutil.copytree(tiny_models.safetensors, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["auto_map"] = {"AutoModelForAudioClassification": "modeling_evil.EvilModel"}
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    for trust in (None, True):
        with pytest.raises(ConfigError, match="custom code is unsupported"):
            Auto.from_pretrained(tmp_path / "m", trust_remote_code=trust)


def test_auto_config_and_feature_extractor_from_hub(hub, hub_env, tiny_models, tmp_path):
    hub.add_repo("org/clf").commit(tiny_models.safetensors)
    config = audioclf.AutoConfig.from_pretrained("org/clf", classifier_proj_size=4)
    assert config.model_type == "wav2vec2" and config.classifier_proj_size == 4
    assert "model.safetensors" not in hub.downloaded()  # configs only
    extractor = audioclf.AutoFeatureExtractor.from_pretrained("org/clf")
    assert extractor.config.return_attention_mask is True
    defaults = audioclf.AutoFeatureExtractor.from_pretrained(tiny_models.bin_only)  # no preprocessor_config.json
    assert defaults.config.sampling_rate == 16000 and defaults.config.return_attention_mask is False


@pytest.mark.parametrize("folder,expected", [
    ("my-unispeech-sat-clf", "unispeech-sat"), ("team_unispeech_model", "unispeech"), ("x-sew-d-tiny", "sew-d"),
    ("sew-tiny", "sew"), ("hubert-ks", "hubert"), ("wav2vec2-base-ks", "wav2vec2"),
])
def test_model_type_from_name_when_config_has_none(tmp_path, folder, expected):
    directory = tmp_path / folder
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"hidden_size": 16, "num_attention_heads": 2,
                                                       "num_conv_pos_embedding_groups": 2}))
    assert audioclf.AutoConfig.from_pretrained(directory).model_type == expected


def test_cli_inspect_hub_id_offline_from_cache(hub, hub_env, tiny_models):
    hub.add_repo("org/clf").commit(tiny_models.safetensors)
    Auto.from_pretrained("org/clf")
    hub.stop()
    env = dict(hub_env["env"], HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-m", "audioclf", "inspect", "org/clf", "--json"], capture_output=True,
                            text=True, env=env)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    import transformers

    reference_model = transformers.AutoModelForAudioClassification.from_pretrained(tiny_models.safetensors)
    reference = sum(p.numel() for p in reference_model.parameters())  # masked_spec_embed included
    assert facts["parameters"] == reference
    assert facts["model_type"] == "wav2vec2" and facts["labels"] == ["LABEL_0", "LABEL_1", "LABEL_2"]
    assert facts["cache"]["cached"] and len(facts["revision"]) == 40
    assert facts["feature_extractor"]["return_attention_mask"] is True


def test_cli_inspect_local_and_errors(tiny_models, tmp_path):
    result = subprocess.run([sys.executable, "-m", "audioclf", "inspect", str(tiny_models.safetensors)],
                            capture_output=True, text=True, env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin",
                                                                 "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "Wav2Vec2ForSequenceClassification" in result.stdout and "LABEL_2" in result.stdout
    missing = subprocess.run([sys.executable, "-m", "audioclf", "inspect", str(tmp_path / "nothing")],
                             capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                                                                  "HF_HOME": str(tmp_path / "hf")})
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and "Traceback" not in missing.stderr
