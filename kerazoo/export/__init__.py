"""Exporting trained models: a self-contained SavedModel that serves raw images.

    model, info, config = load_run("runs/lenet_bn")       # model of a training run
    export_run(ExportConfig(model_dir=..., export_dir=...))  # what kerazoo-export does
    folded = fold_batchnorm(model)                          # inference copy, BN folded

`predict` and `evaluate` (kerazoo-predict, kerazoo-evaluate) serve the exports.
"""

from kerazoo.export.fold import count_batch_norms, fold_batchnorm
from kerazoo.export.run import ExportConfig, export_run, load_run, save_keras
from kerazoo.export.saved_model import (ExportError, check_export_path, export_saved_model,
                                        serving_function)

__all__ = ["ExportConfig", "ExportError", "check_export_path", "count_batch_norms",
           "export_run", "export_saved_model", "fold_batchnorm", "load_run", "save_keras",
           "serving_function"]
