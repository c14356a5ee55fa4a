"""Flag-parse errors of the export, serving and listing programs: one line, status 2.

absl's own handler prints two lines ("FATAL Flags parsing error: ..." and a
"--helpshort" hint) and exits 1; every kerazoo program prints absl's message
once, after its own name.
"""

import pytest

from export_helpers import run_bin

# program -> (argv, words the error line must contain)
CASES = {
    "export_missing_required": ("kerazoo-export", [], ["--model_dir", "--export_dir"]),
    "predict_top_k_not_an_integer": ("kerazoo-predict", ["--saved_model=x", "--top_k=many",
                                                         "a.png"], ["--top_k=many"]),
    "evaluate_unknown_flag": ("kerazoo-evaluate", ["--nope=1"], ["Unknown command line flag",
                                                                 "nope"]),
    "models_num_classes_not_an_integer": ("kerazoo-models", ["--num_classes=ten"],
                                          ["--num_classes=ten"]),
}


@pytest.mark.parametrize("name", CASES)
def test_flag_parse_error_is_one_line_with_status_2(name):
    program, argv, words = CASES[name]
    proc = run_bin(program, *argv, timeout=60)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1 and lines[0].startswith(f"{program}: error: "), lines
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_help_still_works():
    proc = run_bin("kerazoo-evaluate", "--helpshort", timeout=60)
    assert "--confusion_png" in proc.stdout and "Traceback" not in proc.stderr
