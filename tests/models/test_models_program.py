"""bin/kerazoo-models: end to end (subprocesses started by conftest) and its library side."""

import os

import pytest

import kerazoo.models
from kerazoo.models import summary
from models_helpers import PROGRAM, assert_one_line


@pytest.fixture(scope="module")
def runs(program_runs):
    """name -> (returncode, stdout, stderr) of each run conftest started."""
    results = {}
    for name, proc in program_runs.items():
        out, err = proc.communicate(timeout=300)
        results[name] = (proc.returncode, out, err)
    return results


def test_program_is_executable():
    assert os.access(PROGRAM, os.X_OK)
    with open(PROGRAM) as f:
        assert f.readline() == "#!/usr/bin/env python3\n"


def test_table(runs):
    rc, out, err = runs["table"]
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["model", "input", "trainable", "non-trainable", "multiply-adds"]
    # At 32x32 the flatten sees 5x5x16 = 400 features; lenet_bn's four BNs over
    # 6 + 16 + 120 + 84 channels add 452 trainable and 452 moving statistics.
    assert lines[1].split() == ["lenet", "32x32x1", "61,706", "0", "416,520"]
    assert lines[2].split() == ["lenet_bn", "32x32x1", "62,158", "452", "416,520"]


def test_walkthrough():
    out = summary.report(summary.SummaryConfig(model="resnet18", input_shape=(224, 224, 1)))
    assert "stem_pool (MaxPooling2D)" in out and "56x56x64" in out
    last_stage = next(line for line in out.splitlines() if line.startswith("stage4_block2"))
    assert last_stage.endswith("output shape: 7x7x512")
    assert "multiply-adds per image" in out


def test_bad_input_is_one_line(runs):
    rc, out, err = runs["unknown_model"]
    assert rc != 0 and out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kerazoo-models: error: Unknown model name 'resnet19'; "
                               "known models: densenet, "), lines[0]


@pytest.mark.parametrize("config, parts", [
    (dict(model="densenet", input_shape=(28, 28, 1)), ["densenet", "minimum 29"]),
    (dict(pattern="vgg*"), ["pattern='vgg*'", "known models:"]),
    (dict(model="lenet", num_classes=0), ["num_classes=0"]),
])
def test_bad_input_messages(config, parts):
    with pytest.raises(ValueError) as error:
        summary.report(summary.SummaryConfig(**config))
    assert_one_line(error, *parts)


@pytest.mark.parametrize("text", ["32,32", "32,32,1,1", "a,b,c", "32,0,1", "32;32;1", ""])
def test_malformed_input_shape(text):
    with pytest.raises(ValueError) as error:
        summary.parse_input_shape(text)
    assert_one_line(error, f"input_shape={text!r}", "height,width,channels")
    assert summary.parse_input_shape(" 96, 96,1") == (96, 96, 1)


def test_multiply_adds_need_a_known_size():
    model = kerazoo.models.create("lenet", input_shape=(None, None, 1), include_top=False)
    with pytest.raises(ValueError, match="known input height and width"):
        summary.multiply_adds(model)
